"""A consent's ``fetches_per_day`` is enforced at release time: each pull that releases a
subject's records counts one fetch of their consent on the pull's UTC day; past the cap the
subject's records are withheld (``fair_use.fetches_exceeded``), the rest of the page is not."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest
from sqlalchemy import event, select

from consent.fetches import FETCHES_EXCEEDED, fetch_day
from consent.models import ConsentFetchCount
from hub.audit.models import AuditEvent
from hub.auth.tokens import AuthenticatedPartner
from hub.demo.population import Consumer, generate_population
from hub.errors import NotFoundError
from hub.policy import Decision
from hub.policy.interfaces import new_decision_id
from hub.records.models import Record
from hub.release.pipeline import PullRequest, ReleasedPage, ReleaseGates, pull_page
from hub.store.base import utcnow
from tests.conftest import TEST_CONSUMERS
from tests.consent.support import subject_of
from tests.support.consents import grant_capped
from tests.support.explain import explained
from tests.support.hub import HubEnv
from tests.support.locks import waits_for_a_lock

LENDER = "lender-jinqiao"
DATASET = "dealer-huadong.loan-applications"
PURPOSE = "credit_assessment"


def caller(hub: HubEnv) -> AuthenticatedPartner:
    return AuthenticatedPartner(
        partner_id=str(hub.partner(LENDER)["partner_id"]),
        client_id="client",
        role="lender",
        jurisdiction="CN",
        name=LENDER,
        scopes=frozenset({"records:pull"}),
        token_id="tok",
    )


def pull(
    hub: HubEnv,
    request_id: str,
    now: datetime,
    *,
    record_key: str | None = None,
    commit: bool = True,
    gates: ReleaseGates | None = None,
) -> ReleasedPage:
    """The whole dataset in one page (or one record), at ``now``."""
    with hub.session() as session:
        page = pull_page(
            session,
            gates or hub.runtime.gates,
            PullRequest(
                caller=caller(hub),
                agreement_id=hub.agreement(LENDER, DATASET),
                request_id=request_id,
                now=now,
                limit=1000,
                record_key=record_key,
            ),
        )
        if commit:
            session.commit()
        else:
            session.rollback()
    return page


def released_subjects(hub: HubEnv, page: ReleasedPage) -> set[str]:
    keys = {item["record_key"] for item in page.items}
    return {subject for key, subject in owners(hub).items() if key in keys}


def owners(hub: HubEnv) -> dict[str, str]:
    with hub.session() as session:
        rows = session.execute(
            select(Record.record_key, Record.subject_id).where(Record.dataset_id == DATASET)
        ).all()
        return dict(rows)


def capped_consent(hub: HubEnv, subject_id: str, cap: int, now: datetime) -> str:
    """A new consent for ``subject_id`` (it wins over their older ones) allowing ``cap`` fetches
    a day, from a minute before ``now`` for 30 days."""
    return grant_capped(
        hub,
        recipient=LENDER,
        subject_id=subject_id,
        purpose=PURPOSE,
        cap=cap,
        starts_at=now - timedelta(minutes=1),
    )


def counts(hub: HubEnv, consent_id: str) -> dict[str, int]:
    with hub.session() as session:
        rows = session.execute(
            select(ConsentFetchCount.day, ConsentFetchCount.fetches).where(
                ConsentFetchCount.consent_id == consent_id
            )
        ).all()
        return {day.isoformat(): fetches for day, fetches in rows}


def audit_events(hub: HubEnv, request_id: str) -> list[dict[str, Any]]:
    with hub.session() as session:
        rows = session.scalars(
            select(AuditEvent.canonical)
            .where(AuditEvent.request_id == request_id)
            .order_by(AuditEvent.index)
        ).all()
    return [json.loads(row) for row in rows]


def consumers(hub: HubEnv) -> list[Consumer]:
    return generate_population(seed=hub.settings.demo_seed, consumers=TEST_CONSUMERS).consumers


def explained_cap(hub: HubEnv, mobile: str, now: datetime) -> Any:
    agreement_id = hub.agreement(LENDER, DATASET)
    return explained(hub, agreement_id=agreement_id, mobile=mobile, now=now)["fetch_cap"]


def cap_decisions(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for e in events for d in e["decisions"] if d["reasons"] == [FETCHES_EXCEEDED]]


@pytest.fixture(scope="module")
def released(hub: HubEnv) -> list[str]:
    """Subjects whose records the lender receives now."""
    page = pull(hub, "req_baseline", utcnow())
    subjects = sorted(released_subjects(hub, page))
    assert len(subjects) >= 6
    return subjects


def test_a_cap_of_two_withholds_the_third_pull_until_the_next_utc_day(
    hub: HubEnv, released: list[str]
) -> None:
    subject = released[0]
    now = utcnow()
    late = max(now, now.replace(hour=23, minute=59, second=59, microsecond=999_999))
    midnight = datetime.combine(fetch_day(now) + timedelta(days=1), datetime.min.time(), UTC)
    consent_id = capped_consent(hub, subject, 2, now)
    keys = sorted(k for k, s in owners(hub).items() if s == subject)

    first = pull(hub, "req_cap_1", now)
    second = pull(hub, "req_cap_2", now)
    assert subject in released_subjects(hub, first) and subject in released_subjects(hub, second)
    assert counts(hub, consent_id) == {fetch_day(now).isoformat(): 2}, "one fetch per pull"

    third = pull(hub, "req_cap_3", late)
    assert subject not in released_subjects(hub, third)
    assert set(released) - {subject} <= released_subjects(hub, third), "only the capped subject"
    assert third.withheld >= len(keys)
    (withheld,) = cap_decisions(audit_events(hub, "req_cap_3"))
    assert withheld["allow"] is False
    assert withheld["withheld_keys"] == keys and withheld["released_keys"] == []
    assert [c["consent_id"] for c in withheld["consents"].values()] == [consent_id]
    assert withheld["fields_released"] == []
    assert counts(hub, consent_id) == {fetch_day(now).isoformat(): 2}, "a refusal is no fetch"
    mobile = next(c.mobile for c in consumers(hub) if subject_of(hub, c) == subject)
    assert explained_cap(hub, mobile, late) == {
        "fetches_per_day": 2,
        "fetches_today": 2,
        "withheld_reason": FETCHES_EXCEEDED,
    }, "the explanation shows why the policy's allow was withheld"

    next_day = pull(hub, "req_cap_4", midnight)
    assert subject in released_subjects(hub, next_day)
    assert not cap_decisions(audit_events(hub, "req_cap_4"))
    assert counts(hub, consent_id) == {
        fetch_day(now).isoformat(): 2,
        fetch_day(midnight).isoformat(): 1,
    }

    # a one-record pull is a fetch too
    assert len(pull(hub, "req_cap_5", midnight, record_key=keys[0]).items) == 1
    with pytest.raises(NotFoundError):
        pull(hub, "req_cap_6", midnight, record_key=keys[0])
    assert len(cap_decisions(audit_events(hub, "req_cap_6"))) == 1
    assert counts(hub, consent_id)[fetch_day(midnight).isoformat()] == 2


def test_a_rolled_back_pull_counts_nothing(hub: HubEnv, released: list[str]) -> None:
    subject = released[1]
    now = utcnow()
    consent_id = capped_consent(hub, subject, 1, now)
    assert subject in released_subjects(hub, pull(hub, "req_rb_1", now, commit=False))
    assert counts(hub, consent_id) == {}
    assert subject in released_subjects(hub, pull(hub, "req_rb_2", now))
    assert subject not in released_subjects(hub, pull(hub, "req_rb_3", now))
    assert counts(hub, consent_id) == {fetch_day(now).isoformat(): 1}


def test_a_policy_refusal_gives_the_fetch_back(hub: HubEnv, released: list[str]) -> None:
    """Claimed before the records are read, then refused by the policy for a reason of its
    own: nothing of the subject left, so the fetch does not count."""

    class Refusing:
        revision = hub.runtime.gates.policy.revision

        def decide(self, policy_input: Any) -> Decision:
            return Decision(
                allow=False,
                obligations=MappingProxyType({}),
                reasons=("test.refused",),
                decision_id=new_decision_id(),
                policy_revision=self.revision,
            )

    subject = released[2]
    now = utcnow()
    consent_id = capped_consent(hub, subject, 1, now)
    refusing = replace(hub.runtime.gates, policy=Refusing())
    page = pull(hub, "req_refused", now, gates=refusing)
    assert page.items == []
    assert not cap_decisions(audit_events(hub, "req_refused"))
    assert counts(hub, consent_id) in ({}, {fetch_day(now).isoformat(): 0})
    assert subject in released_subjects(hub, pull(hub, "req_after_refused", now))
    assert counts(hub, consent_id) == {fetch_day(now).isoformat(): 1}


def test_only_capped_consents_are_counted(hub: HubEnv, released: list[str]) -> None:
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(str(args[2]))

    now = utcnow() + timedelta(days=2)
    capped_consent(hub, released[3], 5, utcnow())
    capped = {consent_id for _, consent_id in _capped_subjects(hub)}
    event.listen(hub.runtime.engine, "before_cursor_execute", seen)
    try:
        page = pull(hub, "req_uncapped", now)
    finally:
        event.remove(hub.runtime.engine, "before_cursor_execute", seen)
    assert len(released_subjects(hub, page)) > len(capped) + 5
    with hub.session() as session:
        counted = dict(
            session.execute(
                select(ConsentFetchCount.consent_id, ConsentFetchCount.fetches).where(
                    ConsentFetchCount.day == fetch_day(now)
                )
            ).all()
        )
        everywhere = set(session.scalars(select(ConsentFetchCount.consent_id)).all())
    assert counted == dict.fromkeys(capped, 1), "every capped consent once, nothing else"
    assert everywhere == capped
    assert sum("consent_fetch_counts" in s for s in statements) == 1, "one claim per page"


def test_a_page_of_uncapped_consents_sends_no_fetch_statement(
    hub: HubEnv, released: list[str]
) -> None:
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(str(args[2]))

    capped = {subject for subject, _ in _capped_subjects(hub)}
    keys = sorted(k for k, s in owners(hub).items() if s in released and s not in capped)
    event.listen(hub.runtime.engine, "before_cursor_execute", seen)
    try:
        page = pull(hub, "req_uncapped_one", utcnow(), record_key=keys[0])
    finally:
        event.remove(hub.runtime.engine, "before_cursor_execute", seen)
    assert len(page.items) == 1
    assert statements and not any("consent_fetch_counts" in s for s in statements)


def _capped_subjects(hub: HubEnv) -> list[tuple[str, str]]:
    from consent.models import Consent

    with hub.session() as session:
        rows = session.execute(
            select(Consent.subject_id, Consent.id).where(Consent.fetches_per_day.is_not(None))
        ).all()
        return list(rows)


@pytest.mark.postgres
def test_two_concurrent_pulls_never_both_get_the_last_fetch(
    hub: HubEnv, released: list[str]
) -> None:
    """On PostgreSQL the second pull waits for the first one's count and then finds no fetch
    left (SQLite's transactions never interleave: the hub's hold the write lock throughout)."""
    if hub.runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: pulls never interleave")
    subject = released[4]
    now = utcnow() + timedelta(days=3)
    capped_consent(hub, subject, 1, utcnow())
    first = hub.session()
    request = PullRequest(
        caller=caller(hub),
        agreement_id=hub.agreement(LENDER, DATASET),
        request_id="req_concurrent_1",
        now=now,
        limit=1000,
    )
    first_page = pull_page(first, hub.runtime.gates, request)
    pages: list[ReleasedPage] = []
    done = threading.Event()

    def second() -> None:
        try:
            pages.append(pull(hub, "req_concurrent_2", now))
        finally:
            done.set()

    thread = threading.Thread(target=second)
    thread.start()
    waits_for_a_lock(hub.runtime.engine, done)
    assert not done.is_set(), "the second pull must wait for the first one's transaction"
    first.commit()
    first.close()
    thread.join()
    assert subject in released_subjects(hub, first_page)
    assert subject not in released_subjects(hub, pages[0])
    assert len(cap_decisions(audit_events(hub, "req_concurrent_2"))) == 1
