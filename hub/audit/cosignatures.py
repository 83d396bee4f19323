"""Witness cosignatures on the hub's side: accept them, store them, serve them with checkpoints.

A witness (``tollhouse audit witness``, run by a regulator or a partner) fetches the checkpoint,
checks it against what it cosigned before, and sends back a C2SP ``tlog-cosignature`` v1 line.
The hub checks that the line verifies under the witness key sent with it and that it cosigns a
head this log stored, then keeps it. A witness name is bound to the first partner and key that
used it, so nobody can add lines under another witness's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.audit.checkpoint import (
    LogSigner,
    TreeHead,
    parse_witness_key,
    verify_checkpoint,
    verify_cosignature,
)
from hub.audit.errors import (
    CheckpointError,
    InvalidCosignatureError,
    UnknownTreeHeadError,
    WitnessNameTakenError,
)
from hub.audit.models import Cosignature, SignedTreeHead
from hub.audit.service import current_tree_head, tree_head_of_size
from hub.store.base import utcnow

# A note carries at most 16 signature lines; the log uses two.
MAX_SERVED_COSIGNATURES = 14


@dataclass(frozen=True, slots=True)
class StoredCosignature:
    witness_name: str
    witness_key: str
    size: int
    timestamp: datetime
    line: str
    created: bool


@dataclass(frozen=True, slots=True)
class ServedCheckpoint:
    """A signed head, the witnesses' cosignatures of it, and the note carrying them all."""

    head: TreeHead
    cosignatures: list[Cosignature]

    @property
    def note(self) -> str:
        return self.head.note() + "".join(c.line + "\n" for c in self.cosignatures)


def _stored(row: Cosignature, *, created: bool) -> StoredCosignature:
    return StoredCosignature(
        witness_name=row.witness_name,
        witness_key=row.witness_key,
        size=row.size,
        timestamp=row.timestamp,
        line=row.line,
        created=created,
    )


def add_cosignature(
    session: Session,
    signer: LogSigner,
    *,
    partner_id: str,
    checkpoint: str,
    cosignature: str,
    witness_key: str,
) -> StoredCosignature:
    """Verify and store a witness's cosignature of one of this log's checkpoints.

    Idempotent per (witness, size): a second cosignature of a size already cosigned by the same
    witness returns the first. The caller commits.
    """
    try:
        name, public_key = parse_witness_key(witness_key)
    except CheckpointError as exc:
        raise InvalidCosignatureError(f"witness_key: {exc.detail}") from exc
    if name == signer.origin:
        raise InvalidCosignatureError("a witness cannot use the log's own name")
    try:
        head = verify_checkpoint(checkpoint, signer.public_key, signer.origin)
    except CheckpointError as exc:
        raise InvalidCosignatureError(f"checkpoint: {exc.detail}") from exc
    try:
        timestamp = verify_cosignature(cosignature, head, name, public_key)
    except CheckpointError as exc:
        raise InvalidCosignatureError(f"cosignature: {exc.detail}") from exc
    known = session.scalars(
        select(SignedTreeHead.id)
        .where(SignedTreeHead.size == head.size, SignedTreeHead.root_hash == head.root_hash)
        .limit(1)
    ).first()
    if known is None:
        raise UnknownTreeHeadError(
            f"this log stores no head of size {head.size} with that root hash"
        )
    holder = session.scalars(
        select(Cosignature).where(Cosignature.witness_name == name).limit(1)
    ).first()
    if holder is not None and (
        holder.witness_key != witness_key.strip() or holder.partner_id != partner_id
    ):
        raise WitnessNameTakenError(f"the witness name '{name}' belongs to another key")
    existing = _cosignature_of(session, name, head.size)
    if existing is not None:
        return _stored(existing, created=False)
    row = Cosignature(
        witness_name=name,
        witness_key=witness_key.strip(),
        partner_id=partner_id,
        size=head.size,
        root_hash=head.root_hash,
        timestamp=timestamp,
        line=cosignature.rstrip("\n"),
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # The same witness's cosignature of this size, stored concurrently: keep the first.
        existing = _cosignature_of(session, name, head.size)
        if existing is None:  # pragma: no cover - the unique constraint is the only one
            raise
        return _stored(existing, created=False)
    return _stored(row, created=True)


def _cosignature_of(session: Session, name: str, size: int) -> Cosignature | None:
    return session.scalars(
        select(Cosignature).where(Cosignature.witness_name == name, Cosignature.size == size)
    ).first()


def cosignatures_of(session: Session, head: TreeHead) -> list[Cosignature]:
    """Stored cosignatures of ``head`` (same size and root), oldest first, at most 14."""
    return list(
        session.scalars(
            select(Cosignature)
            .where(Cosignature.size == head.size, Cosignature.root_hash == head.root_hash)
            .order_by(Cosignature.id)
            .limit(MAX_SERVED_COSIGNATURES)
        )
    )


def served_checkpoint(
    session: Session, signer: LogSigner, *, size: int | None = None
) -> ServedCheckpoint:
    """The checkpoint to publish with its cosignatures: the current head (signed now if the log
    has grown), or the latest head of exactly ``size``."""
    head = current_tree_head(session, signer) if size is None else tree_head_of_size(session, size)
    return ServedCheckpoint(head=head, cosignatures=cosignatures_of(session, head))
