"""Consent notifications: outbox, signed delivery to a real loopback receiver, retries with
backoff, leases, acknowledgements, deletion attestations, the regulator's list, SSRF."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from consent.errors import UnsafeWebhookError
from consent.models import Consent, ConsentNotification, NotificationStatus, WebhookDelivery
from consent.settings import WebhookSettings
from consent.webhooks import (
    SIGNATURE_HEADER,
    WebhookDispatcher,
    check_webhook_url,
    disable_endpoint,
    register_endpoint,
    verify_signature,
)
from hub.demo.population import Consumer
from hub.store.base import utcnow
from tests.consent.receiver import Receiver, receiver
from tests.consent.support import (
    DATASET,
    LENDER,
    consumer_auth,
    owners,
    person_without_consent,
    request_body,
)
from tests.support.hub import HubEnv

TAKEN: set[str] = set()


@pytest.fixture
def endpoint(hub: HubEnv) -> Iterator[Receiver]:
    with receiver() as rx:
        created = hub.client.post(
            "/v1/webhooks", json={"url": rx.url + "/hook"}, headers=hub.auth(LENDER)
        )
        assert created.status_code == 201, created.text
        yield rx
        hub.client.delete(f"/v1/webhooks/{created.json()['id']}", headers=hub.auth(LENDER))


def granted_consent(hub: HubEnv, people: list[Consumer]) -> tuple[str, dict[str, str]]:
    person, subject_id = person_without_consent(hub, people, TAKEN)
    asked = hub.client.post(
        "/v1/consent-requests", json=request_body(person), headers=hub.auth(LENDER)
    ).json()
    me = consumer_auth(hub, subject_id)
    hub.client.post(
        f"/v1/me/consent-requests/{asked['id']}/grant", json={"sensitive": True}, headers=me
    )
    return str(asked["id"]), me


def withdraw(hub: HubEnv, consent_id: str, me: dict[str, str]) -> str:
    response = hub.client.post(f"/v1/me/consents/{consent_id}/withdraw", json={}, headers=me)
    assert response.status_code == 200, response.text
    with hub.session() as session:
        return session.scalars(
            select(ConsentNotification.id).where(ConsentNotification.consent_id == consent_id)
        ).one()


def subject_of_consent(hub: HubEnv, consent_id: str) -> str:
    with hub.session() as session:
        return session.scalars(select(Consent.subject_id).where(Consent.id == consent_id)).one()


def deliveries(hub: HubEnv, notification_id: str) -> list[WebhookDelivery]:
    with hub.session() as session:
        return list(
            session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.notification_id == notification_id)
            )
        )


def unacknowledged(hub: HubEnv) -> list[dict[str, Any]]:
    response = hub.client.get(
        "/v1/consents/unacknowledged-withdrawals", headers=hub.auth("regulator-fsr")
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_withdrawal_is_delivered_signed_and_acknowledged(
    hub: HubEnv, people: list[Consumer], endpoint: Receiver
) -> None:
    consent_id, me = granted_consent(hub, people)
    # What the lender holds of this consumer, by the pseudonym its records carry.
    released = hub.pull_all(LENDER, hub.agreement(LENDER, DATASET))
    subject_id = subject_of_consent(hub, consent_id)
    keys = {key for key, owner in owners(hub).items() if owner == subject_id}
    held = {r["subject"] for r in released if r["record_key"] in keys}
    notification_id = withdraw(hub, consent_id, me)
    assert notification_id in {i["notification_id"] for i in unacknowledged(hub)}

    report = hub.runtime.webhooks.deliver_due()
    assert report.delivered >= 1
    [got] = endpoint.for_event(notification_id)
    assert got.path == "/hook"
    payload = json.loads(got.body)
    assert payload["type"] == "consent.withdrawn"
    assert payload["data"]["consent_id"] == consent_id
    assert payload["data"]["receipt_id"].startswith("rcp_")
    # The recipient learns whose rows to delete by the pseudonym it already holds, nothing more.
    assert held == {payload["data"]["subject"]}
    jwks = hub.client.get("/.well-known/jwks.json").json()
    assert verify_signature(got.body, got.headers[SIGNATURE_HEADER.lower()], jwks)
    assert not verify_signature(got.body + b" ", got.headers[SIGNATURE_HEADER.lower()], jwks)
    [row] = deliveries(hub, notification_id)
    assert row.status == NotificationStatus.DELIVERED and row.attempts == 1

    listed = hub.client.get(
        "/v1/consent-notifications", params={"unacknowledged": True}, headers=hub.auth(LENDER)
    ).json()["items"]
    assert notification_id in {n["id"] for n in listed}
    assert (
        hub.client.post(
            f"/v1/consent-notifications/{notification_id}/acknowledgement",
            headers=hub.auth("lender-pearl"),
        ).status_code
        == 404
    )
    acked = hub.client.post(
        f"/v1/consent-notifications/{notification_id}/acknowledgement", headers=hub.auth(LENDER)
    )
    assert acked.status_code == 200 and acked.json()["acknowledged_at"]
    again = hub.client.post(
        f"/v1/consent-notifications/{notification_id}/acknowledgement", headers=hub.auth(LENDER)
    )
    assert again.json()["acknowledged_at"] == acked.json()["acknowledged_at"]
    assert notification_id not in {i["notification_id"] for i in unacknowledged(hub)}

    # Nothing is delivered twice.
    hub.runtime.webhooks.deliver_due(now=utcnow() + timedelta(days=1))
    assert len(endpoint.for_event(notification_id)) == 1


def test_failures_are_retried_with_exponential_backoff(
    hub: HubEnv, people: list[Consumer], endpoint: Receiver
) -> None:
    consent_id, me = granted_consent(hub, people)
    notification_id = withdraw(hub, consent_id, me)
    endpoint.answer(500, 503)
    dispatcher = hub.runtime.webhooks
    t0 = utcnow()

    dispatcher.deliver_due(now=t0)
    [row] = deliveries(hub, notification_id)
    assert row.status == NotificationStatus.PENDING and row.attempts == 1
    assert row.last_status_code == 500
    assert row.next_attempt_at == t0 + timedelta(seconds=10)

    dispatcher.deliver_due(now=t0 + timedelta(seconds=5))  # not due yet
    assert len(endpoint.for_event(notification_id)) == 1

    t1 = t0 + timedelta(seconds=10)
    dispatcher.deliver_due(now=t1)
    [row] = deliveries(hub, notification_id)
    assert row.attempts == 2 and row.next_attempt_at == t1 + timedelta(seconds=20)

    dispatcher.deliver_due(now=t1 + timedelta(seconds=20))
    [row] = deliveries(hub, notification_id)
    assert row.status == NotificationStatus.DELIVERED and row.attempts == 3
    attempts = [
        r.headers["tollhouse-delivery-attempt"] for r in endpoint.for_event(notification_id)
    ]
    assert attempts == ["1", "2", "3"]


def test_a_dead_endpoint_gives_up_after_max_attempts(
    hub: HubEnv, people: list[Consumer], endpoint: Receiver
) -> None:
    consent_id, me = granted_consent(hub, people)
    notification_id = withdraw(hub, consent_id, me)
    endpoint.default_status = 302  # redirects are failures and are never followed
    now = utcnow()
    for _ in range(6):
        hub.runtime.webhooks.deliver_due(now=now)
        now += timedelta(hours=7)
    [row] = deliveries(hub, notification_id)
    assert row.status == NotificationStatus.FAILED and row.attempts == 4
    assert row.last_error == "HTTP 302"
    got = endpoint.for_event(notification_id)
    assert len(got) == 4 and all(r.path == "/hook" for r in got)
    # Still unacknowledged: the regulator sees it, with the failed delivery.
    item = next(i for i in unacknowledged(hub) if i["notification_id"] == notification_id)
    assert item["delivered"] is False and item["attempts"] == 4


def test_an_unreachable_endpoint_is_retried(hub: HubEnv, people: list[Consumer]) -> None:
    with receiver() as rx:
        url = rx.url + "/gone"
    created = hub.client.post("/v1/webhooks", json={"url": url}, headers=hub.auth(LENDER))
    assert created.status_code == 201
    try:
        consent_id, me = granted_consent(hub, people)
        notification_id = withdraw(hub, consent_id, me)
        hub.runtime.webhooks.deliver_due()
        [row] = [
            d for d in deliveries(hub, notification_id) if d.endpoint_id == created.json()["id"]
        ]
        assert row.status == NotificationStatus.PENDING and row.attempts == 1
        assert row.last_error == "ConnectError"
    finally:
        hub.client.delete(f"/v1/webhooks/{created.json()['id']}", headers=hub.auth(LENDER))


def test_a_claimed_delivery_is_leased_to_one_dispatcher(
    hub: HubEnv, people: list[Consumer], endpoint: Receiver
) -> None:
    consent_id, me = granted_consent(hub, people)
    notification_id = withdraw(hub, consent_id, me)
    now = utcnow()
    claimed = hub.runtime.webhooks._claim(now, 100)  # another process holds these now
    assert notification_id in {c.notification_id for c in claimed}
    report = hub.runtime.webhooks.deliver_due(now=now)
    assert report.attempted == 0
    assert endpoint.for_event(notification_id) == []
    # When the lease runs out, the delivery is picked up again.
    later = now + timedelta(seconds=hub.runtime.webhook_settings.lease_seconds + 1)
    hub.runtime.webhooks.deliver_due(now=later)
    assert len(endpoint.for_event(notification_id)) == 1


@pytest.mark.postgres
def test_concurrent_dispatchers_deliver_each_notification_once(
    hub: HubEnv, people: list[Consumer], endpoint: Receiver
) -> None:
    if hub.runtime.engine.dialect.name != "postgresql":
        pytest.skip("FOR UPDATE SKIP LOCKED needs PostgreSQL; SQLite has one writer anyway")
    ids = []
    for _ in range(4):
        consent_id, me = granted_consent(hub, people)
        ids.append(withdraw(hub, consent_id, me))
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            hub.runtime.webhooks.deliver_due(batch=2)
            hub.runtime.webhooks.deliver_due(batch=2)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for notification_id in ids:
        assert len(endpoint.for_event(notification_id)) == 1


def test_deletion_attestation(hub: HubEnv, people: list[Consumer]) -> None:
    consent_id, me = granted_consent(hub, people)
    path = f"/v1/consents/{consent_id}/deletion-attestations"
    body = {
        "statement": "Deleted the loan file",
        "deleted_at": utcnow().isoformat(),
        "records_deleted": 3,
    }
    early = hub.client.post(path, json=body, headers=hub.auth(LENDER))
    assert early.status_code == 409  # still active: nothing to attest yet
    notification_id = withdraw(hub, consent_id, me)
    assert hub.client.post(path, json=body, headers=hub.auth("lender-pearl")).status_code == 404
    bad = hub.client.post(
        path, json={**body, "deleted_at": (utcnow() + timedelta(days=2)).isoformat()},
        headers=hub.auth(LENDER),
    )  # fmt: skip
    assert bad.status_code == 422
    naive = hub.client.post(
        path, json={**body, "deleted_at": "2026-01-01T00:00:00"}, headers=hub.auth(LENDER)
    )
    assert naive.status_code == 422
    ok = hub.client.post(path, json=body, headers=hub.auth(LENDER))
    assert ok.status_code == 201, ok.text
    assert ok.json()["records_deleted"] == 3
    assert notification_id not in {i["notification_id"] for i in unacknowledged(hub)}


def test_regulators_only(hub: HubEnv) -> None:
    response = hub.client.get("/v1/consents/unacknowledged-withdrawals", headers=hub.auth(LENDER))
    assert response.status_code == 403
    seeded = unacknowledged(hub)
    assert seeded, "the demo's withdrawals are unacknowledged"


PRODUCTION = WebhookSettings(allow_private_networks=False)


def fake_dns(answers: dict[str, list[str]]) -> Any:
    def resolve(host: str, port: int) -> list[str]:
        if host in answers:
            return answers[host]
        return [host]  # IP literals resolve to themselves

    return resolve


@pytest.mark.parametrize(
    "url",
    [
        "http://partner.example/hook",  # not https
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:127.0.0.1]/hook",
        "https://internal.partner.example/hook",  # resolves to a private address
        "https://user:pass@partner.example/hook",
        "ftp://partner.example/hook",
        "https:///nohost",
        "https://partner.example:99999/hook",
    ],
)
def test_unsafe_webhook_urls_are_refused(url: str) -> None:
    dns = fake_dns({"internal.partner.example": ["10.0.0.7"], "partner.example": ["93.184.216.34"]})
    with pytest.raises(UnsafeWebhookError):
        check_webhook_url(url, settings=PRODUCTION, resolver=dns)


def test_a_public_https_url_is_accepted() -> None:
    dns = fake_dns({"partner.example": ["93.184.216.34"]})
    check_webhook_url("https://partner.example/hook", settings=PRODUCTION, resolver=dns)


def test_registration_refuses_bad_input(hub: HubEnv) -> None:
    for body in (
        {"url": "ftp://x.example/hook"},
        {"url": "https://x.example/hook", "events": ["consent.granted"]},
        {"url": "https://x.example/hook", "events": []},
        {"url": "https://x.example/hook", "partner_id": "ptn_other"},
    ):
        response = hub.client.post("/v1/webhooks", json=body, headers=hub.auth(LENDER))
        assert response.status_code == 422, body
    assert hub.client.delete("/v1/webhooks/whk_nope", headers=hub.auth(LENDER)).status_code == 404


def test_delivery_connects_to_the_address_it_checked(hub: HubEnv, people: list[Consumer]) -> None:
    """No second DNS lookup between the SSRF check and the connection (DNS rebinding): the
    request goes to the address just checked, the host name in Host and in TLS's SNI."""
    answers = {"partner.example": ["93.184.216.34"]}
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    with hub.session() as session:
        lender = hub.partner(LENDER)["partner_id"]
        registered = register_endpoint(
            session,
            partner_id=lender,
            url="https://partner.example:8443/hook",
            event_types=["consent.withdrawn"],
            settings=PRODUCTION,
            resolver=fake_dns(answers),
        )
        session.commit()
    try:
        consent_id, me = granted_consent(hub, people)
        notification_id = withdraw(hub, consent_id, me)
        dispatcher = WebhookDispatcher(
            session_factory=hub.runtime.session_factory,
            keys=hub.runtime.signing_keys,
            settings=PRODUCTION,
            transport=httpx.MockTransport(handler),
            resolver=fake_dns(answers),
        )
        dispatcher.deliver_due()
    finally:
        with hub.session() as session:
            disable_endpoint(session, partner_id=lender, endpoint_id=registered.id)
            session.commit()
    [request] = [r for r in seen if r.headers["Tollhouse-Event-Id"] == notification_id]
    assert str(request.url) == "https://93.184.216.34:8443/hook"
    assert request.headers["Host"] == "partner.example:8443"
    assert request.extensions["sni_hostname"] == "partner.example"
