"""Erasing a data subject by crypto-shredding: their data key is destroyed, so every copy of
their sealed fields (in this database and in its backups) becomes unreadable at once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

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


def erase_subject(
    session: Session,
    *,
    protector: FieldProtector,
    identifiers: Mapping[str, str],
    actor: str,
    reason: str,
) -> Erasure:
    """Shred the subject's data key and log the erasure. The caller commits."""
    subject = find_subject(session, protector, identifiers)
    erased_now = protector.shred_subject(session, subject.id)
    pseudonym = protector.pseudonym("audit", subject.id)
    append_event(
        session,
        {
            "kind": "subject.erased",
            "partner_id": actor,
            "outcome": "erased" if erased_now else "already_erased",
            "reason": reason,
            "subjects": [pseudonym],
        },
    )
    return Erasure(subject=pseudonym, erased_now=erased_now)
