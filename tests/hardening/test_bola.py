"""Object-level authorization (BOLA): a partner asking for another partner's agreement, record,
consent, dataset or webhook gets exactly the answer a missing id gets (404, same problem type,
title and detail), and the attempt on data is written to the audit log."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from consent.models import Consent, WebhookEndpoint
from consent.webhooks import register_endpoint
from hub.audit.models import AuditEvent
from hub.records.models import Record
from hub.registry.models import Agreement
from tests.hardening.conftest import consumer_subject
from tests.support.hub import HubEnv

OWNER = "lender-jinqiao"
INTRUDER = "lender-pearl"
MISSING = "agr_000000000000000000000000"


def _shape(response: httpx.Response) -> dict[str, Any]:
    """What a caller can observe, minus the path echo and the per-request id."""
    body = response.json()
    body.pop("instance", None)
    body.pop("request_id", None)
    return {
        "status": response.status_code,
        "content_type": response.headers.get("content-type"),
        "body": body,
    }


def _same_as_missing(found: httpx.Response, missing: httpx.Response) -> None:
    assert found.status_code == 404, found.text
    assert _shape(found) == _shape(missing)


@pytest.fixture(scope="module")
def owned(hub: HubEnv) -> dict[str, str]:
    """Ids that belong to OWNER (and OWNER's consumer) only."""
    owner_id = hub.partner(OWNER)["partner_id"]
    agreement_id = hub.partner(OWNER)["agreements"][0]["id"]
    with hub.session() as session:
        agreement = session.get(Agreement, agreement_id)
        assert agreement is not None
        record_key = session.scalars(
            select(Record.record_key).where(Record.dataset_id == agreement.dataset_id).limit(1)
        ).one()
        consent = session.scalars(
            select(Consent).where(Consent.recipient_id == owner_id).limit(1)
        ).one()
        endpoint = register_endpoint(
            session,
            partner_id=owner_id,
            url="https://hooks.jinqiao.example/consent",
            event_types=["consent.withdrawn"],
            settings=hub.runtime.webhook_settings,
            resolver=lambda host, port: ["93.184.216.34"],
        )
        session.commit()
        return {
            "agreement": agreement_id,
            "record_key": record_key,
            "consent": consent.id,
            "consent_subject": consent.subject_id,
            "webhook": endpoint.id,
            "dataset": hub.partner("dealer-huadong")["datasets"][0],
        }


def _audited(hub: HubEnv, response: httpx.Response, partner: str) -> bool:
    request_id = response.headers["x-request-id"]
    with hub.session() as session:
        count = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.request_id == request_id,
                AuditEvent.partner_id == hub.partner(partner)["partner_id"],
            )
        )
    return bool(count)


@pytest.mark.parametrize(
    "suffix", ["/records", "/records/{record_key}"], ids=["page", "one-record"]
)
def test_pulling_under_anothers_agreement_is_a_logged_404(
    hub: HubEnv, owned: dict[str, str], suffix: str
) -> None:
    path = "/v1/agreements/{id}" + suffix.replace("{record_key}", owned["record_key"])
    found = hub.client.get(path.format(id=owned["agreement"]), headers=hub.auth(INTRUDER))
    missing = hub.client.get(path.format(id=MISSING), headers=hub.auth(INTRUDER))
    _same_as_missing(found, missing)
    assert _audited(hub, found, INTRUDER), "a BOLA attempt on records must be audited"


def test_a_record_of_another_dataset_is_a_404_like_a_missing_key(
    hub: HubEnv, owned: dict[str, str]
) -> None:
    intruder_agreement = hub.partner(INTRUDER)["agreements"][0]["id"]
    with hub.session() as session:
        own = session.get(Agreement, intruder_agreement)
        assert own is not None
        foreign_key = session.scalars(
            select(Record.record_key).where(Record.dataset_id != own.dataset_id).limit(1)
        ).one()
    base = f"/v1/agreements/{intruder_agreement}/records/"
    found = hub.client.get(base + foreign_key, headers=hub.auth(INTRUDER))
    missing = hub.client.get(base + "NO-SUCH-RECORD", headers=hub.auth(INTRUDER))
    _same_as_missing(found, missing)


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("GET", "/history", None),
        ("POST", "/suspension", {"reason": "probing"}),
        ("POST", "/termination", {"reason": "probing"}),
        ("POST", "/acceptance", {}),
        ("POST", "/deletion-attestation", {"statement": "deleted everything"}),
    ],
)
def test_anothers_agreement_is_a_404_like_a_missing_one(
    hub: HubEnv, owned: dict[str, str], method: str, suffix: str, body: dict[str, str] | None
) -> None:
    def call(agreement_id: str) -> httpx.Response:
        return hub.client.request(
            method, f"/v1/agreements/{agreement_id}{suffix}", json=body, headers=hub.auth(INTRUDER)
        )

    _same_as_missing(call(owned["agreement"]), call(MISSING))
    with hub.session() as session:
        agreement = session.get(Agreement, owned["agreement"])
        assert agreement is not None and agreement.status == "active"


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("GET", "/receipts", None),
        (
            "POST",
            "/deletion-attestations",
            {"statement": "gone", "records_deleted": 1, "deleted_at": "2026-11-01T00:00:00Z"},
        ),
    ],
)
def test_anothers_consent_is_a_404_like_a_missing_one(
    hub: HubEnv, owned: dict[str, str], method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    def call(consent_id: str) -> httpx.Response:
        return hub.client.request(
            method, f"/v1/consents/{consent_id}{suffix}", json=body, headers=hub.auth(INTRUDER)
        )

    _same_as_missing(call(owned["consent"]), call("cns_000000000000000000000000"))


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", "/history"), ("GET", "/receipts"), ("POST", "/withdraw"), ("POST", "/pause")],
)
def test_another_consumers_consent_is_a_404_like_a_missing_one(
    hub: HubEnv, owned: dict[str, str], method: str, suffix: str
) -> None:
    other = next(
        s for i in range(5) if (s := consumer_subject(hub, offset=i)) != owned["consent_subject"]
    )
    headers = {"Authorization": "Bearer " + hub.runtime.consumer_tokens.issue(other)}

    def call(consent_id: str) -> httpx.Response:
        body = {"reason": "not mine"} if method == "POST" else None
        return hub.client.request(
            method, f"/v1/me/consents/{consent_id}{suffix}", json=body, headers=headers
        )

    _same_as_missing(call(owned["consent"]), call("cns_000000000000000000000000"))
    with hub.session() as session:
        consent = session.get(Consent, owned["consent"])
        assert consent is not None and consent.status not in ("withdrawn", "paused")


def test_anothers_webhook_cannot_be_deleted_and_looks_missing(
    hub: HubEnv, owned: dict[str, str]
) -> None:
    found = hub.client.delete(f"/v1/webhooks/{owned['webhook']}", headers=hub.auth(INTRUDER))
    missing = hub.client.delete("/v1/webhooks/whk_000000000000000000", headers=hub.auth(INTRUDER))
    _same_as_missing(found, missing)
    listed = hub.client.get("/v1/webhooks", headers=hub.auth(INTRUDER)).json()["items"]
    assert owned["webhook"] not in {w["id"] for w in listed}
    with hub.session() as session:
        endpoint = session.get(WebhookEndpoint, owned["webhook"])
        assert endpoint is not None and endpoint.active


def test_publishing_into_anothers_dataset_is_a_404_like_a_missing_one(
    hub: HubEnv, owned: dict[str, str]
) -> None:
    batch = {
        "records": [{"record_key": "X-1", "subject": {"vin": "LSVAU2180N2183294"}, "fields": {}}]
    }

    def call(dataset_id: str) -> httpx.Response:
        return hub.client.post(
            f"/v1/datasets/{dataset_id}/records", json=batch, headers=hub.auth("dealer-nanfang")
        )

    _same_as_missing(call(owned["dataset"]), call("dealer-nanfang.no-such-dataset"))


@pytest.mark.parametrize(
    ("kind", "method", "suffix", "body"),
    [
        ("agreement", "GET", "", None),
        ("agreement", "GET", "/history", None),
        ("agreement", "POST", "/suspension", {"reason": "probing"}),
        ("consent", "GET", "", None),
        ("consent", "GET", "/receipts", None),
    ],
)
def test_bola_attempts_on_metadata_are_audited(
    hub: HubEnv,
    owned: dict[str, str],
    kind: str,
    method: str,
    suffix: str,
    body: dict[str, str] | None,
) -> None:
    path = {"agreement": "/v1/agreements/", "consent": "/v1/consents/"}[kind] + owned[kind]
    response = hub.client.request(method, path + suffix, json=body, headers=hub.auth(INTRUDER))
    assert response.status_code == 404
    assert _audited(hub, response, INTRUDER)
    with hub.session() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.request_id == response.headers["x-request-id"])
        ).one()
    logged = json.loads(event.canonical)
    assert logged["kind"] == "access.denied"
    assert logged["outcome"] == "denied"
    assert logged["object_type"] == kind
    assert logged["object_id"] == owned[kind]
    assert logged["reasons"] == [f"{kind}.not_visible"]


def test_a_missing_id_is_audited_like_anothers(hub: HubEnv) -> None:
    response = hub.client.get(f"/v1/agreements/{MISSING}", headers=hub.auth(INTRUDER))
    assert response.status_code == 404
    assert _audited(hub, response, INTRUDER)


def test_a_bola_pull_is_audited_once(hub: HubEnv, owned: dict[str, str]) -> None:
    path = f"/v1/agreements/{owned['agreement']}/records"
    response = hub.client.get(path, headers=hub.auth(INTRUDER))
    assert response.status_code == 404
    with hub.session() as session:
        kinds = session.scalars(
            select(AuditEvent.kind).where(AuditEvent.request_id == response.headers["x-request-id"])
        ).all()
    assert kinds == ["release.denied"]
