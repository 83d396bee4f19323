"""``WebhookReceiver`` without a hub: signatures and key rotation, the subject named by the event or
found by probing, attestation retried with the stored count, de-duplication, the ASGI wrapper.
(The same receiver against the real hub: ``test_connectors_e2e_webhooks.py``.)"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from joserfc.jwk import OKPKey

from connectors import HubClient, Record, Retry, WebhookReceiver
from connectors._sinks import SqlSink
from consent.webhooks import SIGNATURE_HEADER, sign_detached

AGREEMENT = {
    "id": "agr-1", "provider_id": "p", "recipient_id": "r", "dataset_id": "ds",
    "purpose": "credit_assessment", "fields": ["amount"], "retention_days": None,
    "valid_from": None, "valid_until": None, "status": "active",
}  # fmt: skip


@dataclass
class Keys:
    private_key: OKPKey
    kid: str


def new_keys(kid: str) -> Keys:
    return Keys(OKPKey.generate_key("Ed25519", parameters={"kid": kid}), kid)


@dataclass
class Hub:
    """Just the routes the receiver uses."""

    keys: list[Keys]
    gone: set[str] = field(default_factory=lambda: {"psn_gone"})
    attest_statuses: deque[int] = field(default_factory=deque)
    jwks_fetches: int = 0
    probes: list[str] = field(default_factory=list)
    attestations: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "token_type": "Bearer"})
        if path == "/.well-known/jwks.json":
            self.jwks_fetches += 1
            public = [k.private_key.as_dict(private=False) | {"kid": k.kid} for k in self.keys]
            return httpx.Response(200, json={"keys": public})
        if path == "/v1/agreements":
            return httpx.Response(200, json={"items": [AGREEMENT]})
        if path.startswith("/v1/agreements/agr-1/records/"):
            key = path.rsplit("/", 1)[1]
            self.probes.append(key)
            if key.split("-")[0] in self.gone:
                return httpx.Response(404, json={"type": "about:blank", "title": "Not Found"})
            return httpx.Response(
                200, json={"record_key": key, "version": 1, "subject": "x", "fields": {}}
            )
        if path.endswith("/deletion-attestations"):
            status = self.attest_statuses.popleft() if self.attest_statuses else 201
            if status != 201:
                return httpx.Response(status, json={"type": "about:blank", "title": "busy"})
            self.attestations.append(json.loads(request.content))
            return httpx.Response(201, json={"id": "att-1"})
        return httpx.Response(404, json={"type": "about:blank", "title": "Not Found"})


@pytest.fixture
def hub() -> Hub:  # this module's own hub, not conftest's FakeHub
    return Hub(keys=[new_keys("k1")])


@pytest.fixture
def sink(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'pulled.db'}"
    target = SqlSink(url, "agr-1")
    target.restore(None)
    target.write(
        [Record(f"psn_gone-{i}", 1, "psn_gone", {"amount": i, "note": "x"}) for i in range(3)]
        + [Record(f"psn_stays-{i}", 1, "psn_stays", {"amount": i}) for i in range(2)]
    )
    target.close()
    return url


@pytest.fixture
def receiver(hub: Hub, sink: str) -> Iterator[WebhookReceiver]:
    client = HubClient(
        "http://hub.test", "lender", client_secret="s", retry=Retry(attempts=1),
        transport=httpx.MockTransport(hub),
    )  # fmt: skip
    rx = WebhookReceiver(client, sink)
    yield rx
    rx.close()
    client.close()


def event(event_id: str = "ntf_1", kind: str = "consent.withdrawn", **data: Any) -> dict[str, Any]:
    return {
        "id": event_id, "type": kind, "created_at": datetime.now(UTC).isoformat(),
        "data": {"consent_id": "cns_1", "status": "withdrawn", "purpose": "credit_assessment",
                 "categories": ["loan"], "receipt_id": "rcp_1", "reason": ""} | data,
    }  # fmt: skip


def deliver(rx: WebhookReceiver, keys: Keys, payload: dict[str, Any]) -> tuple[int, Any]:
    body = json.dumps(payload).encode()
    headers = {SIGNATURE_HEADER: sign_detached(body, keys), "Tollhouse-Event-Id": payload["id"]}
    response = rx.handle(body, headers)
    return response.status, response.body


def subjects(sink: str) -> dict[str, str]:
    import sqlalchemy as sa

    engine = sa.create_engine(sink)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select record_key, subject from tollhouse_records")).all()
    engine.dispose()
    return {str(k): str(s) for k, s in rows}


def test_withdrawal_found_by_probing_is_deleted_and_attested(
    hub: Hub, receiver: WebhookReceiver, sink: str
) -> None:
    status, body = deliver(receiver, hub.keys[0], event())
    assert (status, body["records"]) == (200, 3)
    assert set(subjects(sink).values()) == {"psn_stays"}
    assert sorted(hub.probes) == ["psn_gone-0", "psn_stays-0"]  # one probe per subject
    [attestation] = hub.attestations
    assert attestation["records_deleted"] == 3 and "ntf_1" in attestation["statement"]


def test_a_subject_named_by_the_event_needs_no_probe(
    hub: Hub, receiver: WebhookReceiver, sink: str
) -> None:
    status, body = deliver(receiver, hub.keys[0], event(subject="psn_stays"))
    assert (status, body["records"]) == (200, 2)
    assert hub.probes == []
    assert set(subjects(sink).values()) == {"psn_gone"}


def test_attestation_failure_is_retried_with_the_stored_count(
    hub: Hub, receiver: WebhookReceiver, sink: str
) -> None:
    hub.attest_statuses.extend([503])
    withdrawn = event()
    status, body = deliver(receiver, hub.keys[0], withdrawn)
    assert status == 503 and "attestation failed" in body["error"]
    assert set(subjects(sink).values()) == {"psn_stays"}  # deleted already
    status, body = deliver(receiver, hub.keys[0], withdrawn)  # the hub delivers again
    assert (status, body["records"]) == (200, 3)
    assert [a["records_deleted"] for a in hub.attestations] == [3]
    status, body = deliver(receiver, hub.keys[0], withdrawn)
    assert (status, body["status"]) == (200, "duplicate")
    assert len(hub.attestations) == 1


def test_same_id_with_another_body_is_refused(hub: Hub, receiver: WebhookReceiver) -> None:
    assert deliver(receiver, hub.keys[0], event())[0] == 200
    assert deliver(receiver, hub.keys[0], event(reason="changed"))[0] == 409


def test_key_rotation_refetches_the_jwks(hub: Hub, sink: str) -> None:
    client = HubClient(
        "http://hub.test", "lender", client_secret="s", transport=httpx.MockTransport(hub)
    )
    with client:
        rx = WebhookReceiver(client, sink, jwks_min_refresh=0)
        assert deliver(rx, hub.keys[0], event("ntf_1", subject="psn_gone"))[0] == 200
        assert hub.jwks_fetches == 1
        rotated = new_keys("k2")
        hub.keys.append(rotated)
        assert deliver(rx, rotated, event("ntf_2", subject="psn_stays"))[0] == 200
        assert hub.jwks_fetches == 2
        rx.close()


def test_unknown_key_ids_refetch_the_jwks_at_most_every_30_s(
    hub: Hub, receiver: WebhookReceiver
) -> None:
    assert deliver(receiver, hub.keys[0], event("ntf_1", subject="psn_gone"))[0] == 200
    for n in range(3):
        assert deliver(receiver, new_keys(f"stranger-{n}"), event(f"ntf_{n + 2}"))[0] == 401
    assert hub.jwks_fetches == 1


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda b, h: (b + b" ", h), 401),  # body changed after signing
        (lambda b, h: (b, {}), 401),  # unsigned
        (lambda b, h: (b, {SIGNATURE_HEADER: "a.b.c"}), 401),  # not detached
        (lambda b, h: (b, {**h, "Tollhouse-Event-Id": "ntf_other"}), 400),
    ],
)
def test_forgeries_are_refused(
    hub: Hub, receiver: WebhookReceiver, sink: str, mutate: Any, status: int
) -> None:
    payload = event()
    body = json.dumps(payload).encode()
    headers = {SIGNATURE_HEADER: sign_detached(body, hub.keys[0]), "Tollhouse-Event-Id": "ntf_1"}
    body, headers = mutate(body, headers)
    assert receiver.handle(body, headers).status == status
    assert len(subjects(sink)) == 5 and hub.attestations == []


def test_stale_and_future_events_are_refused(hub: Hub, receiver: WebhookReceiver) -> None:
    old = event() | {"created_at": (datetime.now(UTC) - timedelta(days=8)).isoformat()}
    assert deliver(receiver, hub.keys[0], old)[0] == 400
    future = event() | {"created_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    assert deliver(receiver, hub.keys[0], future)[0] == 400


def test_unknown_event_types_are_acknowledged_and_ignored(
    hub: Hub, receiver: WebhookReceiver, sink: str
) -> None:
    notice = event("ntf_agr", "agreement.terminated") | {"data": {"agreement_id": "agr-1"}}
    assert deliver(receiver, hub.keys[0], notice) == (
        200,
        {"status": "ignored", "event": "ntf_agr"},
    )
    assert len(subjects(sink)) == 5 and hub.attestations == [] and hub.probes == []


def test_the_asgi_app(hub: Hub, receiver: WebhookReceiver) -> None:
    app = receiver.asgi("/hook")
    payload = event()
    body = json.dumps(payload).encode()
    headers = {SIGNATURE_HEADER: sign_detached(body, hub.keys[0])}

    async def calls() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rx") as client:
            return [
                await client.post("/hook", content=body, headers=headers),
                await client.get("/hook"),
                await client.post("/elsewhere", content=body, headers=headers),
                await client.post("/hook", content=b"x" * ((1 << 20) + 1), headers=headers),
            ]

    ok, get, elsewhere, huge = anyio.run(calls)
    assert ok.status_code == 200 and ok.json()["records"] == 3
    assert (get.status_code, elsewhere.status_code, huge.status_code) == (405, 404, 413)
