"""Daily fetch counts of capped consents (``consent.fetches``): a claim counts below the cap and
reports the consents over it; days are UTC calendar days; the sweep prunes earlier days; an
erasure forgets the subject's counts; on PostgreSQL two transactions never share a last fetch."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from consent.fetches import (
    claim_fetches,
    fetch_day,
    fetches_today,
    give_back_fetches,
)
from consent.models import ConsentFetchCount
from consent.schemas import ConsentPublic
from hub.records.erasure import erase_subject_id
from hub.store.base import utcnow
from tests.consent.support import LENDER, PURPOSE, owners
from tests.support.consents import grant_capped
from tests.support.hub import HubEnv
from tests.support.locks import waits_for_a_lock

USED: set[str] = set()


def capped(hub: HubEnv, cap: int) -> tuple[str, str]:
    """(consent id, subject id): a new consent of a subject no other test here used."""
    subject_id = next(s for s in sorted(set(owners(hub).values())) if s not in USED)
    USED.add(subject_id)
    consent_id = grant_capped(
        hub,
        recipient=LENDER,
        subject_id=subject_id,
        purpose=PURPOSE,
        cap=cap,
        starts_at=utcnow(),
        categories=("loan",),
    )
    return consent_id, subject_id


def test_claims_count_up_to_the_cap_per_utc_day(hub: HubEnv) -> None:
    two, _ = capped(hub, 2)
    one, _ = capped(hub, 1)
    evening = datetime(2031, 3, 1, 23, 59, 59, tzinfo=UTC)
    # 08:00 in UTC+8 is still the evening before in UTC: the same day
    shanghai_morning = datetime.fromisoformat("2031-03-02T07:59:59+08:00")
    midnight = datetime(2031, 3, 2, tzinfo=UTC)
    with hub.session() as session:
        assert claim_fetches(session, {two: 2, one: 1}, now=evening) == set()
        assert claim_fetches(session, {two: 2, one: 1}, now=shanghai_morning) == {one}
        assert claim_fetches(session, {two: 2, one: 1}, now=evening) == {two, one}
        assert fetches_today(session, [two, one], now=evening) == {two: 2, one: 1}
        assert claim_fetches(session, {two: 2, one: 1}, now=midnight) == set()
        assert fetches_today(session, [two, one], now=midnight) == {two: 1, one: 1}
        give_back_fetches(session, [one], now=midnight)
        assert fetches_today(session, [two, one], now=midnight) == {two: 1, one: 0}
        assert claim_fetches(session, {one: 1}, now=midnight) == set()
        # a cap raised since the last fetch (a new consent's terms) is the one that counts
        assert claim_fetches(session, {one: 3}, now=midnight) == set()
        assert fetches_today(session, [one], now=midnight) == {one: 2}
        assert claim_fetches(session, {}, now=midnight) == set()
        session.rollback()
        assert fetches_today(session, [two, one], now=evening) == {}, "rolled back"


def test_the_sweep_prunes_earlier_days(hub: HubEnv) -> None:
    consent_id, _ = capped(hub, 3)
    today = utcnow()
    with hub.session() as session:
        claim_fetches(session, {consent_id: 3}, now=today - timedelta(days=1))
        claim_fetches(session, {consent_id: 3}, now=today)
        session.commit()
        hub.runtime.consents.sweep_expired(session, now=today)
        session.commit()
        days = session.scalars(
            select(ConsentFetchCount.day).where(ConsentFetchCount.consent_id == consent_id)
        ).all()
    assert days == [fetch_day(today)]


def test_an_erasure_forgets_the_subjects_counts(hub: HubEnv) -> None:
    erased, subject_id = capped(hub, 3)
    kept, _ = capped(hub, 3)
    now = utcnow()
    with hub.session() as session:
        claim_fetches(session, {erased: 3, kept: 3}, now=now)
        session.commit()
        erase_subject_id(
            session,
            protector=hub.runtime.protector,
            consents=hub.runtime.consents,
            subject_id=subject_id,
            actor="test",
            reason="test",
        )
        session.commit()
        assert fetches_today(session, [erased, kept], now=now) == {kept: 1}


def test_a_consents_overview_shows_the_fetches_counted_today(hub: HubEnv) -> None:
    consent_id, subject_id = capped(hub, 3)
    now = utcnow()
    service = hub.runtime.consents
    with hub.session() as session:
        consent = service.consent_of_subject(session, subject_id=subject_id, consent_id=consent_id)
        assert service.summarise(session, [consent], now=now)[0].fetches_today == 0
        claim_fetches(session, {consent_id: 3}, now=now)
        claim_fetches(session, {consent_id: 3}, now=now)
        (overview,) = service.summarise(session, [consent], now=now)
        assert overview.fetches_today == 2
        assert ConsentPublic.of(consent, fetches_today=overview.fetches_today).fetches_today == 2
        uncapped = [
            c
            for c in service.consents_of_subject(session, subject_id=subject_id)
            if c.fetches_per_day is None
        ]
        assert uncapped, "the demo's consents have no cap"
        assert all(o.fetches_today is None for o in service.summarise(session, uncapped))
        session.rollback()


# --- PostgreSQL: two transactions, one last fetch -------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("first_commits", [True, False])
def test_two_transactions_never_share_the_last_fetch(hub: HubEnv, first_commits: bool) -> None:
    if hub.runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: its transactions never interleave")
    consent_id, _ = capped(hub, 2)
    now = utcnow()
    with hub.session() as session:
        assert claim_fetches(session, {consent_id: 2}, now=now) == set()
        session.commit()
    first = hub.session()
    assert claim_fetches(first, {consent_id: 2}, now=now) == set(), "the last fetch"
    outcome: list[set[str]] = []
    done = threading.Event()

    def second() -> None:
        try:
            with hub.session() as session:
                outcome.append(claim_fetches(session, {consent_id: 2}, now=now))
                session.commit()
        finally:
            done.set()

    thread = threading.Thread(target=second)
    thread.start()
    waits_for_a_lock(hub.runtime.engine, done)  # or the other thread finished: it did not wait
    assert not done.is_set(), "the second claim must wait for the first transaction"
    if first_commits:
        first.commit()
    else:
        first.rollback()
    first.close()
    thread.join()
    # committed: the second finds no fetch left; rolled back: the second takes it
    assert outcome == ([{consent_id}] if first_commits else [set()])
    with hub.session() as session:
        assert fetches_today(session, [consent_id], now=now) == {consent_id: 2}
