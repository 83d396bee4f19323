"""The consent service on its own: terms, narrowing, lifecycle, history, expiry and the sweep."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.errors import (
    ConsentNotFoundError,
    FairUseExceededError,
    InvalidConsentError,
    InvalidConsentTransitionError,
    WideningError,
)
from consent.models import (
    Consent,
    ConsentEvent,
    ConsentMode,
    ConsentNotification,
    ConsentReceipt,
    ConsentStatus,
)
from consent.service import (
    MISSING,
    ConsentService,
    ConsentTerms,
    GrantChoices,
    check_narrowing,
    consent_states,
    validate_terms,
)
from consent.taxonomy import Taxonomy
from hub.demo.population import Consumer
from hub.settings import PROJECT_ROOT
from hub.store.base import utcnow
from tests.consent.support import LENDER, PURPOSE, person_without_consent
from tests.support.hub import HubEnv

TAXONOMY = Taxonomy.load(PROJECT_ROOT / "policies")
NOW = datetime.fromisoformat("2026-06-01T00:00:00+00:00")
TAKEN: set[str] = set()


def terms(**changes: object) -> ConsentTerms:
    base = ConsentTerms(
        purpose=PURPOSE,
        categories=("identity", "income", "loan"),
        starts_at=NOW,
        expires_at=NOW + timedelta(days=60),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_caps_come_from_the_policies_taxonomy() -> None:
    caps = TAXONOMY.purposes[PURPOSE].fair_use
    assert (caps.max_duration_days, caps.max_data_range_days, caps.fetches_per_day) == (
        90,
        730,
        5000,
    )
    assert TAXONOMY.is_sensitive("identity_document") and not TAXONOMY.is_sensitive("income")


def test_the_cap_itself_is_allowed() -> None:
    validate_terms(
        TAXONOMY,
        terms(expires_at=NOW + timedelta(days=90), fetches_per_day=5000),
        now=NOW,
        recipient_role="lender",
    )


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"purpose": "nope"}, InvalidConsentError, "purpose"),
        ({"categories": ()}, InvalidConsentError, "categories"),
        ({"categories": ("identity", "nope")}, InvalidConsentError, "categories"),
        ({"categories": ("claim",)}, InvalidConsentError, "categories"),
        ({"starts_at": NOW - timedelta(days=1)}, InvalidConsentError, "starts_at"),
        ({"expires_at": NOW - timedelta(seconds=1)}, InvalidConsentError, "expires_at"),
        (
            {"starts_at": NOW + timedelta(days=2), "expires_at": NOW + timedelta(days=1)},
            InvalidConsentError,
            "expires_at",
        ),
        (
            {"expires_at": NOW + timedelta(days=90, seconds=1)},
            FairUseExceededError,
            "duration_days",
        ),
        ({"fetches_per_day": 5001}, FairUseExceededError, "fetches_per_day"),
        ({"fetches_per_day": 0}, InvalidConsentError, "fetches_per_day"),
        (
            {"data_from": NOW - timedelta(days=731)},
            FairUseExceededError,
            "data_until",
        ),
        ({"data_until": NOW}, InvalidConsentError, "data_from"),
        ({"categories": ("identity_document",)}, InvalidConsentError, "sensitive"),
        (
            {"mode": ConsentMode.VIEW_ONCE, "retention_days": 3},
            InvalidConsentError,
            "retention_days",
        ),
        ({"expires_at": datetime(2026, 7, 1)}, InvalidConsentError, "expires_at"),
    ],
)
def test_bad_terms(changes: dict[str, object], error: type[Exception], field: str) -> None:
    with pytest.raises(error) as caught:
        validate_terms(TAXONOMY, terms(**changes), now=NOW, recipient_role="lender")
    assert isinstance(caught.value, InvalidConsentError) and caught.value.field == field


def test_a_role_may_only_declare_its_purposes() -> None:
    with pytest.raises(InvalidConsentError):
        validate_terms(TAXONOMY, terms(), now=NOW, recipient_role="insurer")


@pytest.mark.parametrize(
    ("granted", "field"),
    [
        ({"categories": ("identity", "income", "loan", "credit")}, "categories"),
        ({"expires_at": NOW + timedelta(days=61)}, "duration_days"),
        ({"sensitive": True}, "sensitive"),
        ({"cross_border": True}, "cross_border"),
        ({"fetches_per_day": 11}, "fetches_per_day"),
        ({"fetches_per_day": None}, "fetches_per_day"),
        ({"data_from": NOW - timedelta(days=11)}, "data_from"),
        ({"data_from": None}, "data_from"),
    ],
)
def test_a_grant_never_widens(granted: dict[str, object], field: str) -> None:
    asked = terms(fetches_per_day=10, data_from=NOW - timedelta(days=10))
    with pytest.raises(WideningError) as caught:
        check_narrowing(asked, replace(asked, **granted))  # type: ignore[arg-type]
    assert caught.value.field == field


def test_narrowing_is_fine() -> None:
    asked = terms(fetches_per_day=10, retention_days=30)
    check_narrowing(
        asked,
        replace(
            asked,
            categories=("loan",),
            expires_at=NOW + timedelta(days=1),
            fetches_per_day=1,
            mode=ConsentMode.VIEW_ONCE,
            retention_days=None,
        ),
    )
    view_once = terms(mode=ConsentMode.VIEW_ONCE)
    with pytest.raises(WideningError):
        check_narrowing(view_once, replace(view_once, mode=ConsentMode.STORE))


@pytest.fixture
def session(hub: HubEnv) -> Iterator[Session]:
    with hub.session() as s:
        yield s
        s.rollback()


@pytest.fixture
def service(hub: HubEnv) -> ConsentService:
    return hub.runtime.consents


def lender_id(hub: HubEnv) -> str:
    return str(hub.partner(LENDER)["partner_id"])


def test_the_whole_lifecycle_is_history(
    hub: HubEnv, people: list[Consumer], session: Session, service: ConsentService
) -> None:
    _, subject_id = person_without_consent(hub, people, TAKEN)
    now = utcnow()
    asked = service.request_consent(
        session, subject_id=subject_id, recipient_id=lender_id(hub), recipient_role="lender",
        purpose=PURPOSE, categories=["identity", "income", "loan"], duration_days=30,
        reason="loan", now=now,
    )  # fmt: skip
    assert asked.status == ConsentStatus.REQUESTED and asked.receipt_id is None
    consent = service.grant_request(
        session, consent_id=asked.id, subject_id=subject_id,
        choices=GrantChoices(categories=["income", "loan"], duration_days=10), channel="test",
        now=now + timedelta(minutes=1),
    )  # fmt: skip
    assert consent.expires_at == now + timedelta(minutes=1, days=10)
    step = now + timedelta(minutes=2)
    service.pause(session, consent_id=consent.id, subject_id=subject_id, channel="test", now=step)
    service.resume(session, consent_id=consent.id, subject_id=subject_id, channel="test", now=step)
    service.withdraw(session, consent_id=consent.id, subject_id=subject_id, channel="portal",
                     reason="sold the car", now=step)  # fmt: skip
    for change in (service.withdraw, service.pause, service.resume):
        with pytest.raises(InvalidConsentTransitionError):
            change(session, consent_id=consent.id, subject_id=subject_id, channel="test")
    with pytest.raises(InvalidConsentTransitionError):
        service.revoke(session, consent_id=consent.id, actor="admin:x", reason="late")

    events = service.history(session, consent_id=consent.id)
    assert [(e.from_status, e.to_status) for e in events] == [
        (None, "requested"), ("requested", "active"), ("active", "paused"),
        ("paused", "active"), ("active", "withdrawn"),
    ]  # fmt: skip
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].terms and events[0].terms["categories"] == ["identity", "income", "loan"]
    assert events[1].terms and events[1].terms["categories"] == ["income", "loan"]
    assert events[-1].actor == f"subject:{subject_id}" and events[-1].channel == "portal"
    receipts = service.receipts(session, consent_id=consent.id)
    assert [r.event for r in receipts] == [
        "consent.granted", "consent.paused", "consent.resumed", "consent.withdrawn",
    ]  # fmt: skip
    assert [e.receipt_id for e in events[1:]] == [r.id for r in receipts]
    notes = session.scalars(
        select(ConsentNotification).where(ConsentNotification.consent_id == consent.id)
    ).all()
    assert [n.event_type for n in notes] == ["consent.withdrawn"]


def test_someone_elses_consent_is_not_found(
    hub: HubEnv, people: list[Consumer], session: Session, service: ConsentService
) -> None:
    _, subject_id = person_without_consent(hub, people, TAKEN)
    _, other = person_without_consent(hub, people, TAKEN)
    asked = service.request_consent(
        session, subject_id=subject_id, recipient_id=lender_id(hub), recipient_role="lender",
        purpose=PURPOSE, categories=["loan"], duration_days=30, reason="loan",
    )  # fmt: skip
    with pytest.raises(ConsentNotFoundError):
        service.grant_request(
            session, consent_id=asked.id, subject_id=other, choices=GrantChoices(), channel="t"
        )
    with pytest.raises(ConsentNotFoundError):
        service.withdraw(session, consent_id=asked.id, subject_id=other, channel="t")


def test_expiry_is_decided_at_decision_time_and_recorded_by_the_sweep(
    hub: HubEnv, people: list[Consumer], session: Session, service: ConsentService
) -> None:
    _, subject_id = person_without_consent(hub, people, TAKEN)
    start = utcnow() - timedelta(days=5)
    consent = service.grant(
        session, subject_id=subject_id, recipient_id=lender_id(hub),
        terms=ConsentTerms(purpose=PURPOSE, categories=("loan",), starts_at=start,
                           expires_at=start + timedelta(days=2)),
        channel="test", now=start,
    )  # fmt: skip
    now = utcnow()
    state = consent_states(
        session, subject_ids=[subject_id], recipient_id=lender_id(hub), purpose=PURPOSE, now=now
    )[subject_id]
    assert state.status == "expired" and state.consent_id == consent.id
    assert state.receipt_id == consent.receipt_id
    with pytest.raises(InvalidConsentTransitionError) as caught:
        service.withdraw(session, consent_id=consent.id, subject_id=subject_id, channel="t")
    assert caught.value.current == "expired"

    swept = service.sweep_expired(session, now=now)
    assert swept >= 1
    session.refresh(consent)
    assert consent.status == ConsentStatus.EXPIRED
    last = service.history(session, consent_id=consent.id)[-1]
    assert (last.from_status, last.to_status, last.actor) == (
        "active",
        "expired",
        "hub:expiry-sweep",
    )
    assert session.scalars(
        select(ConsentNotification.event_type).where(ConsentNotification.consent_id == consent.id)
    ).all() == ["consent.expired"]
    assert service.sweep_expired(session, now=now) == 0


def test_role_consents_reach_every_partner_of_the_role(
    hub: HubEnv, people: list[Consumer], session: Session, service: ConsentService
) -> None:
    _, subject_id = person_without_consent(hub, people, TAKEN)
    now = utcnow()
    service.grant(
        session, subject_id=subject_id, recipient_role="lender",
        terms=ConsentTerms(purpose=PURPOSE, categories=("loan",), starts_at=now,
                           expires_at=now + timedelta(days=3)),
        channel="test", now=now,
    )  # fmt: skip
    for ref in (LENDER, "lender-pearl"):
        partner = str(hub.partner(ref)["partner_id"])
        state = consent_states(
            session, subject_ids=[subject_id], recipient_id=partner, purpose=PURPOSE, now=now,
            recipient_role="lender",
        )[subject_id]  # fmt: skip
        assert state.status == "active"
    insurer = str(hub.partner("insurer-anxin")["partner_id"])
    state = consent_states(
        session, subject_ids=[subject_id], recipient_id=insurer, purpose=PURPOSE, now=now,
        recipient_role="insurer",
    )[subject_id]  # fmt: skip
    assert state.status == MISSING


def test_history_rows_are_never_rewritten(
    hub: HubEnv, people: list[Consumer], session: Session, service: ConsentService
) -> None:
    """Every stored event and receipt is still there, unchanged, after later changes."""
    _, subject_id = person_without_consent(hub, people, TAKEN)
    now = utcnow()
    consent = service.grant(
        session, subject_id=subject_id, recipient_id=lender_id(hub),
        terms=ConsentTerms(purpose=PURPOSE, categories=("loan",), starts_at=now,
                           expires_at=now + timedelta(days=3)),
        channel="test", now=now,
    )  # fmt: skip
    first_event = [(e.id, e.to_status, dict(e.terms or {})) for e in service.history(
        session, consent_id=consent.id)]  # fmt: skip
    first_receipt = [(r.id, r.jws) for r in service.receipts(session, consent_id=consent.id)]
    service.withdraw(session, consent_id=consent.id, subject_id=subject_id, channel="t")
    again = [(e.id, e.to_status, dict(e.terms or {})) for e in service.history(
        session, consent_id=consent.id)]  # fmt: skip
    assert again[: len(first_event)] == first_event
    receipts = session.scalars(
        select(ConsentReceipt).where(ConsentReceipt.consent_id == consent.id)
    ).all()
    assert [(r.id, r.jws) for r in receipts][:1] == first_receipt
    assert (
        session.scalars(select(ConsentEvent).where(ConsentEvent.consent_id == consent.id))
        .all()[-1]
        .to_status
        == "withdrawn"
    )
    assert session.get(Consent, consent.id) is not None


def test_states_rank_a_subjects_consents_and_see_unflushed_changes(
    hub: HubEnv, people: list[Consumer], session: Session, service: ConsentService
) -> None:
    """A usable consent wins over a newer unusable one; otherwise the newest explains; what
    this session changed but has not flushed is what the states are computed from."""
    _, subject_id = person_without_consent(hub, people, TAKEN)
    now = utcnow()

    def grant(start: datetime, days: int) -> Consent:
        return service.grant(
            session, subject_id=subject_id, recipient_id=lender_id(hub),
            terms=ConsentTerms(purpose=PURPOSE, categories=("loan",), starts_at=start,
                               expires_at=start + timedelta(days=days)),
            channel="test", now=start,
        )  # fmt: skip

    def state() -> str | None:
        found = consent_states(
            session, subject_ids=[subject_id], recipient_id=lender_id(hub), purpose=PURPOSE,
            now=now, recipient_role="lender",
        )[subject_id]  # fmt: skip
        return found.consent_id if found.status == "active" else found.status

    usable = grant(now - timedelta(minutes=1), 3)
    newer = grant(now - timedelta(seconds=1), 3)
    service.withdraw(session, consent_id=newer.id, subject_id=subject_id, channel="t")
    assert state() == usable.id  # usable beats newer
    usable.status = ConsentStatus.PAUSED  # in memory only: autoflush writes it first
    assert usable in session.dirty
    assert state() == "withdrawn"  # nothing usable: the newest explains


def test_states_query_keeps_the_recipient_out_of_sqlites_index_choice(session: Session) -> None:
    """On SQLite the page's consents are found through the subjects, not by reading every
    consent of the recipient and purpose (the planner's choice without statistics)."""
    from sqlalchemy.dialects import postgresql, sqlite

    from consent.service import _STATES_OF_RECIPIENT_OR_ROLE as statement

    assert "+consents.recipient_id" in str(statement.compile(dialect=sqlite.dialect()))
    assert "+consents" not in str(statement.compile(dialect=postgresql.dialect()))
    if session.get_bind().dialect.name != "sqlite":
        return
    bound = statement.params(
        subject_ids=["a", "b", "c"], recipient_id="ptn_x", recipient_role="lender", purpose="p"
    )
    sql = str(
        bound.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
    )
    plan = session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + sql).all()
    details = " ".join(str(row[-1]) for row in plan)
    assert "ix_consents_subject_id" in details and "recipient_purpose" not in details
