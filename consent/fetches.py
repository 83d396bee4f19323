"""A consent's ``fetches_per_day``, counted at release time.

A pull (a page, or one record) that releases a subject's records under a capped consent counts
as **one fetch of that consent** on the UTC calendar day of the pull, however many of the
subject's records the page holds; a second page or a second request is another fetch (as the
CDR and India's Account Aggregator count data fetches per consent and period). Once a consent's
count for the day has reached its cap, its records are withheld with the reason
:data:`FETCHES_EXCEEDED` until the next UTC day.

Counts live in ``consent_fetch_counts`` (one row per consent and day) and are taken in the
pull's own transaction, so a pull that rolls back counts nothing. A claim is one upsert whose
update only happens below the cap and which returns the consents it counted::

    INSERT INTO consent_fetch_counts VALUES (:consent_id, :day, 1, :cap)
    ON CONFLICT (consent_id, day) DO UPDATE SET fetches = fetches + 1, ...
    WHERE consent_fetch_counts.fetches < excluded.fetches_per_day
    RETURNING consent_id

On PostgreSQL the conflicting row is locked until the pull commits, so of two concurrent pulls
exactly one gets a consent's last fetch (the other re-reads the committed count); rows are
claimed in consent-id order, so two pages never wait on each other in a cycle. On SQLite the
hub's transactions hold the write lock from their start. Consents without a cap are never
counted: no statement, no row.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Protocol, cast

from sqlalchemy import Date, Executable, Integer, Table, bindparam, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from consent.models import Consent, ConsentFetchCount, ConsentStatus

#: The reason a record is withheld when its consent has no fetch left today (the policy's own
#: rule id for the purpose's fair-use cap: see ``policies/README.md``).
FETCHES_EXCEEDED = "fair_use.fetches_exceeded"

_COUNTS = cast(Table, ConsentFetchCount.__table__)
_ACTIVE = str(ConsentStatus.ACTIVE)


def fetch_day(now: datetime) -> date:
    """The UTC calendar day a fetch at ``now`` counts on."""
    return now.astimezone(UTC).date()


# PostgreSQL: the page's consents as two arrays, one statement whatever their number (the
# driver adapts two lists, not four parameters per consent).
_CLAIM_POSTGRESQL = text(
    "INSERT INTO consent_fetch_counts (consent_id, day, fetches, fetches_per_day) "
    "SELECT claimed.consent_id, :on_day, 1, claimed.cap "
    "FROM unnest(CAST(:consent_ids AS VARCHAR[]), CAST(:caps AS INTEGER[])) "
    "AS claimed (consent_id, cap) "
    "ON CONFLICT (consent_id, day) DO UPDATE "
    "SET fetches = consent_fetch_counts.fetches + 1, fetches_per_day = excluded.fetches_per_day "
    "WHERE consent_fetch_counts.fetches < excluded.fetches_per_day "
    "RETURNING consent_fetch_counts.consent_id"
).bindparams(bindparam("on_day", type_=Date()))


def _claim_statement(dialect: str) -> Executable:
    """SQLite: one row of parameters per consent (SQLAlchemy sends them as one multi-row
    ``VALUES`` statement)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(_COUNTS).values(
        consent_id=bindparam("consent_id"),
        day=bindparam("on_day", type_=Date()),
        fetches=1,
        fetches_per_day=bindparam("cap", type_=Integer()),
    )
    return statement.on_conflict_do_update(
        index_elements=[_COUNTS.c.consent_id, _COUNTS.c.day],
        set_={
            "fetches": _COUNTS.c.fetches + 1,
            "fetches_per_day": statement.excluded.fetches_per_day,
        },
        where=_COUNTS.c.fetches < statement.excluded.fetches_per_day,
    ).returning(_COUNTS.c.consent_id)


_CLAIMS: dict[str, Executable] = {}
_GIVE_BACK = (
    update(_COUNTS)
    .where(
        _COUNTS.c.consent_id.in_(bindparam("consent_ids", expanding=True)),
        _COUNTS.c.day == bindparam("on_day", type_=Date()),
        _COUNTS.c.fetches > 0,
    )
    .values(fetches=_COUNTS.c.fetches - 1)
)


class CappableState(Protocol):
    """What :func:`capped_consents` reads of a :class:`consent.service.ConsentState`."""

    @property
    def consent_id(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def fetches_per_day(self) -> int | None: ...


def capped_consents(states: Iterable[CappableState]) -> dict[str, int]:
    """Consent id -> ``fetches_per_day`` of the usable, capped consents among these consent
    states (as of the pull's ``now``: an expired or paused consent is not counted)."""
    return {
        state.consent_id: state.fetches_per_day
        for state in states
        if state.fetches_per_day is not None
        and state.status == _ACTIVE
        and state.consent_id is not None
    }


def claim_fetches(session: Session, caps: Mapping[str, int], *, now: datetime) -> set[str]:
    """Count one fetch today of each consent in ``caps`` (consent id -> its cap), in the
    caller's transaction. Returns the consents that had no fetch left (those are not counted)."""
    if not caps:
        return set()
    dialect = session.get_bind().dialect.name
    day = fetch_day(now)
    ordered = sorted(caps)
    if dialect == "postgresql":
        counted = session.scalars(
            _CLAIM_POSTGRESQL,
            {"on_day": day, "consent_ids": ordered, "caps": [caps[c] for c in ordered]},
        ).all()
    else:
        statement = _CLAIMS.get(dialect)
        if statement is None:
            statement = _CLAIMS[dialect] = _claim_statement(dialect)
        counted = session.scalars(
            statement, [{"consent_id": c, "on_day": day, "cap": caps[c]} for c in ordered]
        ).all()
    return set(caps).difference(counted)


def give_back_fetches(session: Session, consent_ids: Collection[str], *, now: datetime) -> None:
    """Undo this transaction's claims of these consents (claimed, then nothing of theirs
    released: the policy refused, for a reason of its own)."""
    if consent_ids:
        session.execute(_GIVE_BACK, {"consent_ids": sorted(consent_ids), "on_day": fetch_day(now)})


def fetches_today(
    session: Session, consent_ids: Collection[str], *, now: datetime
) -> dict[str, int]:
    """Fetches counted today per consent (consents not fetched today are absent)."""
    if not consent_ids:
        return {}
    rows = session.execute(
        select(_COUNTS.c.consent_id, _COUNTS.c.fetches).where(
            _COUNTS.c.consent_id.in_(list(consent_ids)), _COUNTS.c.day == fetch_day(now)
        )
    ).all()
    return {consent_id: int(fetches) for consent_id, fetches in rows}


def prune_fetch_counts(session: Session, *, now: datetime) -> int:
    """Delete the counts of days before today's (UTC): nothing decides on them any more."""
    result = session.execute(delete(_COUNTS).where(_COUNTS.c.day < fetch_day(now)))
    return int(getattr(result, "rowcount", 0) or 0)


def forget_fetches_of_subject(session: Session, subject_id: str) -> int:
    """Delete every count of the subject's consents (an erasure: the consents end with it)."""
    result = session.execute(
        delete(_COUNTS).where(
            _COUNTS.c.consent_id.in_(select(Consent.id).where(Consent.subject_id == subject_id))
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


__all__ = [
    "FETCHES_EXCEEDED",
    "CappableState",
    "capped_consents",
    "claim_fetches",
    "fetch_day",
    "fetches_today",
    "forget_fetches_of_subject",
    "give_back_fetches",
    "prune_fetch_counts",
]
