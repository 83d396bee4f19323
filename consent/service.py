"""The consent service: requests, grants, the lifecycle, receipts, and the state a release needs.

Lifecycle (every arrow is an append-only :class:`~consent.models.ConsentEvent`)::

    requested ──grant──▶ active ◀──resume── paused
        │                 │  └────pause────▶  │
        └─deny─▶ denied   ├─withdraw─▶ withdrawn ◀─┤  (the consumer)
                          ├─revoke───▶ revoked  ◀─┤  (the hub or an admin, with a reason)
                          └─expire───▶ expired  ◀─┘  (computed at decision time; the sweep
                                                       records it)

Each change takes the consent's row lock (``SELECT ... FOR UPDATE``), so concurrent changes
serialise into one history; each history row has the next ``seq`` under a unique constraint.
Every grant and change is signed into a receipt (:mod:`consent.receipts`); withdrawals,
revocations and expiries also put a notification for the recipient in the outbox
(:mod:`consent.webhooks`) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    String,
    Table,
    and_,
    any_,
    bindparam,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from consent.errors import (
    ConsentNotFoundError,
    FairUseExceededError,
    InvalidConsentError,
    InvalidConsentTransitionError,
    WideningError,
)
from consent.fetches import fetches_today, prune_fetch_counts
from consent.interfaces import AuditSink, PartnerDirectory, SubjectPseudonyms
from consent.models import (
    Consent,
    ConsentEvent,
    ConsentMode,
    ConsentReceipt,
    ConsentRelease,
    ConsentStatus,
)
from consent.ranges import DataRange
from consent.receipts import ReceiptSigner
from consent.releases import partners_released, partners_released_under
from consent.taxonomy import Taxonomy
from consent.webhooks import NOTIFIED_EVENTS, enqueue_notification
from hub.store.base import utcnow

MISSING = "missing"
#: A start this far in the past still counts as "now" (clock skew between client and hub).
START_LEEWAY = timedelta(minutes=5)

_ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    ConsentStatus.REQUESTED: frozenset({ConsentStatus.ACTIVE, ConsentStatus.DENIED}),
    ConsentStatus.ACTIVE: frozenset(
        {
            ConsentStatus.PAUSED,
            ConsentStatus.WITHDRAWN,
            ConsentStatus.REVOKED,
            ConsentStatus.EXPIRED,
        }
    ),
    ConsentStatus.PAUSED: frozenset(
        {
            ConsentStatus.ACTIVE,
            ConsentStatus.WITHDRAWN,
            ConsentStatus.REVOKED,
            ConsentStatus.EXPIRED,
        }
    ),
}

#: The event name of each transition, as receipts, audit events and webhooks call it.
EVENT_NAMES: dict[tuple[str | None, str], str] = {
    (None, ConsentStatus.REQUESTED): "consent.requested",
    (None, ConsentStatus.ACTIVE): "consent.granted",
    (ConsentStatus.REQUESTED, ConsentStatus.ACTIVE): "consent.granted",
    (ConsentStatus.REQUESTED, ConsentStatus.DENIED): "consent.denied",
    (ConsentStatus.ACTIVE, ConsentStatus.PAUSED): "consent.paused",
    (ConsentStatus.PAUSED, ConsentStatus.ACTIVE): "consent.resumed",
}


def event_name(from_status: str | None, to_status: str) -> str:
    return EVENT_NAMES.get((from_status, to_status), f"consent.{to_status}")


# --------------------------------------------------------------------------------------------
# Terms: what a consent allows, validated against the taxonomy and the purpose's fair-use caps


@dataclass(frozen=True, slots=True)
class ConsentTerms:
    """What a consent lets the recipient do. Dates are UTC-aware."""

    purpose: str
    categories: tuple[str, ...]
    starts_at: datetime
    expires_at: datetime
    sensitive: bool = False
    cross_border: bool = False
    mode: ConsentMode = ConsentMode.STORE
    retention_days: int | None = None
    data_from: datetime | None = None
    data_until: datetime | None = None
    fetches_per_day: int | None = None

    def snapshot(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "purpose": self.purpose,
            "categories": list(self.categories),
            "starts_at": iso(self.starts_at),
            "expires_at": iso(self.expires_at),
            "duration_days": self.duration_days,
            "sensitive": self.sensitive,
            "cross_border": self.cross_border,
            "mode": str(self.mode),
            "retention_days": self.retention_days,
            "data_from": iso(self.data_from),
            "data_until": iso(self.data_until),
            "fetches_per_day": self.fetches_per_day,
        }

    @property
    def duration_days(self) -> float:
        return (self.expires_at - self.starts_at).total_seconds() / 86400


def _terms_of(consent: Consent) -> ConsentTerms:
    return ConsentTerms(
        purpose=consent.purpose,
        categories=tuple(consent.categories),
        starts_at=consent.starts_at,
        expires_at=consent.expires_at,
        sensitive=consent.sensitive,
        cross_border=consent.cross_border,
        mode=ConsentMode(consent.mode),
        retention_days=consent.retention_days,
        data_from=consent.data_from,
        data_until=consent.data_until,
        fetches_per_day=consent.fetches_per_day,
    )


def _aware(value: datetime | None, field: str) -> None:
    if value is not None and value.tzinfo is None:
        raise InvalidConsentError(f"{field} must carry a timezone (UTC)", field=field)


def validate_terms(
    taxonomy: Taxonomy,
    terms: ConsentTerms,
    *,
    now: datetime,
    recipient_role: str | None,
) -> None:
    """Raise :class:`InvalidConsentError` (or :class:`FairUseExceededError`) for bad terms."""
    purpose = taxonomy.purposes.get(terms.purpose)
    if purpose is None:
        raise InvalidConsentError(f"unknown purpose '{terms.purpose}'", field="purpose")
    if recipient_role is not None and recipient_role not in purpose.roles:
        raise InvalidConsentError(
            f"a {recipient_role} may not declare the purpose '{terms.purpose}'", field="purpose"
        )
    if not terms.categories:
        raise InvalidConsentError("name at least one data category", field="categories")
    unknown = sorted(c for c in terms.categories if c not in taxonomy.categories)
    if unknown:
        raise InvalidConsentError(f"unknown data categories: {unknown}", field="categories")
    foreign = sorted(c for c in terms.categories if c not in purpose.categories)
    if foreign:
        raise InvalidConsentError(
            f"categories not used for the purpose '{terms.purpose}': {foreign}",
            field="categories",
        )
    for name in ("starts_at", "expires_at", "data_from", "data_until"):
        _aware(getattr(terms, name), name)
    if terms.starts_at < now - START_LEEWAY:
        raise InvalidConsentError("starts_at is in the past", field="starts_at")
    if terms.expires_at <= now:
        raise InvalidConsentError("expires_at is in the past", field="expires_at")
    if terms.expires_at <= terms.starts_at:
        raise InvalidConsentError("expires_at must be after starts_at", field="expires_at")
    caps = purpose.fair_use
    if terms.expires_at - terms.starts_at > timedelta(days=caps.max_duration_days):
        raise FairUseExceededError(
            f"the purpose '{terms.purpose}' allows consents of at most "
            f"{caps.max_duration_days} days",
            field="duration_days",
            cap=caps.max_duration_days,
        )
    if terms.data_until is not None and terms.data_from is None:
        raise InvalidConsentError("data_until needs data_from", field="data_from")
    if terms.data_from is not None:
        until = terms.data_until or terms.expires_at
        if until <= terms.data_from:
            raise InvalidConsentError("data_until must be after data_from", field="data_until")
        if until - terms.data_from > timedelta(days=caps.max_data_range_days):
            raise FairUseExceededError(
                f"the purpose '{terms.purpose}' allows a data range of at most "
                f"{caps.max_data_range_days} days",
                field="data_until",
                cap=caps.max_data_range_days,
            )
    if terms.fetches_per_day is not None:
        if terms.fetches_per_day < 1:
            raise InvalidConsentError("fetches_per_day must be at least 1", field="fetches_per_day")
        if terms.fetches_per_day > caps.fetches_per_day:
            raise FairUseExceededError(
                f"the purpose '{terms.purpose}' allows at most {caps.fetches_per_day} "
                "fetches per day",
                field="fetches_per_day",
                cap=caps.fetches_per_day,
            )
    if terms.mode == ConsentMode.VIEW_ONCE and terms.retention_days:
        raise InvalidConsentError("a view-once consent keeps nothing", field="retention_days")
    if terms.retention_days is not None and terms.retention_days < 0:
        raise InvalidConsentError("retention_days must not be negative", field="retention_days")
    sensitive = sorted(c for c in terms.categories if taxonomy.is_sensitive(c))
    if sensitive and not terms.sensitive:
        raise InvalidConsentError(
            f"the categories {sensitive} are sensitive and need the separate sensitive consent "
            "(sensitive: true)",
            field="sensitive",
        )


def check_narrowing(asked: ConsentTerms, granted: ConsentTerms) -> None:
    """A grant may narrow what was asked, never widen it."""
    wider: list[tuple[str, str]] = []
    extra = sorted(set(granted.categories) - set(asked.categories))
    if extra:
        wider.append(("categories", f"categories not requested: {extra}"))
    if granted.duration_days > asked.duration_days + 1e-6:
        wider.append(("duration_days", "longer than requested"))
    if granted.sensitive and not asked.sensitive:
        wider.append(("sensitive", "sensitive consent was not requested"))
    if granted.cross_border and not asked.cross_border:
        wider.append(("cross_border", "cross-border transfer was not requested"))
    if asked.mode == ConsentMode.VIEW_ONCE and granted.mode == ConsentMode.STORE:
        wider.append(("mode", "storing was not requested"))
    if asked.retention_days is not None and (
        granted.retention_days is None or granted.retention_days > asked.retention_days
    ):
        if granted.mode == ConsentMode.STORE:
            wider.append(("retention_days", "longer retention than requested"))
    if asked.fetches_per_day is not None and (
        granted.fetches_per_day is None or granted.fetches_per_day > asked.fetches_per_day
    ):
        wider.append(("fetches_per_day", "more fetches per day than requested"))
    if asked.data_from is not None:
        asked_until = asked.data_until or asked.expires_at
        granted_until = granted.data_until or granted.expires_at
        if granted.data_from is None or granted.data_from < asked.data_from:
            wider.append(("data_from", "a data range starting before the requested one"))
        elif granted_until > asked_until:
            wider.append(("data_until", "a data range ending after the requested one"))
    if wider:
        field, message = wider[0]
        raise WideningError(
            "a grant may narrow the request, never widen it: " + "; ".join(m for _, m in wider),
            field=field,
        )


# --------------------------------------------------------------------------------------------
# The state a release decision needs


@dataclass(frozen=True, slots=True)
class ConsentState:
    """What the policy needs to know of one subject's consent, as of ``now``."""

    consent_id: str | None
    status: str
    categories: frozenset[str]
    expires_at: datetime | None
    sensitive: bool
    cross_border: bool
    receipt_id: str | None = None
    starts_at: datetime | None = None
    #: The consent's daily fetch cap, enforced by the pipeline from the stored count
    #: (:mod:`consent.fetches`), never part of the policy input (the decision cache keys on it).
    fetches_per_day: int | None = None
    #: The consent names a role, not the recipient: the pipeline records who received what
    #: under it (:mod:`consent.releases`), so that its ending reaches them.
    role_addressed: bool = False
    #: The data times the consent covers (:mod:`consent.ranges`), checked per record by the
    #: pipeline, never part of the policy input; ``None`` when it covers any.
    data_range: DataRange | None = None

    @classmethod
    def missing(cls) -> ConsentState:
        return cls(None, MISSING, frozenset(), None, False, False)

    def policy_view(self) -> dict[str, object]:
        return {
            "status": self.status,
            "categories": sorted(self.categories),
            "starts_at": self.starts_at.isoformat() if self.starts_at else None,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "sensitive": self.sensitive,
            "cross_border": self.cross_border,
        }


def effective_status(consent: Consent, now: datetime) -> str:
    """The status at ``now``: an active or paused consent past its end is expired."""
    if consent.status in (ConsentStatus.ACTIVE, ConsentStatus.PAUSED) and now >= consent.expires_at:
        return ConsentStatus.EXPIRED
    return consent.status


def _rank(consent: Consent, now: datetime) -> tuple[int, datetime]:
    usable = (
        consent.status == ConsentStatus.ACTIVE and consent.starts_at <= now < consent.expires_at
    )
    return (1 if usable else 0, consent.created_at)


class _Unindexed(FunctionElement[str]):
    """A column as it is, but not one the database may pick an index for on SQLite.

    SQLite's planner (without statistics) prefers ``ix_consents_recipient_purpose`` for a
    page's consent query, which reads every consent of the recipient and purpose (thousands)
    instead of those of the page's subjects. The unary ``+`` is SQLite's documented way to
    keep a term out of the index choice; the value and the result are unchanged. Other
    databases render the bare column and plan with their own statistics.
    """

    name = "unindexed"
    type = String()
    inherit_cache = True


@compiles(_Unindexed)
def _unindexed_default(element: _Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(_Unindexed, "sqlite")
def _unindexed_sqlite(element: _Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + str(compiler.process(element.clauses, **kw))


_CONSENTS = cast(Table, Consent.__table__)
# The columns a state needs, by position (see ``consent_states``): no ORM objects, and the
# statements are built once, so a release pays neither ORM loading nor statement construction.
_STATE_COLUMNS = (
    _CONSENTS.c.id,
    _CONSENTS.c.subject_id,
    _CONSENTS.c.status,
    _CONSENTS.c.starts_at,
    _CONSENTS.c.expires_at,
    _CONSENTS.c.created_at,
    _CONSENTS.c.categories,
    _CONSENTS.c.sensitive,
    _CONSENTS.c.cross_border,
    _CONSENTS.c.receipt_id,
    _CONSENTS.c.fetches_per_day,
    _CONSENTS.c.recipient_id,
    _CONSENTS.c.data_from,
    _CONSENTS.c.data_until,
)
#: The columns of a consent state, in the order :func:`states_from_rows` reads them.
STATE_COLUMNS = _STATE_COLUMNS
_USABLE_STATUSES = _CONSENTS.c.status.not_in([ConsentStatus.REQUESTED, ConsentStatus.DENIED])


def state_condition(subject_id: ColumnElement[str]) -> ColumnElement[bool]:
    """The consents a state is read from, for the subject ``subject_id`` (a column or a bind
    parameter): those of the recipient (bind parameter ``recipient_id``) or, naming no
    recipient, of its role (``recipient_role``), for the purpose (``purpose``), neither
    requested nor denied. For a statement of the caller's that reads :data:`STATE_COLUMNS`
    along with other rows (the release path's one-record pull)."""
    return and_(
        _CONSENTS.c.subject_id == subject_id,
        or_(
            _Unindexed(_CONSENTS.c.recipient_id) == bindparam("recipient_id"),
            and_(
                _CONSENTS.c.recipient_id.is_(None),
                _CONSENTS.c.recipient_role == bindparam("recipient_role"),
            ),
        ),
        _CONSENTS.c.purpose == bindparam("purpose"),
        _USABLE_STATUSES,
    )


_OF_RECIPIENT = _Unindexed(_CONSENTS.c.recipient_id) == bindparam("recipient_id")
_OF_RECIPIENT_OR_ROLE = or_(
    _OF_RECIPIENT,
    and_(
        _CONSENTS.c.recipient_id.is_(None),
        _CONSENTS.c.recipient_role == bindparam("recipient_role"),
    ),
)
# The page's subjects: on SQLite an IN list, one bind parameter per subject; on PostgreSQL one
# array parameter (``= ANY``), so the statement's text is the same for every page and psycopg
# prepares it once per connection instead of PostgreSQL parsing and planning it per page.
_SUBJECTS_IN = _CONSENTS.c.subject_id.in_(bindparam("subject_ids", expanding=True, type_=String()))
_SUBJECTS_ANY = _CONSENTS.c.subject_id == any_(bindparam("subject_ids", type_=ARRAY(String())))
_STATE_FILTER = (_CONSENTS.c.purpose == bindparam("purpose"), _USABLE_STATUSES)
_STATES_OF_RECIPIENT = select(*_STATE_COLUMNS).where(_OF_RECIPIENT, _SUBJECTS_IN, *_STATE_FILTER)
_STATES_OF_RECIPIENT_OR_ROLE = select(*_STATE_COLUMNS).where(
    _OF_RECIPIENT_OR_ROLE, _SUBJECTS_IN, *_STATE_FILTER
)
_PG_STATES_OF_RECIPIENT = select(*_STATE_COLUMNS).where(
    _OF_RECIPIENT, _SUBJECTS_ANY, *_STATE_FILTER
)
_PG_STATES_OF_RECIPIENT_OR_ROLE = select(*_STATE_COLUMNS).where(
    _OF_RECIPIENT_OR_ROLE, _SUBJECTS_ANY, *_STATE_FILTER
)
_ACTIVE = str(ConsentStatus.ACTIVE)
_EXPIRING = (str(ConsentStatus.ACTIVE), str(ConsentStatus.PAUSED))
_EXPIRED = str(ConsentStatus.EXPIRED)


def consent_states(
    session: Session,
    *,
    subject_ids: Collection[str],
    recipient_id: str,
    purpose: str,
    now: datetime,
    recipient_role: str | None = None,
) -> dict[str, ConsentState]:
    """Each subject's consent state for this recipient (or its role) and purpose at ``now``.

    One query, read in the caller's transaction: a withdrawal committed before it is seen.
    Expiry is computed here, at decision time, never left to a background job. Where a subject
    has several consents, a usable one wins (the newest of them); otherwise the newest explains
    the refusal. Consents are not merged: the state, its data range included, is that one
    consent's, the one the release's audit event names.
    """
    if not subject_ids:
        return {}
    if session.autoflush:  # as an ORM query would: this session's own changes are read too
        session.flush()
    params: dict[str, Any] = {
        "subject_ids": list(subject_ids),
        "recipient_id": recipient_id,
        "purpose": purpose,
    }
    on_postgresql = session.get_bind().dialect.name == "postgresql"
    if recipient_role is None:
        statement = _PG_STATES_OF_RECIPIENT if on_postgresql else _STATES_OF_RECIPIENT
    else:
        statement = (
            _PG_STATES_OF_RECIPIENT_OR_ROLE if on_postgresql else _STATES_OF_RECIPIENT_OR_ROLE
        )
        params["recipient_role"] = recipient_role
    rows = session.execute(statement, params).all()
    return states_from_rows(rows, subject_ids=subject_ids, now=now)


def states_from_rows(
    rows: Iterable[Sequence[Any]], *, subject_ids: Collection[str], now: datetime
) -> dict[str, ConsentState]:
    """:func:`consent_states` from rows of :data:`STATE_COLUMNS` the caller read (all of the
    subjects' rows that match :func:`state_condition`, in its transaction)."""
    # Per subject: the best row and its rank, (usable now, created_at) as in :func:`_rank`.
    best: dict[str, tuple[tuple[int, datetime], Sequence[Any]]] = {}
    for row in rows:
        status, starts_at, expires_at, created_at = row[2], row[3], row[4], row[5]
        rank = (1 if status == _ACTIVE and starts_at <= now < expires_at else 0, created_at)
        current = best.get(row[1])
        if current is None or rank > current[0]:
            best[row[1]] = (rank, row)
    states: dict[str, ConsentState] = {}
    for subject_id in subject_ids:
        found = best.get(subject_id)
        if found is None:
            states[subject_id] = ConsentState.missing()
            continue
        (
            consent_id, _, status, starts_at, expires_at, _, categories, sensitive, cross_border,
            receipt_id, fetches_per_day, recipient_id, data_from, data_until,
        ) = found[1]  # fmt: skip
        # As :func:`effective_status`: an active or paused consent past its end is expired.
        if status in _EXPIRING and now >= expires_at:
            status = _EXPIRED
        elif status == _ACTIVE and now < starts_at:
            status = MISSING
        states[subject_id] = ConsentState(
            consent_id=consent_id,
            status=str(status),
            categories=frozenset(categories),
            expires_at=expires_at,
            sensitive=sensitive,
            cross_border=cross_border,
            receipt_id=receipt_id,
            starts_at=starts_at,
            fetches_per_day=fetches_per_day,
            role_addressed=recipient_id is None,
            data_range=DataRange.of(data_from, data_until, expires_at),
        )
    return states


# --------------------------------------------------------------------------------------------
# History, receipts and transitions


def _receipt_claims(consent: Consent, *, event: str, seq: int, at: datetime) -> dict[str, Any]:
    terms = _terms_of(consent).snapshot()
    return {
        "consent": {
            "id": consent.id,
            "status": consent.status,
            "recipient": consent.recipient_id,
            "recipient_role": consent.recipient_role,
            "reason": consent.reason,
            **terms,
        },
        "event": {"type": event, "seq": seq, "at": at.isoformat()},
        "prev": consent.receipt_id,
    }


@dataclass(frozen=True)
class Effects:
    """What a consent change sets off besides its history row: a signed receipt, an audit
    event, and (for recipients' webhooks) the subject's pseudonym for the recipient. Each is
    optional: the hub's internal moves (:func:`set_status`) only record history."""

    signer: ReceiptSigner | None = None
    audit: AuditSink | None = None
    pseudonyms: SubjectPseudonyms | None = None


NO_EFFECTS = Effects()


def _append(
    session: Session,
    consent: Consent,
    *,
    from_status: str | None,
    actor: str,
    channel: str,
    reason: str,
    now: datetime,
    effects: Effects,
) -> ConsentEvent:
    """Append the history row for the consent's current state (and its receipt, outbox row and
    audit event). The consent row must be locked (or new)."""
    seq = consent.version + 1
    name = event_name(from_status, consent.status)
    receipt_id: str | None = None
    signer = effects.signer
    if signer is not None and consent.status != ConsentStatus.REQUESTED:
        signed = signer.sign(_receipt_claims(consent, event=name, seq=seq, at=now), issued_at=now)
        receipt_id = signed.receipt_id
        session.add(
            ConsentReceipt(
                id=signed.receipt_id,
                consent_id=consent.id,
                seq=seq,
                event=name,
                kid=signed.kid,
                jws=signed.jws,
                issued_at=now,
            )
        )
        consent.receipt_id = receipt_id
    consent.version = seq
    event = ConsentEvent(
        consent_id=consent.id,
        seq=seq,
        from_status=from_status,
        to_status=consent.status,
        actor=actor,
        channel=channel,
        reason=reason,
        terms=_terms_of(consent).snapshot(),
        receipt_id=receipt_id,
        at=now,
    )
    session.add(event)
    session.flush()
    if name in NOTIFIED_EVENTS:
        # A partner-addressed consent's recipient; a role-addressed one's, every partner that
        # received records under it (the consent's row lock waits for pulls still recording).
        recipients = (
            [consent.recipient_id]
            if consent.recipient_id is not None
            else partners_released(session, consent.id)
        )
        for partner_id in recipients:
            pseudonym = (
                effects.pseudonyms(partner_id, consent.subject_id)
                if effects.pseudonyms is not None
                else None
            )
            enqueue_notification(
                session,
                consent=consent,
                partner_id=partner_id,
                event_type=name,
                reason=reason,
                now=now,
                subject=pseudonym,
            )
    if effects.audit is not None:
        effects.audit(
            session,
            {
                "kind": "consent.changed",
                "partner_id": consent.recipient_id,
                "purpose": consent.purpose,
                "outcome": consent.status,
                "event": name,
                "consent_id": consent.id,
                "consent_ids": [receipt_id] if receipt_id else [],
                "from_status": from_status,
                "to_status": consent.status,
                "channel": channel,
                "actor_kind": actor.split(":", 1)[0],
            },
        )
    return event


def _lock(session: Session, consent_id: str, subject_id: str | None) -> Consent:
    """The consent's row, locked for this transaction. PostgreSQL: ``FOR UPDATE``. SQLite
    ignores that, so a no-op write first takes its database write lock, making the read and the
    write that follows one step (no upgrade deadlock between two writers)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(Consent).where(Consent.id == consent_id).values(version=Consent.version)
        )
    query = (
        select(Consent)
        .where(Consent.id == consent_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if subject_id is not None:
        query = query.where(Consent.subject_id == subject_id)
    consent = session.scalars(query).one_or_none()
    if consent is None:
        raise ConsentNotFoundError(consent_id)
    return consent


def _transition(
    session: Session,
    *,
    consent_id: str,
    subject_id: str | None,
    to_status: ConsentStatus,
    actor: str,
    channel: str,
    reason: str,
    now: datetime,
    effects: Effects,
) -> Consent:
    consent = _lock(session, consent_id, subject_id)
    current = consent.status
    if (
        to_status != ConsentStatus.EXPIRED
        and effective_status(consent, now) == ConsentStatus.EXPIRED
    ):
        raise InvalidConsentTransitionError(consent_id, ConsentStatus.EXPIRED, to_status)
    if to_status not in _ALLOWED_TRANSITIONS.get(current, frozenset()):
        raise InvalidConsentTransitionError(consent_id, current, to_status)
    consent.status = to_status
    _append(
        session,
        consent,
        from_status=current,
        actor=actor,
        channel=channel,
        reason=reason,
        now=now,
        effects=effects,
    )
    return consent


def _new_consent(
    session: Session,
    *,
    subject_id: str,
    recipient_id: str | None,
    recipient_role: str | None,
    requested_by: str | None,
    terms: ConsentTerms,
    status: ConsentStatus,
    reason: str,
    actor: str,
    channel: str,
    now: datetime,
    effects: Effects,
) -> Consent:
    if (recipient_id is None) == (recipient_role is None):
        raise InvalidConsentError("name either a recipient partner or a recipient role")
    consent = Consent(
        subject_id=subject_id,
        recipient_id=recipient_id,
        recipient_role=recipient_role,
        requested_by=requested_by,
        purpose=terms.purpose,
        categories=list(terms.categories),
        sensitive=terms.sensitive,
        cross_border=terms.cross_border,
        mode=str(terms.mode),
        retention_days=terms.retention_days,
        data_from=terms.data_from,
        data_until=terms.data_until,
        fetches_per_day=terms.fetches_per_day,
        reason=reason,
        requested_terms=terms.snapshot() if status == ConsentStatus.REQUESTED else None,
        status=status,
        starts_at=terms.starts_at,
        expires_at=terms.expires_at,
        created_at=now,
        version=0,
    )
    session.add(consent)
    session.flush()
    _append(
        session,
        consent,
        from_status=None,
        actor=actor,
        channel=channel,
        reason=reason if status == ConsentStatus.REQUESTED else "",
        now=now,
        effects=effects,
    )
    return consent


def _asked_terms(consent: Consent) -> ConsentTerms:
    asked = consent.requested_terms or {}

    def when(key: str) -> datetime | None:
        value = asked.get(key)
        return datetime.fromisoformat(value) if value else None

    starts = when("starts_at") or consent.starts_at
    expires = when("expires_at") or consent.expires_at
    return ConsentTerms(
        purpose=consent.purpose,
        categories=tuple(asked.get("categories", consent.categories)),
        starts_at=starts,
        expires_at=expires,
        sensitive=bool(asked.get("sensitive", consent.sensitive)),
        cross_border=bool(asked.get("cross_border", consent.cross_border)),
        mode=ConsentMode(asked.get("mode", consent.mode)),
        retention_days=asked.get("retention_days"),
        data_from=when("data_from"),
        data_until=when("data_until"),
        fetches_per_day=asked.get("fetches_per_day"),
    )


@dataclass(frozen=True)
class ConsentOverview:
    consent: Consent
    status: str
    summary: str
    #: Fetches counted today (UTC) against a capped consent; ``None`` when it has no cap.
    fetches_today: int | None = None
    #: The partners that received records under a role-addressed consent, in id order (the
    #: consumer's right to know the recipients); empty for a partner-addressed one.
    received_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class GrantChoices:
    """What the consumer chose when granting a request; ``None`` keeps what was asked, except
    the separate consents (``sensitive``, ``cross_border``), which are never assumed."""

    categories: Sequence[str] | None = None
    duration_days: int | None = None
    sensitive: bool = False
    cross_border: bool = False
    mode: ConsentMode | None = None
    retention_days: int | None = None
    fetches_per_day: int | None = None
    data_from: datetime | None = None
    data_until: datetime | None = None


class ConsentService:
    """The consent service, built once per process with the taxonomy and the receipt signer.

    Every method takes the caller's session (the caller commits) and keyword-only arguments.
    """

    def __init__(
        self,
        *,
        taxonomy: Taxonomy,
        signer: ReceiptSigner | None = None,
        audit: AuditSink | None = None,
        directory: PartnerDirectory | None = None,
        pseudonyms: SubjectPseudonyms | None = None,
    ) -> None:
        self.taxonomy = taxonomy
        self.signer = signer
        self.audit = audit
        self.directory = directory
        self.effects = Effects(signer=signer, audit=audit, pseudonyms=pseudonyms)

    # -- partner side -------------------------------------------------------------------------

    def request_consent(
        self,
        session: Session,
        *,
        subject_id: str,
        recipient_id: str,
        recipient_role: str,
        purpose: str,
        categories: Sequence[str],
        duration_days: int,
        reason: str,
        sensitive: bool = False,
        cross_border: bool = False,
        mode: ConsentMode = ConsentMode.STORE,
        retention_days: int | None = None,
        data_from: datetime | None = None,
        data_until: datetime | None = None,
        fetches_per_day: int | None = None,
        now: datetime | None = None,
    ) -> Consent:
        """A recipient asks a subject for consent; the consumer grants (maybe narrower) or
        denies it. The request's own terms are checked as a grant would be."""
        now = now or utcnow()
        if duration_days < 1:
            raise InvalidConsentError("duration_days must be at least 1", field="duration_days")
        if not reason.strip():
            raise InvalidConsentError("explain to the consumer why you ask", field="reason")
        terms = ConsentTerms(
            purpose=purpose,
            categories=tuple(sorted(set(categories))),
            starts_at=now,
            expires_at=now + timedelta(days=duration_days),
            sensitive=sensitive,
            cross_border=cross_border,
            mode=mode,
            retention_days=retention_days,
            data_from=data_from,
            data_until=data_until,
            fetches_per_day=fetches_per_day,
        )
        validate_terms(self.taxonomy, terms, now=now, recipient_role=recipient_role)
        return _new_consent(
            session,
            subject_id=subject_id,
            recipient_id=recipient_id,
            recipient_role=None,
            requested_by=recipient_id,
            terms=terms,
            status=ConsentStatus.REQUESTED,
            reason=reason.strip(),
            actor=f"partner:{recipient_id}",
            channel="api",
            now=now,
            effects=self.effects,
        )

    def revoke(
        self,
        session: Session,
        *,
        consent_id: str,
        actor: str,
        reason: str,
        channel: str = "api",
        now: datetime | None = None,
    ) -> Consent:
        """The hub or an admin revokes a consent; a reason is required."""
        return self._end_by_hub(
            session, consent_id, ConsentStatus.REVOKED, actor, reason, channel, now,
            missing_reason="a revocation needs a reason",
        )  # fmt: skip

    def close_request(
        self,
        session: Session,
        *,
        consent_id: str,
        actor: str,
        reason: str,
        channel: str = "api",
        now: datetime | None = None,
    ) -> Consent:
        """The hub closes a pending request (``denied``) on the subject's behalf, e.g. when it
        erases the subject; a reason is required. The history names ``actor``, not the subject."""
        return self._end_by_hub(
            session, consent_id, ConsentStatus.DENIED, actor, reason, channel, now,
            missing_reason="closing a request needs a reason",
        )  # fmt: skip

    def _end_by_hub(
        self,
        session: Session,
        consent_id: str,
        to_status: ConsentStatus,
        actor: str,
        reason: str,
        channel: str,
        now: datetime | None,
        *,
        missing_reason: str,
    ) -> Consent:
        """A transition the hub makes, not the subject: the reason is required and recorded."""
        if not reason.strip():
            raise InvalidConsentError(missing_reason, field="reason")
        return _transition(
            session,
            consent_id=consent_id,
            subject_id=None,
            to_status=to_status,
            actor=actor,
            channel=channel,
            reason=reason.strip(),
            now=now or utcnow(),
            effects=self.effects,
        )

    # -- consumer side ------------------------------------------------------------------------

    def grant(
        self,
        session: Session,
        *,
        subject_id: str,
        recipient_id: str | None = None,
        recipient_role: str | None = None,
        terms: ConsentTerms,
        channel: str,
        now: datetime | None = None,
    ) -> Consent:
        """The consumer grants a consent nobody asked for (or the demo seeds one)."""
        now = now or utcnow()
        validate_terms(self.taxonomy, terms, now=now, recipient_role=recipient_role)
        return _new_consent(
            session,
            subject_id=subject_id,
            recipient_id=recipient_id,
            recipient_role=recipient_role,
            requested_by=None,
            terms=terms,
            status=ConsentStatus.ACTIVE,
            reason="",
            actor=f"subject:{subject_id}",
            channel=channel,
            now=now,
            effects=self.effects,
        )

    def grant_request(
        self,
        session: Session,
        *,
        consent_id: str,
        subject_id: str,
        choices: GrantChoices,
        channel: str,
        now: datetime | None = None,
    ) -> Consent:
        """The consumer grants a pending request, possibly narrower; it starts now."""
        now = now or utcnow()
        consent = _lock(session, consent_id, subject_id)
        if consent.status != ConsentStatus.REQUESTED:
            raise InvalidConsentTransitionError(consent_id, consent.status, ConsentStatus.ACTIVE)
        asked = _asked_terms(consent)
        if choices.duration_days is not None and choices.duration_days < 1:
            raise InvalidConsentError("duration_days must be at least 1", field="duration_days")
        duration = (
            timedelta(days=choices.duration_days)
            if choices.duration_days is not None
            else asked.expires_at - asked.starts_at
        )
        granted = ConsentTerms(
            purpose=consent.purpose,
            categories=self._granted_categories(asked, choices),
            starts_at=now,
            expires_at=now + duration,
            sensitive=choices.sensitive,
            cross_border=choices.cross_border,
            mode=choices.mode or asked.mode,
            retention_days=choices.retention_days
            if choices.retention_days is not None
            else asked.retention_days,
            data_from=choices.data_from or asked.data_from,
            data_until=choices.data_until or asked.data_until,
            fetches_per_day=choices.fetches_per_day or asked.fetches_per_day,
        )
        if granted.mode == ConsentMode.VIEW_ONCE:
            granted = replace(granted, retention_days=None)
        # The asked range is judged from the grant's start, so a late answer is not "wider".
        asked_now = replace(
            asked, starts_at=now, expires_at=now + (asked.expires_at - asked.starts_at)
        )
        check_narrowing(asked_now, granted)
        validate_terms(self.taxonomy, granted, now=now, recipient_role=None)
        _apply_terms(consent, granted)
        consent.status = ConsentStatus.ACTIVE
        _append(
            session,
            consent,
            from_status=ConsentStatus.REQUESTED,
            actor=f"subject:{subject_id}",
            channel=channel,
            reason="",
            now=now,
            effects=self.effects,
        )
        return consent

    def _granted_categories(self, asked: ConsentTerms, choices: GrantChoices) -> tuple[str, ...]:
        """Explicit categories as chosen; otherwise what was asked, less the sensitive ones
        unless the separate sensitive consent is given."""
        if choices.categories is not None:
            return tuple(sorted(set(choices.categories)))
        if choices.sensitive:
            return asked.categories
        kept = tuple(c for c in asked.categories if not self.taxonomy.is_sensitive(c))
        if not kept:
            raise InvalidConsentError(
                "every requested category is sensitive: grant the separate sensitive consent "
                "or deny the request",
                field="sensitive",
            )
        return kept

    def deny_request(
        self,
        session: Session,
        *,
        consent_id: str,
        subject_id: str,
        channel: str,
        reason: str = "",
        now: datetime | None = None,
    ) -> Consent:
        return self._subject_change(
            session, consent_id, subject_id, ConsentStatus.DENIED, channel, reason, now
        )

    def pause(
        self,
        session: Session,
        *,
        consent_id: str,
        subject_id: str,
        channel: str,
        reason: str = "",
        now: datetime | None = None,
    ) -> Consent:
        return self._subject_change(
            session, consent_id, subject_id, ConsentStatus.PAUSED, channel, reason, now
        )

    def resume(
        self,
        session: Session,
        *,
        consent_id: str,
        subject_id: str,
        channel: str,
        reason: str = "",
        now: datetime | None = None,
    ) -> Consent:
        consent = _lock(session, consent_id, subject_id)
        if consent.status != ConsentStatus.PAUSED:
            raise InvalidConsentTransitionError(consent_id, consent.status, ConsentStatus.ACTIVE)
        return self._subject_change(
            session, consent_id, subject_id, ConsentStatus.ACTIVE, channel, reason, now
        )

    def withdraw(
        self,
        session: Session,
        *,
        consent_id: str,
        subject_id: str,
        channel: str,
        reason: str = "",
        now: datetime | None = None,
    ) -> Consent:
        """Takes effect for every release whose consent query runs after the commit."""
        return self._subject_change(
            session, consent_id, subject_id, ConsentStatus.WITHDRAWN, channel, reason, now
        )

    def _subject_change(
        self,
        session: Session,
        consent_id: str,
        subject_id: str,
        to_status: ConsentStatus,
        channel: str,
        reason: str,
        now: datetime | None,
    ) -> Consent:
        return _transition(
            session,
            consent_id=consent_id,
            subject_id=subject_id,
            to_status=to_status,
            actor=f"subject:{subject_id}",
            channel=channel,
            reason=reason,
            now=now or utcnow(),
            effects=self.effects,
        )

    # -- the sweep ----------------------------------------------------------------------------

    def sweep_expired(
        self, session: Session, *, now: datetime | None = None, limit: int = 500
    ) -> int:
        """Record ``expired`` for consents past their end (decisions already treat them so) and
        notify their recipients. Safe to run from several processes (rows are skip-locked).
        Also deletes the fetch counts of days before today (``consent.fetches``)."""
        now = now or utcnow()
        prune_fetch_counts(session, now=now)
        ids = session.scalars(
            select(Consent.id)
            .where(
                Consent.status.in_([ConsentStatus.ACTIVE, ConsentStatus.PAUSED]),
                Consent.expires_at <= now,
            )
            .order_by(Consent.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for consent_id in ids:
            _transition(
                session,
                consent_id=consent_id,
                subject_id=None,
                to_status=ConsentStatus.EXPIRED,
                actor="hub:expiry-sweep",
                channel="sweep",
                reason="the consent reached its end date",
                now=now,
                effects=self.effects,
            )
        return len(ids)

    # -- reading ------------------------------------------------------------------------------

    def consents_of_subject(
        self, session: Session, *, subject_id: str, statuses: Collection[str] | None = None
    ) -> Sequence[Consent]:
        query = select(Consent).where(Consent.subject_id == subject_id)
        if statuses:
            query = query.where(Consent.status.in_(list(statuses)))
        return session.scalars(query.order_by(Consent.created_at, Consent.id)).all()

    def consent_of_subject(self, session: Session, *, subject_id: str, consent_id: str) -> Consent:
        consent = session.scalars(
            select(Consent).where(Consent.id == consent_id, Consent.subject_id == subject_id)
        ).one_or_none()
        if consent is None:
            raise ConsentNotFoundError(consent_id)
        return consent

    def consent_of_recipient(
        self, session: Session, *, partner_id: str, consent_id: str
    ) -> Consent:
        # A role-addressed consent is the business of the partners that received records
        # under it (they are told when it ends, and check its receipts).
        consent = session.scalars(
            select(Consent).where(
                Consent.id == consent_id,
                or_(
                    Consent.recipient_id == partner_id,
                    Consent.requested_by == partner_id,
                    Consent.id.in_(
                        select(ConsentRelease.consent_id).where(
                            ConsentRelease.consent_id == consent_id,
                            ConsentRelease.partner_id == partner_id,
                        )
                    ),
                ),
            )
        ).one_or_none()
        if consent is None:
            raise ConsentNotFoundError(consent_id)
        return consent

    def consents_of_recipient(
        self,
        session: Session,
        *,
        partner_id: str,
        statuses: Collection[str] | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> Sequence[Consent]:
        """The consents a partner holds or asked for (``requested_by`` is always the recipient)
        and the role-addressed ones it received records under, in id order: the consents
        :meth:`consent_of_recipient` shows it."""
        held = union(
            select(Consent.id).where(Consent.recipient_id == partner_id),
            select(ConsentRelease.consent_id).where(ConsentRelease.partner_id == partner_id),
        )
        query = select(Consent).where(Consent.id.in_(held))
        if statuses:
            query = query.where(Consent.status.in_(list(statuses)))
        if after:
            query = query.where(Consent.id > after)
        return session.scalars(query.order_by(Consent.id).limit(limit)).all()

    def history(self, session: Session, *, consent_id: str) -> Sequence[ConsentEvent]:
        return session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.consent_id == consent_id)
            .order_by(ConsentEvent.seq)
        ).all()

    def receipts(self, session: Session, *, consent_id: str) -> Sequence[ConsentReceipt]:
        return session.scalars(
            select(ConsentReceipt)
            .where(ConsentReceipt.consent_id == consent_id)
            .order_by(ConsentReceipt.seq)
        ).all()

    def overview(
        self,
        session: Session,
        *,
        subject_id: str,
        statuses: Collection[str] | None = None,
        now: datetime | None = None,
    ) -> list[ConsentOverview]:
        """The consumer's consents (or pending requests), each with its status at ``now`` and
        what it allows in plain words."""
        now = now or utcnow()
        consents = self.consents_of_subject(session, subject_id=subject_id, statuses=statuses)
        return self.summarise(session, consents, now=now)

    def summarise(
        self, session: Session, consents: Sequence[Consent], *, now: datetime | None = None
    ) -> list[ConsentOverview]:
        now = now or utcnow()
        ids = sorted({c.recipient_id for c in consents if c.recipient_id})
        names = dict(self.directory(session, ids)) if self.directory and ids else {}
        capped = [c.id for c in consents if c.fetches_per_day is not None]
        fetched = fetches_today(session, capped, now=now) if capped else {}
        by_role = [c.id for c in consents if c.recipient_role is not None]
        received = partners_released_under(session, by_role) if by_role else {}
        return [
            ConsentOverview(
                consent=c,
                status=effective_status(c, now),
                summary=self.describe(c, recipient_name=names.get(c.recipient_id or "", "")),
                fetches_today=None if c.fetches_per_day is None else fetched.get(c.id, 0),
                received_by=tuple(received.get(c.id, ())),
            )
            for c in consents
        ]

    def describe(self, consent: Consent, *, recipient_name: str = "") -> str:
        """What a consent allows, in plain words, for the consumer."""
        purpose = self.taxonomy.purposes.get(consent.purpose)
        what = ", ".join(
            (
                self.taxonomy.categories[c].description.rstrip(".")
                if c in self.taxonomy.categories
                else c
            )
            for c in consent.categories
        )
        why = purpose.description.rstrip(".") if purpose else consent.purpose
        who = (
            (recipient_name or consent.recipient_id or "")
            if consent.recipient_id
            else f"Any {consent.recipient_role}"
        )
        verb = "may see once" if consent.mode == ConsentMode.VIEW_ONCE else "may read and keep"
        text = (
            f"{who} {verb}: {what}. Purpose: {why}. "
            f"From {consent.starts_at.date().isoformat()} "
            f"until {consent.expires_at.date().isoformat()}."
        )
        if consent.sensitive:
            text += " Includes sensitive personal information (separately granted)."
        if consent.cross_border:
            text += " May be transferred abroad (separately granted)."
        return text


def _apply_terms(consent: Consent, terms: ConsentTerms) -> None:
    consent.categories = list(terms.categories)
    consent.starts_at = terms.starts_at
    consent.expires_at = terms.expires_at
    consent.sensitive = terms.sensitive
    consent.cross_border = terms.cross_border
    consent.mode = str(terms.mode)
    consent.retention_days = terms.retention_days
    consent.data_from = terms.data_from
    consent.data_until = terms.data_until
    consent.fetches_per_day = terms.fetches_per_day


# --------------------------------------------------------------------------------------------
# The first version's functions, kept for callers that need no receipts (tests, tools)


def grant_consent(
    session: Session,
    *,
    subject_id: str,
    recipient_id: str,
    purpose: str,
    categories: Sequence[str],
    expires_at: datetime,
    sensitive: bool = False,
    cross_border: bool = False,
    starts_at: datetime | None = None,
    actor: str,
    channel: str,
    now: datetime | None = None,
) -> Consent:
    """Record an active consent and its first history row (no taxonomy check, no receipt)."""
    now = now or utcnow()
    starts_at = starts_at or now
    if not categories:
        raise InvalidConsentError("a consent must name at least one data category")
    if expires_at <= starts_at:
        raise InvalidConsentError("expires_at must be after starts_at")
    terms = ConsentTerms(
        purpose=purpose,
        categories=tuple(sorted(set(categories))),
        starts_at=starts_at,
        expires_at=expires_at,
        sensitive=sensitive,
        cross_border=cross_border,
    )
    consent = _new_consent(
        session,
        subject_id=subject_id,
        recipient_id=recipient_id,
        recipient_role=None,
        requested_by=None,
        terms=terms,
        status=ConsentStatus.ACTIVE,
        reason="",
        actor=actor,
        channel=channel,
        now=now,
        effects=NO_EFFECTS,
    )
    return consent


def change_status(
    session: Session,
    *,
    consent_id: str,
    subject_id: str | None,
    to_status: ConsentStatus,
    actor: str,
    channel: str,
    reason: str = "",
    now: datetime | None = None,
) -> Consent:
    """Move a consent to a new status, locking its row so concurrent changes serialise.

    ``subject_id`` scopes the look-up to the consumer's own consents (``None`` for the hub).
    """
    return _transition(
        session,
        consent_id=consent_id,
        subject_id=subject_id,
        to_status=to_status,
        actor=actor,
        channel=channel,
        reason=reason,
        now=now or utcnow(),
        effects=NO_EFFECTS,
    )


def withdraw_consent(
    session: Session, *, consent_id: str, subject_id: str, channel: str, reason: str = ""
) -> Consent:
    """The consumer withdraws a consent; it takes effect for every release that starts after."""
    return change_status(
        session,
        consent_id=consent_id,
        subject_id=subject_id,
        to_status=ConsentStatus.WITHDRAWN,
        actor=f"subject:{subject_id}",
        channel=channel,
        reason=reason,
    )


def consents_of_subject(session: Session, subject_id: str) -> Sequence[Consent]:
    return session.scalars(
        select(Consent).where(Consent.subject_id == subject_id).order_by(Consent.created_at)
    ).all()


__all__ = [
    "MISSING",
    "STATE_COLUMNS",
    "ConsentService",
    "ConsentState",
    "ConsentTerms",
    "GrantChoices",
    "change_status",
    "check_narrowing",
    "consent_states",
    "effective_status",
    "grant_consent",
    "state_condition",
    "states_from_rows",
    "validate_terms",
    "withdraw_consent",
]
