"""The release pipeline records the partners that receive records under a role-addressed
consent (``consent_releases``), and only those: a page of partner-addressed consents costs no
statement, and a role consent whose records were withheld leaves no row."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, select

from consent.models import ConsentNotification, ConsentRelease
from hub.records.models import DataSubject
from hub.registry.models import Partner
from hub.release.pipeline import PullRequest, pull_page
from hub.store.base import utcnow
from tests.portal.helpers import demo_consumers
from tests.release.test_fetch_cap import (
    DATASET,
    LENDER,
    PURPOSE,
    caller,
    owners,
    pull,
    released_subjects,
)
from tests.support.consents import grant_to_role
from tests.support.explain import explained as explain_service
from tests.support.hub import HubEnv
from tests.support.locks import waits_for_a_lock


def rows(hub: HubEnv) -> set[tuple[str, str]]:
    with hub.session() as session:
        return {
            (c, p)
            for c, p in session.execute(
                select(ConsentRelease.consent_id, ConsentRelease.partner_id)
            )
        }


def role_consent(hub: HubEnv, subject_id: str, categories: tuple[str, ...]) -> str:
    return grant_to_role(
        hub, role="lender", subject_id=subject_id, purpose=PURPOSE, categories=categories
    )


def test_partner_addressed_pages_send_no_release_statement(hub: HubEnv) -> None:
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(hub.runtime.engine, "before_cursor_execute", seen)
    try:
        page = pull(hub, "req_partner_addressed", utcnow())
    finally:
        event.remove(hub.runtime.engine, "before_cursor_execute", seen)
    assert page.items, "the seeded consents name the lender"
    assert statements and not any("consent_releases" in s for s in statements)
    assert rows(hub) == set()


@pytest.fixture(scope="module")
def without(hub: HubEnv) -> list[str]:
    """Subjects in the dataset whose records the lender does not receive (no usable consent),
    living where the lender does (abroad, a consent without cross_border would not release
    them either: ids are random, so which comes first changes from run to run)."""
    released = released_subjects(hub, pull(hub, "req_before", utcnow()))
    with hub.session() as session:
        home = session.scalars(
            select(Partner.jurisdiction).where(Partner.id == hub.partner(LENDER)["partner_id"])
        ).one()
        domestic = set(
            session.scalars(select(DataSubject.id).where(DataSubject.jurisdiction == home))
        )
    unconsented = sorted((set(owners(hub).values()) - released) & domestic)
    assert len(unconsented) >= 4
    return unconsented


def test_a_role_consent_is_recorded_once_released_and_not_when_withheld(
    hub: HubEnv, without: list[str]
) -> None:
    lender = str(hub.partner(LENDER)["partner_id"])
    allowed = role_consent(hub, without[0], ("identity", "income", "loan"))
    # a consent for a category the dataset's records do not need: the policy withholds them
    narrow = role_consent(hub, without[1], ("vehicle",))
    page = pull(hub, "req_role", utcnow())
    got = released_subjects(hub, page)
    assert without[0] in got and without[1] not in got
    assert rows(hub) == {(allowed, lender)}, f"{narrow} withheld: its claim given back"


def _in_thread(work: Callable[[], None]) -> tuple[threading.Thread, threading.Event]:
    done = threading.Event()

    def run() -> None:
        try:
            work()
        finally:
            done.set()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, done


def _notified(hub: HubEnv, consent_id: str) -> list[str]:
    with hub.session() as session:
        return list(
            session.scalars(
                select(ConsentNotification.partner_id).where(
                    ConsentNotification.consent_id == consent_id
                )
            )
        )


def _postgresql_only(hub: HubEnv) -> None:
    if hub.runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: a pull and a withdrawal never interleave")


@pytest.mark.postgres
def test_a_pull_racing_a_withdrawal_withholds_once_it_commits(
    hub: HubEnv, without: list[str]
) -> None:
    """The pull read the consent as active before the withdrawal committed: its release row
    waits for the withdrawal, then the pull reads the subject's state again and withholds
    (the withdrawal, which told nobody, was right)."""
    _postgresql_only(hub)
    subject = without[2]
    consent_id = role_consent(hub, subject, ("identity", "income", "loan"))
    withdrawing = hub.session()
    hub.runtime.consents.withdraw(
        withdrawing, consent_id=consent_id, subject_id=subject, channel="test"
    )
    pages = []
    thread, done = _in_thread(lambda: pages.append(pull(hub, "req_race_pull", utcnow())))
    assert waits_for_a_lock(hub.runtime.engine, done), (
        "the pull's release row waits for the withdrawal"
    )
    withdrawing.commit()
    withdrawing.close()
    thread.join()
    assert subject not in released_subjects(hub, pages[0])
    assert consent_id not in {c for c, _ in rows(hub)}
    assert _notified(hub, consent_id) == []


@pytest.mark.postgres
def test_a_withdrawal_racing_a_pull_tells_the_puller(hub: HubEnv, without: list[str]) -> None:
    """The pull recorded its release first: the withdrawal waits for it and tells the lender."""
    _postgresql_only(hub)
    subject = without[3]
    consent_id = role_consent(hub, subject, ("identity", "income", "loan"))
    pulling = hub.session()
    page = pull_page(
        pulling,
        hub.runtime.gates,
        PullRequest(
            caller=caller(hub),
            agreement_id=hub.agreement(LENDER, DATASET),
            request_id="req_race_first",
            now=utcnow(),
            limit=1000,
        ),
    )

    def withdraw() -> None:
        with hub.session() as session:
            hub.runtime.consents.withdraw(
                session, consent_id=consent_id, subject_id=subject, channel="test"
            )
            session.commit()

    thread, done = _in_thread(withdraw)
    assert waits_for_a_lock(hub.runtime.engine, done), (
        "the withdrawal waits for the pull's release row"
    )
    pulling.commit()
    pulling.close()
    thread.join()
    assert subject in released_subjects(hub, page)
    assert _notified(hub, consent_id) == [str(hub.partner(LENDER)["partner_id"])]


def test_explain_sees_a_consent_naming_the_role_as_the_pipeline_does(
    hub: HubEnv, without: list[str]
) -> None:
    mobiles = {c.subject_id: c.mobile for c in demo_consumers(hub)}

    def explained(subject_id: str) -> dict[str, Any]:
        agreement_id = hub.agreement(LENDER, DATASET)
        return explain_service(hub, agreement_id=agreement_id, mobile=mobiles[subject_id])

    # 0-3: the tests above. A subject the lender receives nothing of may still hold a consent
    # that is not usable (withdrawn, expired, too narrow for the policy): skip those, as the
    # demo's consents are random.
    never_consented = [
        s for s in without[4:] if s in mobiles and explained(s)["consent_id"] is None
    ]
    assert never_consented, "the demo seeds subjects without any consent to the lender"
    subject_id = never_consented[0]
    consent_id = role_consent(hub, subject_id, ("identity", "income", "loan"))
    document = explained(subject_id)
    assert document["consent_id"] == consent_id
    assert document["explanation"]["decision"]["allow"] is True
    assert subject_id in released_subjects(hub, pull(hub, "req_role_explained", utcnow()))
