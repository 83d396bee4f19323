"""Which partners received records under a role-addressed consent.

A consent may name a role instead of a partner (``recipient_role``, e.g. any lender). Its ending
(withdrawn, revoked, expired) must reach every partner that holds the subject's data under it,
and only those: telling a partner of the role that never received anything would reveal that
the consumer has such a consent. So the release pipeline remembers, per consent, the partners
it released records to (``consent_releases``), and the consent service notifies each of them
when the consent ends (:func:`partners_released`), in the ending's transaction.

Like a fetch claim (:mod:`consent.fetches`), a page's role-addressed consents are claimed in
one statement before any record is opened, and the claims of consents whose records the
policy then withheld are given back, so a row means "released at least once". Partner-addressed
consents (the common case) are never recorded: no statement, no row.

The race with an ending: inserting a row takes a key-share lock on its consent (the foreign
key) and the ending holds the consent's row lock, so on PostgreSQL an ending either waits for
the pull to commit and then sees its row, or commits first; in that case the pull's insert
waited for it, and :func:`claim_releases` reports the consent as ended (read again after the
insert) so that the pull re-reads its subjects' states and withholds their records. On SQLite
the hub's transactions hold the write lock from their start.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Protocol, cast

from sqlalchemy import Table, and_, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from consent.models import Consent, ConsentRelease, ConsentStatus

_RELEASES = cast(Table, ConsentRelease.__table__)
_ACTIVE = str(ConsentStatus.ACTIVE)


class ReleasableState(Protocol):
    """What :func:`role_consents` reads of a :class:`consent.service.ConsentState`."""

    @property
    def consent_id(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def role_addressed(self) -> bool: ...


def role_consents(states: Iterable[ReleasableState]) -> set[str]:
    """The usable, role-addressed consents among these consent states."""
    return {
        state.consent_id
        for state in states
        if state.role_addressed and state.status == _ACTIVE and state.consent_id is not None
    }


def claim_releases(
    session: Session, consent_ids: Collection[str], *, partner_id: str, now: datetime
) -> tuple[set[str], set[str]]:
    """Record that ``partner_id`` receives records under these consents (one statement, in
    the caller's transaction). Returns the consents newly recorded for the partner, and those
    of them no longer active once recorded (a concurrent change committed meanwhile)."""
    if not consent_ids:
        return set(), set()
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    ordered = sorted(consent_ids)
    statement = (
        insert(_RELEASES)
        .values(
            [{"consent_id": c, "partner_id": partner_id, "first_released_at": now} for c in ordered]
        )
        .on_conflict_do_nothing(index_elements=[_RELEASES.c.consent_id, _RELEASES.c.partner_id])
        .returning(_RELEASES.c.consent_id)
    )
    recorded = set(session.scalars(statement).all())
    changed: set[str] = set()
    if recorded:
        changed = set(
            session.scalars(
                select(Consent.id).where(
                    Consent.id.in_(sorted(recorded)), Consent.status != _ACTIVE
                )
            ).all()
        )
    return recorded, changed


def give_back_releases(session: Session, consent_ids: Collection[str], *, partner_id: str) -> None:
    """Delete this transaction's new rows of consents under which nothing was released."""
    if consent_ids:
        session.execute(
            delete(_RELEASES).where(
                and_(
                    _RELEASES.c.consent_id.in_(sorted(consent_ids)),
                    _RELEASES.c.partner_id == partner_id,
                )
            )
        )


def partners_released(session: Session, consent_id: str) -> list[str]:
    """The partners that received records under this consent, in id order."""
    return list(
        session.scalars(
            select(_RELEASES.c.partner_id)
            .where(_RELEASES.c.consent_id == consent_id)
            .order_by(_RELEASES.c.partner_id)
        ).all()
    )


def partners_released_under(session: Session, consent_ids: Collection[str]) -> dict[str, list[str]]:
    """For each of these consents that released records, the partners that received them, in
    id order (one statement): what the consumer is told about a role-addressed consent."""
    if not consent_ids:
        return {}
    rows = session.execute(
        select(_RELEASES.c.consent_id, _RELEASES.c.partner_id)
        .where(_RELEASES.c.consent_id.in_(sorted(consent_ids)))
        .order_by(_RELEASES.c.consent_id, _RELEASES.c.partner_id)
    ).all()
    received: dict[str, list[str]] = {}
    for consent_id, partner_id in rows:
        received.setdefault(consent_id, []).append(partner_id)
    return received


def was_released_to(session: Session, consent_id: str, partner_id: str) -> bool:
    return (
        session.scalar(
            select(_RELEASES.c.consent_id).where(
                _RELEASES.c.consent_id == consent_id, _RELEASES.c.partner_id == partner_id
            )
        )
        is not None
    )


__all__ = [
    "ReleasableState",
    "claim_releases",
    "give_back_releases",
    "partners_released",
    "partners_released_under",
    "role_consents",
    "was_released_to",
]
