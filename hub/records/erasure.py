"""Erasing a data subject by crypto-shredding: their data key is destroyed, so every copy of
their sealed fields (in this database and in its backups) becomes unreadable at once.

In the same transaction the subject's live consents end (:mod:`consent.erasure`): active and
paused ones are revoked by the hub, so each recipient is told through the webhook outbox to
delete what it holds about the subject (by its pseudonym); pending requests are denied."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.erasure import end_consents_of_erased
from consent.service import ConsentService
from hub.audit import append_event
from hub.crypto import FieldProtector
from hub.errors import NotFoundError
from hub.records.models import DataSubject, SubjectIdentifier


def find_subject(
    session: Session, protector: FieldProtector, identifiers: Mapping[str, str]
) -> DataSubject:
    """The subject one of these identifiers (id_number, mobile, vin, email) points at, by blind
    index."""
    for kind, value in identifiers.items():
        subject_id = session.scalars(
            select(SubjectIdentifier.subject_id).where(
                SubjectIdentifier.kind == kind,
                SubjectIdentifier.digest == protector.blind_index(kind, value),
            )
        ).first()
        if subject_id is not None:
            subject = session.get(DataSubject, subject_id)
            if subject is not None:
                return subject
    raise NotFoundError("No data subject with these identifiers.")


@dataclass(frozen=True)
class Erasure:
    subject: str  # the audit pseudonym; never a raw identifier
    erased_now: bool  # False if the subject had been erased before
    consents_revoked: int = 0  # active or paused consents ended (their recipients notified)
    requests_denied: int = 0  # pending consent requests closed


def erase_subject(
    session: Session,
    *,
    protector: FieldProtector,
    consents: ConsentService,
    identifiers: Mapping[str, str],
    actor: str,
    reason: str,
) -> Erasure:
    """Erase the subject these identifiers point at (:func:`erase_subject_id`). The caller
    commits."""
    subject = find_subject(session, protector, identifiers)
    return erase_subject_id(
        session,
        protector=protector,
        consents=consents,
        subject_id=subject.id,
        actor=actor,
        reason=reason,
    )


def erase_subject_id(
    session: Session,
    *,
    protector: FieldProtector,
    consents: ConsentService,
    subject_id: str,
    actor: str,
    reason: str,
) -> Erasure:
    """Shred the subject's data key, end their live consents and log the erasure, all in the
    caller's transaction (the caller commits). Again for an erased subject: nothing is shredded
    twice and only consents still live (none, unless made since) are ended."""
    # The key row's update comes first: it serialises concurrent erasures of one subject.
    erased_now = protector.shred_subject(session, subject_id)
    endings = end_consents_of_erased(session, consents=consents, subject_id=subject_id)
    pseudonym = protector.pseudonym("audit", subject_id)
    append_event(
        session,
        {
            "kind": "subject.erased",
            "partner_id": actor,
            "outcome": "erased" if erased_now else "already_erased",
            "reason": reason,
            "subjects": [pseudonym],
            "consent_ids": list(endings.receipts),
            "counts": {
                "consents_revoked": len(endings.revoked),
                "requests_denied": len(endings.denied),
            },
        },
    )
    return Erasure(
        subject=pseudonym,
        erased_now=erased_now,
        consents_revoked=len(endings.revoked),
        requests_denied=len(endings.denied),
    )
