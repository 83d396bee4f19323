"""An erasure racing another erasure, or a grant, on two connections (PostgreSQL row locks):
every live consent ends exactly once, and its history stays one gap-free chain."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from consent.erasure import ERASURE_CHANNEL
from consent.models import ConsentNotification, ConsentStatus
from consent.service import ConsentService, GrantChoices
from hub.demo.population import Consumer
from hub.records.erasure import Erasure, erase_subject_id
from tests.consent.test_consent_concurrency import assert_consistent, chain, new_request
from tests.support.hub import HubEnv

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def _postgres_only(hub: HubEnv) -> None:
    if hub.runtime.engine.dialect.name != "postgresql":
        pytest.skip("row locks (SELECT ... FOR UPDATE) need PostgreSQL; SQLite has one writer")


def _erasing(hub: HubEnv, subject_id: str, out: list[Erasure]) -> threading.Thread:
    def run() -> None:
        with hub.session() as session:
            out.append(
                erase_subject_id(
                    session,
                    protector=hub.runtime.protector,
                    consents=hub.runtime.consents,
                    subject_id=subject_id,
                    actor="operator:test",
                    reason="concurrency test",
                )
            )
            session.commit()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _notified(hub: HubEnv, consent_id: str) -> list[str]:
    with hub.session() as session:
        return list(
            session.scalars(
                select(ConsentNotification.event_type).where(
                    ConsentNotification.consent_id == consent_id
                )
            )
        )


def test_two_erasures_racing_end_each_consent_once(hub: HubEnv, people: list[Consumer]) -> None:
    service: ConsentService = hub.runtime.consents
    consent_id, subject_id = new_request(hub, people)
    with hub.session() as session:
        service.grant_request(
            session,
            consent_id=consent_id,
            subject_id=subject_id,
            choices=GrantChoices(),
            channel="portal",
        )
        session.commit()
    first = hub.session()
    erased = erase_subject_id(
        first,
        protector=hub.runtime.protector,
        consents=service,
        subject_id=subject_id,
        actor="operator:test",
        reason="concurrency test",
    )  # holds the key row's lock, not committed yet
    out: list[Erasure] = []
    thread = _erasing(hub, subject_id, out)
    time.sleep(0.3)  # let the second erasure reach the key row's lock
    first.commit()
    first.close()
    thread.join(timeout=10)
    assert erased.erased_now and erased.consents_revoked >= 1
    assert len(out) == 1
    assert not out[0].erased_now
    assert (out[0].consents_revoked, out[0].requests_denied) == (0, 0)
    events = chain(hub, consent_id)
    assert_consistent(events)
    assert [to for _, _, to in events] == ["requested", "active", "revoked"]
    assert _notified(hub, consent_id) == ["consent.revoked"]


def test_an_erasure_meeting_a_grant_in_flight_revokes_what_was_granted(
    hub: HubEnv, people: list[Consumer]
) -> None:
    service: ConsentService = hub.runtime.consents
    consent_id, subject_id = new_request(hub, people)
    granting = hub.session()
    service.grant_request(
        granting,
        consent_id=consent_id,
        subject_id=subject_id,
        choices=GrantChoices(),
        channel="portal",
    )  # holds the consent's row lock, not committed yet
    out: list[Erasure] = []
    thread = _erasing(hub, subject_id, out)
    time.sleep(0.3)  # let the erasure find the request and wait for its row lock
    granting.commit()
    granting.close()
    thread.join(timeout=10)
    assert len(out) == 1 and out[0].erased_now
    events = chain(hub, consent_id)
    assert_consistent(events)
    # The erasure found a request, waited for its row lock, then saw it granted: revoked.
    assert [to for _, _, to in events] == ["requested", "active", "revoked"]
    with hub.session() as session:
        history = service.history(session, consent_id=consent_id)
    assert history[-1].channel == ERASURE_CHANNEL
    assert history[-1].to_status == ConsentStatus.REVOKED
    assert _notified(hub, consent_id) == ["consent.revoked"]
