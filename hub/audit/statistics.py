"""Statistics over the access log for regulators: accesses per partner, purpose and day, and
denials by reason.

Counts of requests and events are about partners, not people, and are published as they are.
Every figure that counts distinct **subjects** (audit pseudonyms) goes through
:func:`hub.deid.aggregates.k_anonymous_counts`: a cell with fewer than ``k`` subjects shows no
subject figure, and the suppressed subjects are summed only when that sum is itself at least ``k``.

Days are UTC calendar days. ``since`` is inclusive, ``until`` exclusive, both timezone-aware.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final, TypeVar

import orjson
from sqlalchemy import ColumnElement, Date, Select, case, cast, distinct, func, select
from sqlalchemy.orm import Session

from hub.audit.models import AuditEvent, AuditEventSubject
from hub.deid.aggregates import k_anonymous_counts
from hub.errors import FieldError, ValidationFailedError

#: The kinds of event that are a partner's access to shared data (allowed or refused).
ACCESS_KINDS: Final = ("release", "release.denied")
#: The longest range one statistics call may cover.
MAX_RANGE: Final = timedelta(days=366)
#: Denial events read per call at most (their reasons live inside the canonical JSON).
MAX_DENIAL_EVENTS: Final = 200_000
_NONE: Final = "\x00"
_S = TypeVar("_S", bound=Select[*tuple[Any, ...]])


def _invalid(message: str, name: str) -> ValidationFailedError:
    return ValidationFailedError(message, [FieldError(name, message)])


@dataclass(frozen=True, slots=True)
class TimeRange:
    since: datetime
    until: datetime


def time_range(
    since: datetime | None, until: datetime | None, *, now: datetime, default_days: int = 30
) -> TimeRange:
    """The validated range: defaults to the last ``default_days`` days up to ``now``.

    Raises :class:`ValidationFailedError` (422) for naive times, an empty or reversed range, or
    a range longer than :data:`MAX_RANGE`.
    """
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise _invalid(f"'{name}' needs a timezone, e.g. 2026-11-25T00:00:00Z", name)
    end = until or now
    start = since or end - timedelta(days=default_days)
    if start >= end:
        raise _invalid("'since' must be before 'until'", "since")
    if end - start > MAX_RANGE:
        raise _invalid(f"a range covers at most {MAX_RANGE.days} days", "until")
    return TimeRange(start, end)


@dataclass(frozen=True, slots=True)
class AccessCell:
    day: date
    partner_id: str | None
    purpose: str | None
    requests: int
    events: int
    denied_requests: int
    #: Distinct subjects decided on in this cell; ``None`` when fewer than ``k`` (suppressed).
    subjects: int | None


@dataclass(frozen=True, slots=True)
class AccessStatistics:
    range: TimeRange
    k: int
    cells: tuple[AccessCell, ...]
    requests: int
    events: int
    #: Cells whose subject figure is suppressed, and the subjects in them (``None`` when that sum
    #: is itself below ``k``).
    suppressed_cells: int
    suppressed_subjects: int | None

    def per_partner(self) -> list[tuple[str, int]]:
        return _totals((c.partner_id or "(none)", c.requests) for c in self.cells)

    def per_purpose(self) -> list[tuple[str, int]]:
        return _totals((c.purpose or "(none)", c.requests) for c in self.cells)

    def per_day(self) -> list[tuple[str, int]]:
        return sorted(_totals((c.day.isoformat(), c.requests) for c in self.cells))


@dataclass(frozen=True, slots=True)
class DenialReason:
    reason: str
    denials: int
    requests: int
    subjects: int | None


@dataclass(frozen=True, slots=True)
class DenialStatistics:
    range: TimeRange
    k: int
    reasons: tuple[DenialReason, ...]
    denials: int
    suppressed_cells: int
    suppressed_subjects: int | None


@dataclass(slots=True)
class _Tally:
    denials: int = 0
    requests: set[str] = field(default_factory=set)
    subjects: set[str] = field(default_factory=set)


def _totals(pairs: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    out: dict[str, int] = defaultdict(int)
    for key, n in pairs:
        out[key] += n
    return sorted(out.items(), key=lambda kv: (-kv[1], kv[0]))


def _day(session: Session) -> ColumnElement[Any]:
    """The UTC calendar day of an event, in the database's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", AuditEvent.created_at), Date)
    # SQLite keeps UTC times as ISO text: its date() reads them directly.
    return func.date(AuditEvent.created_at)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _filtered(stmt: _S, window: TimeRange, partner_id: str | None, purpose: str | None) -> _S:
    stmt = stmt.where(
        AuditEvent.kind.in_(ACCESS_KINDS),
        AuditEvent.created_at >= window.since,
        AuditEvent.created_at < window.until,
    )
    if partner_id is not None:
        stmt = stmt.where(AuditEvent.partner_id == partner_id)
    if purpose is not None:
        stmt = stmt.where(AuditEvent.purpose == purpose)
    return stmt


def access_statistics(
    session: Session,
    *,
    window: TimeRange,
    k: int,
    partner_id: str | None = None,
    purpose: str | None = None,
) -> AccessStatistics:
    """Requests and events per (UTC day, partner, purpose), with k-anonymous subject counts."""
    day = _day(session).label("day")
    counts = session.execute(
        _filtered(
            select(
                day,
                AuditEvent.partner_id,
                AuditEvent.purpose,
                func.count(distinct(AuditEvent.request_id)).label("requests"),
                func.count().label("events"),
                func.count(
                    distinct(
                        case(
                            (AuditEvent.kind == "release.denied", AuditEvent.request_id),
                            else_=None,
                        )
                    )
                ).label("denied"),
            ),
            window,
            partner_id,
            purpose,
        ).group_by(day, AuditEvent.partner_id, AuditEvent.purpose)
    ).all()
    # One row per distinct (cell, subject): k-anonymous counting of those rows counts subjects.
    subject_rows = session.execute(
        _filtered(
            select(day, AuditEvent.partner_id, AuditEvent.purpose, AuditEventSubject.subject)
            .join(AuditEventSubject, AuditEventSubject.event_index == AuditEvent.index)
            .distinct(),
            window,
            partner_id,
            purpose,
        )
    ).all()
    anonymous = k_anonymous_counts(
        (
            (_as_date(r[0]).isoformat(), r.partner_id or _NONE, r.purpose or _NONE)
            for r in subject_rows
        ),
        dimensions=("day", "partner_id", "purpose"),
        k=k,
    )
    published = {g.values: g.count for g in anonymous.groups}
    cells = sorted(
        (
            AccessCell(
                day=_as_date(r.day),
                partner_id=r.partner_id,
                purpose=r.purpose,
                requests=int(r.requests),
                events=int(r.events),
                denied_requests=int(r.denied),
                subjects=published.get(
                    (_as_date(r.day).isoformat(), r.partner_id or _NONE, r.purpose or _NONE)
                ),
            )
            for r in counts
        ),
        key=lambda c: (c.day, c.partner_id or "", c.purpose or ""),
    )
    return AccessStatistics(
        range=window,
        k=k,
        cells=tuple(cells),
        requests=sum(c.requests for c in cells),
        events=sum(c.events for c in cells),
        suppressed_cells=anonymous.suppressed_groups,
        suppressed_subjects=anonymous.suppressed_records,
    )


def _denied_reasons(event: dict[str, Any]) -> Iterable[tuple[list[str], Sequence[str]]]:
    """(reasons, subjects) of each refusal an event records."""
    if event.get("kind") == "release.denied":
        yield [str(r) for r in event.get("reasons") or []], []
        return
    for decision in event.get("decisions") or []:
        if isinstance(decision, dict) and decision.get("allow") is False:
            reasons = [str(r) for r in decision.get("reasons") or []] or ["(no reason given)"]
            yield reasons, [str(s) for s in decision.get("subjects") or []]


def denial_statistics(
    session: Session,
    *,
    window: TimeRange,
    k: int,
    partner_id: str | None = None,
    purpose: str | None = None,
) -> DenialStatistics:
    """Refusals per reason id (the policy decisions' reasons, and the pipeline's own for refused
    requests), with k-anonymous counts of the subjects whose records were refused."""
    stmt = _filtered(
        select(AuditEvent.canonical, AuditEvent.request_id), window, partner_id, purpose
    ).where(
        (AuditEvent.kind == "release.denied")
        | ((AuditEvent.kind == "release") & (AuditEvent.outcome == "withheld"))
    )
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    rows = session.execute(stmt.order_by(AuditEvent.index).limit(MAX_DENIAL_EVENTS + 1)).all()
    if len(rows) > MAX_DENIAL_EVENTS:
        raise _invalid(
            "too many events in this range; narrow it (since/until, partner_id, purpose)", "since"
        )
    for canonical, request_id in rows:
        event = orjson.loads(canonical)
        if not isinstance(event, dict):  # pragma: no cover - the log stores objects only
            continue
        for reasons, subjects in _denied_reasons(event):
            for reason in reasons:
                tally = tallies[reason]
                tally.denials += 1
                if request_id:
                    tally.requests.add(request_id)
                tally.subjects.update(subjects)
    anonymous = k_anonymous_counts(
        ((reason,) for reason, t in tallies.items() for _ in t.subjects),
        dimensions=("reason",),
        k=k,
    )
    published = {g.values[0]: g.count for g in anonymous.groups}
    ranked = sorted(
        (
            DenialReason(
                reason=reason,
                denials=t.denials,
                requests=len(t.requests),
                subjects=published.get(reason),
            )
            for reason, t in tallies.items()
        ),
        key=lambda r: (-r.denials, r.reason),
    )
    return DenialStatistics(
        range=window,
        k=k,
        reasons=tuple(ranked),
        denials=sum(r.denials for r in ranked),
        suppressed_cells=anonymous.suppressed_groups,
        suppressed_subjects=anonymous.suppressed_records,
    )
