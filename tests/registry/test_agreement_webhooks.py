"""Agreement notices reach the recipient's webhooks through the consent service's outbox:
signed like consent events, acknowledged the same way, and kept off the regulator's list of
unacknowledged consent withdrawals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from consent.models import ConsentNotification, NotificationStatus, WebhookDelivery
from consent.webhooks import SIGNATURE_HEADER, verify_signature
from hub.registry import service as registry
from hub.store.base import utcnow
from tests.consent.conftest import loopback_webhook_hub
from tests.consent.receiver import Receiver, receiver
from tests.registry.support import proposal
from tests.support.databases import TestDatabases
from tests.support.hub import HubEnv

DEALER = "dealer-huadong"
LENDER = "lender-pearl"
SALES = "dealer-huadong.sales-deals"


@pytest.fixture(scope="module")
def hub(
    seeded_template: tuple[Path, str, dict[str, Any]], databases: TestDatabases
) -> Iterator[HubEnv]:
    """A hub that may deliver webhooks to a receiver on loopback."""
    with loopback_webhook_hub(seeded_template, databases) as env:
        yield env


@pytest.fixture
def endpoint(hub: HubEnv) -> Iterator[Receiver]:
    with receiver() as rx:
        created = hub.client.post(
            "/v1/webhooks", json={"url": rx.url + "/hook"}, headers=hub.auth(LENDER)
        )
        assert created.status_code == 201, created.text
        assert "agreement.terminated" in created.json()["events"]
        yield rx
        hub.client.delete(f"/v1/webhooks/{created.json()['id']}", headers=hub.auth(LENDER))


def active_agreement(hub: HubEnv) -> str:
    proposed = hub.client.post(
        "/v1/agreements",
        json=proposal(SALES, "credit_assessment", ["vin"]),
        headers=hub.auth(LENDER),
    )
    assert proposed.status_code == 201, proposed.text
    agreement_id = str(proposed.json()["id"])
    accepted = hub.client.post(
        f"/v1/agreements/{agreement_id}/acceptance", json={}, headers=hub.auth(DEALER)
    )
    assert accepted.json()["status"] == "active", accepted.text
    return agreement_id


def notifications_for(hub: HubEnv, agreement_id: str) -> list[ConsentNotification]:
    with hub.session() as session:
        return list(
            session.scalars(
                select(ConsentNotification).where(ConsentNotification.agreement_id == agreement_id)
            )
        )


def delivered_payloads(
    hub: HubEnv, rx: Receiver, notification_id: str, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    hub.runtime.webhooks.deliver_due(now=now)
    jwks = hub.client.get("/.well-known/jwks.json").json()
    payloads = []
    for got in rx.for_event(notification_id):
        assert verify_signature(got.body, got.headers[SIGNATURE_HEADER.lower()], jwks)
        payloads.append(json.loads(got.body))
    return payloads


def test_termination_is_pushed_signed_and_acknowledged(hub: HubEnv, endpoint: Receiver) -> None:
    agreement_id = active_agreement(hub)
    done = hub.client.post(
        f"/v1/agreements/{agreement_id}/termination",
        json={"reason": "contract ended early"},
        headers=hub.auth(DEALER),
    )
    assert done.status_code == 200, done.text

    [notification] = notifications_for(hub, agreement_id)
    assert notification.consent_id is None
    [payload] = delivered_payloads(hub, endpoint, notification.id)
    assert payload["type"] == "agreement.terminated"
    data = payload["data"]
    assert data["agreement_id"] == agreement_id
    assert data["reason"] == "contract ended early"
    assert data["deletion_attestation_due_at"] == done.json()["deletion_due_at"].replace(
        "Z", "+00:00"
    )
    assert data["notice_id"].startswith("agn_")

    listed = hub.client.get(
        "/v1/consent-notifications", params={"unacknowledged": True}, headers=hub.auth(LENDER)
    ).json()["items"]
    [mine] = [n for n in listed if n["id"] == notification.id]
    assert mine["agreement_id"] == agreement_id and mine["consent_id"] is None
    acked = hub.client.post(
        f"/v1/consent-notifications/{notification.id}/acknowledgement", headers=hub.auth(LENDER)
    )
    assert acked.status_code == 200 and acked.json()["acknowledged_at"]

    regulator = hub.client.get(
        "/v1/consents/unacknowledged-withdrawals", headers=hub.auth("regulator-fsr")
    )
    assert regulator.status_code == 200
    assert all(item["consent_id"] for item in regulator.json()["items"])


def test_expiry_is_pushed_in_the_sweeps_transaction(hub: HubEnv, endpoint: Receiver) -> None:
    agreement_id = active_agreement(hub)
    later = utcnow() + timedelta(days=400)
    with hub.session() as session:
        registry.advance_agreements(session, now=later)
        session.commit()
    [notification] = notifications_for(hub, agreement_id)
    assert notification.event_type == "agreement.expired"
    with hub.session() as session:
        [delivery] = session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.notification_id == notification.id)
        ).all()
        assert delivery.status == NotificationStatus.PENDING
    [payload] = delivered_payloads(hub, endpoint, notification.id, now=later)
    assert payload["type"] == "agreement.expired"


def test_a_rolled_back_termination_announces_nothing(hub: HubEnv, endpoint: Receiver) -> None:
    agreement_id = active_agreement(hub)
    with hub.session() as session:
        registry.terminate_agreement(
            session,
            actor=registry.Actor(partner_id="", operator=True),
            agreement_id=agreement_id,
            reason="oops",
        )
        session.rollback()
    assert notifications_for(hub, agreement_id) == []


def test_an_endpoint_may_choose_consent_events_only(hub: HubEnv) -> None:
    with receiver() as rx:
        created = hub.client.post(
            "/v1/webhooks",
            json={"url": rx.url + "/hook", "events": ["consent.withdrawn"]},
            headers=hub.auth(LENDER),
        )
        assert created.status_code == 201, created.text
        try:
            agreement_id = active_agreement(hub)
            hub.client.post(
                f"/v1/agreements/{agreement_id}/termination",
                json={"reason": "done"},
                headers=hub.auth(LENDER),
            )
            [notification] = notifications_for(hub, agreement_id)
            assert delivered_payloads(hub, rx, notification.id) == []
        finally:
            hub.client.delete(f"/v1/webhooks/{created.json()['id']}", headers=hub.auth(LENDER))
    unknown = hub.client.post(
        "/v1/webhooks",
        json={"url": "https://partner.example/hook", "events": ["agreement.renamed"]},
        headers=hub.auth(LENDER),
    )
    assert unknown.status_code == 422
