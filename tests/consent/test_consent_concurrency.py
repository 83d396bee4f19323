"""Concurrent changes on two connections leave one consistent history (PostgreSQL row locks)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from consent.errors import InvalidConsentTransitionError
from consent.models import ConsentEvent, ConsentStatus
from consent.service import ConsentService, GrantChoices
from hub.demo.population import Consumer
from hub.store.base import utcnow
from tests.consent.support import LENDER, PURPOSE, person_without_consent
from tests.support.hub import HubEnv

pytestmark = pytest.mark.postgres
TAKEN: set[str] = set()


@pytest.fixture(autouse=True)
def _postgres_only(hub: HubEnv) -> None:
    if hub.runtime.engine.dialect.name != "postgresql":
        pytest.skip(
            "row locks (SELECT ... FOR UPDATE) need PostgreSQL; SQLite has a single writer, "
            "so there is no interleaving to test"
        )


def new_request(hub: HubEnv, people: list[Consumer]) -> tuple[str, str]:
    _, subject_id = person_without_consent(hub, people, TAKEN)
    with hub.session() as session:
        consent = hub.runtime.consents.request_consent(
            session, subject_id=subject_id, recipient_id=str(hub.partner(LENDER)["partner_id"]),
            recipient_role="lender", purpose=PURPOSE, categories=["loan"], duration_days=30,
            reason="loan",
        )  # fmt: skip
        session.commit()
        return consent.id, subject_id


def chain(hub: HubEnv, consent_id: str) -> list[tuple[int, str | None, str]]:
    with hub.session() as session:
        rows = session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.consent_id == consent_id)
            .order_by(ConsentEvent.seq)
        ).all()
        return [(e.seq, e.from_status, e.to_status) for e in rows]


def assert_consistent(events: list[tuple[int, str | None, str]]) -> None:
    assert [seq for seq, _, _ in events] == list(range(1, len(events) + 1))
    for (_, _, before), (_, after_from, _) in zip(events, events[1:], strict=False):
        assert after_from == before


def test_withdraw_waits_for_a_grant_in_flight(hub: HubEnv, people: list[Consumer]) -> None:
    service: ConsentService = hub.runtime.consents
    consent_id, subject_id = new_request(hub, people)
    granting = hub.session()
    service.grant_request(
        granting,
        consent_id=consent_id,
        subject_id=subject_id,
        choices=GrantChoices(),
        channel="portal",
    )  # fmt: skip  (holds the row lock, not committed yet)
    outcome: list[str] = []

    def withdraw() -> None:
        with hub.session() as session:
            try:
                service.withdraw(
                    session, consent_id=consent_id, subject_id=subject_id, channel="app"
                )
                session.commit()
                outcome.append("withdrawn")
            except InvalidConsentTransitionError as exc:
                session.rollback()
                outcome.append(f"refused:{exc.current}")

    thread = threading.Thread(target=withdraw)
    thread.start()
    time.sleep(0.3)
    assert not outcome, "the withdrawal must wait for the grant's row lock"
    granting.commit()
    granting.close()
    thread.join(timeout=10)
    assert outcome == ["withdrawn"]
    events = chain(hub, consent_id)
    assert_consistent(events)
    assert [to for _, _, to in events] == ["requested", "active", "withdrawn"]


@pytest.mark.parametrize("round_", range(3))
def test_grant_and_withdraw_racing_leave_one_history(
    hub: HubEnv, people: list[Consumer], round_: int
) -> None:
    """Grant of a request against withdraw of the same consent, started together: whichever
    order the database picks, the history is one valid chain and the status matches it."""
    service: ConsentService = hub.runtime.consents
    consent_id, subject_id = new_request(hub, people)
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def run(name: str) -> None:
        with hub.session() as session:
            barrier.wait()
            try:
                if name == "grant":
                    service.grant_request(
                        session, consent_id=consent_id, subject_id=subject_id,
                        choices=GrantChoices(), channel="portal",
                    )  # fmt: skip
                else:
                    service.withdraw(
                        session, consent_id=consent_id, subject_id=subject_id, channel="app"
                    )
                session.commit()
                results[name] = "ok"
            except InvalidConsentTransitionError:
                session.rollback()
                results[name] = "refused"

    threads = [threading.Thread(target=run, args=(n,)) for n in ("grant", "withdraw")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    events = chain(hub, consent_id)
    assert_consistent(events)
    assert results["grant"] == "ok"
    final = events[-1][2]
    if results["withdraw"] == "ok":
        assert final == ConsentStatus.WITHDRAWN and len(events) == 3
    else:
        assert final == ConsentStatus.ACTIVE and len(events) == 2


def test_two_withdrawals_racing_record_one(hub: HubEnv, people: list[Consumer]) -> None:
    service: ConsentService = hub.runtime.consents
    consent_id, subject_id = new_request(hub, people)
    with hub.session() as session:
        service.grant_request(
            session, consent_id=consent_id, subject_id=subject_id, choices=GrantChoices(),
            channel="portal", now=utcnow() - timedelta(seconds=1),
        )  # fmt: skip
        session.commit()
    barrier = threading.Barrier(2)
    results: list[str] = []

    def run() -> None:
        with hub.session() as session:
            barrier.wait()
            try:
                service.withdraw(
                    session, consent_id=consent_id, subject_id=subject_id, channel="app"
                )
                session.commit()
                results.append("ok")
            except InvalidConsentTransitionError:
                session.rollback()
                results.append("refused")

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(results) == ["ok", "refused"]
    events = chain(hub, consent_id)
    assert_consistent(events)
    assert [to for _, _, to in events] == ["requested", "active", "withdrawn"]
