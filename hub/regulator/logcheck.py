""" "Verify the log": the current signed tree head against an earlier one the dashboard kept.

The hub computes an RFC 9162 consistency proof between the two sizes from its stored leaves
(:func:`hub.audit.consistency_proof`); it is checked here the way a witness checks it, with no
help from the database: both checkpoint notes are verified against the log's public key
(:func:`hub.audit.verify_checkpoint`) and the proof with
:func:`hub.audit.merkle.verify_consistency`.
A smaller tree, another root at the same size, or a proof that does not verify means the log was
rewritten or forked since the earlier head.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from hub.audit import (
    AuditError,
    CheckpointError,
    LogSigner,
    TreeHead,
    consistency_proof,
    parse_verifier_key,
    served_checkpoint,
    verify_checkpoint,
)
from hub.audit.merkle import verify_consistency
from hub.errors import HubError


class Verdict(StrEnum):
    #: No earlier head to compare with: the current one is kept for next time.
    FIRST = "first"
    #: Same size and root as the earlier head.
    UNCHANGED = "unchanged"
    #: The log grew and the proof shows it only appended.
    CONSISTENT = "consistent"
    #: The log shrank, changed a root at the same size, or the proof failed.
    INCONSISTENT = "inconsistent"
    #: The current checkpoint's signature does not verify with the log key.
    BAD_SIGNATURE = "bad_signature"


@dataclass(frozen=True, slots=True)
class HeadView:
    size: int
    root_hash: str
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class LogCheck:
    verdict: Verdict
    current: HeadView | None
    previous: HeadView | None
    #: The note to keep for next time: the current head when it checked out, else the earlier one.
    keep: str | None
    proof_length: int = 0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict in (Verdict.FIRST, Verdict.UNCHANGED, Verdict.CONSISTENT)


def head_view(head: TreeHead) -> HeadView:
    return HeadView(
        size=head.size,
        root_hash=base64.b64encode(head.root_hash).decode(),
        timestamp=head.timestamp,
    )


def current_checkpoint(session: Session, signer: LogSigner) -> str:
    """The latest checkpoint note (signing a new head if the log has grown)."""
    return served_checkpoint(session, signer).head.note()


def check_log(session: Session, signer: LogSigner, *, previous_note: str | None) -> LogCheck:
    """Compare the current signed head with ``previous_note`` (a checkpoint kept earlier)."""
    origin, public_key = parse_verifier_key(signer.verifier_key)
    previous: TreeHead | None = None
    if previous_note:
        try:
            previous = verify_checkpoint(previous_note, public_key, origin)
        except CheckpointError:
            previous = None  # unreadable: treated as none (the cookie is signed; defensive)
    try:
        note = current_checkpoint(session, signer)
        current = verify_checkpoint(note, public_key, origin)
    except CheckpointError as exc:
        return LogCheck(
            Verdict.BAD_SIGNATURE,
            None,
            None if previous is None else head_view(previous),
            previous_note,
            detail=exc.detail,
        )
    except (AuditError, HubError) as exc:
        return LogCheck(
            Verdict.INCONSISTENT,
            None,
            None if previous is None else head_view(previous),
            previous_note,
            detail=exc.detail,
        )
    if previous is None:
        return LogCheck(Verdict.FIRST, head_view(current), None, note)

    def refuse(detail: str, proof_length: int = 0) -> LogCheck:
        return LogCheck(
            Verdict.INCONSISTENT,
            head_view(current),
            head_view(previous),
            previous_note,
            proof_length=proof_length,
            detail=detail,
        )

    if current.size < previous.size:
        return refuse(
            f"the log now has {current.size} events, fewer than the {previous.size} seen before"
        )
    if current.size == previous.size:
        if current.root_hash != previous.root_hash:
            return refuse(f"two different tree heads of size {current.size}")
        return LogCheck(Verdict.UNCHANGED, head_view(current), head_view(previous), note)
    try:
        proof = consistency_proof(session, previous.size, current.size)
    except (AuditError, HubError) as exc:
        return refuse(f"no consistency proof could be computed: {exc.detail}")
    if not verify_consistency(
        previous.size, current.size, previous.root_hash, current.root_hash, proof
    ):
        return refuse(
            f"the consistency proof from size {previous.size} to {current.size} does not verify",
            len(proof),
        )
    return LogCheck(Verdict.CONSISTENT, head_view(current), head_view(previous), note, len(proof))
