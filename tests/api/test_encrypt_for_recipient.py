"""Sensitive fields leave only sealed to the recipient's registered key, and the SDK opens them."""

from __future__ import annotations

from typing import Any

import httpx
from joserfc.jwk import OKPKey

from connectors import HubClient
from hub.registry.models import Partner
from tests.support.hub import TEST_ISSUER, HubEnv

LENDER = "lender-jinqiao"
DATASET = "dealer-huadong.loan-applications"


def _decisions_of(hub: HubEnv, request_id: str) -> list[dict[str, Any]]:
    events = hub.client.get(
        "/v1/audit/events",
        params={"partner_id": hub.partner(LENDER)["partner_id"], "limit": 1000},
        headers=hub.auth("regulator-fsr"),
    ).json()["items"]
    return [d for e in events if e.get("request_id") == request_id for d in e["decisions"]]


def test_without_an_encryption_key_sensitive_fields_are_withheld_and_logged_so(
    hub: HubEnv,
) -> None:
    agreement_id = hub.agreement(LENDER, DATASET)
    response = hub.client.get(
        f"/v1/agreements/{agreement_id}/records", params={"limit": 1000}, headers=hub.auth(LENDER)
    )
    page = response.json()
    assert page["items"] and all("id_number" not in i["fields"] for i in page["items"])
    decisions = _decisions_of(hub, response.headers["x-request-id"])
    allowed = [d for d in decisions if d["allow"]]
    assert allowed and all("id_number" in d["fields_withheld"] for d in allowed)
    assert all("id_number" not in d["fields_released"] for d in allowed)
    assert all(len(d["input_digest"]) >= 32 for d in decisions)


def test_with_a_registered_key_the_sdk_decrypts_what_the_hub_sealed(hub: HubEnv) -> None:
    key = OKPKey.generate_key("X25519", private=True)
    public = {**key.as_dict(private=False), "use": "enc", "kid": "lender-enc-1"}
    with hub.session() as session:
        partner = session.get(Partner, hub.partner(LENDER)["partner_id"])
        assert partner is not None
        partner.jwks = {"keys": [public]}
        session.commit()

    agreement_id = hub.agreement(LENDER, DATASET)
    raw = hub.client.get(
        f"/v1/agreements/{agreement_id}/records", params={"limit": 1000}, headers=hub.auth(LENDER)
    ).json()
    sealed = [i for i in raw["items"] if "id_number" in i["fields"]]
    assert sealed, "consents with the separate sensitive grant exist in the demo"
    for item in sealed:
        assert item["fields"]["id_number"].count(".") == 4, "a compact JWE"
        assert raw["encrypted_fields"][item["record_key"]] == item["encrypted_fields"]

    partner = hub.partner(LENDER)
    with HubClient(
        TEST_ISSUER,
        partner["client_id"],
        client_secret=partner["client_secret"],
        decryption_key=key.as_dict(private=True),
        transport=_asgi_bridge(hub),
    ) as client:
        record = client.get_record(agreement_id, sealed[0]["record_key"])
    opened = record.fields["id_number"]
    assert isinstance(opened, str) and len(opened) in (18, 9) and "." not in opened


def _asgi_bridge(hub: HubEnv) -> httpx.BaseTransport:
    """A sync transport that hands requests to the in-process app through the TestClient."""

    class Bridge(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = hub.client.request(
                request.method,
                str(request.url),
                headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
                content=request.read(),
            )
            return httpx.Response(
                response.status_code, headers=response.headers, content=response.content
            )

    return Bridge()
