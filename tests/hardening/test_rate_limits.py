"""Per-partner rate limits over HTTP: 429 problem+json with Retry-After, per partner and per
route class, a partner's registry setting over the settings' default, the token endpoint (whose
failures are paid by the source address, never by the client they name), and the partner SDK
waiting out a real 429."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

import connectors._client as sdk_client
from connectors import HubClient
from hub.auth.server import claimed_client_id
from hub.errors import ValidationFailedError
from hub.ratelimit import ROUTE_CLASSES, RateLimit
from hub.ratelimit.partners import set_partner_rate_limits
from hub.registry.models import Partner, PartnerEvent
from tests.conftest import make_settings
from tests.support.databases import TestDatabases
from tests.support.hub import TEST_ISSUER, HubEnv, build_env

LENDER = "lender-jinqiao"
OTHER = "lender-pearl"
NO_REFILL = 1 / 1440  # one token a day
LOW = {cls: RateLimit(per_minute=NO_REFILL, burst=3) for cls in ROUTE_CLASSES}


@pytest.fixture()
def limited(
    seeded_template: tuple[Path, str, dict[str, Any]], databases: TestDatabases
) -> Iterator[HubEnv]:
    """A hub whose every bucket holds 3 requests and does not refill within the test."""
    data_dir, template_url, credentials = seeded_template
    settings = make_settings(data_dir, databases.clone(template_url), rate_limits=LOW)
    env = build_env(settings, credentials)
    with env.client:
        yield env


def _token(hub: HubEnv, ref: str) -> str:
    response = hub.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": hub.basic_auth(ref)},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _assert_429(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "https://tollhouse.dev/problems/rate-limited"
    assert body["status"] == 429
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    return retry_after


def test_a_partner_beyond_its_bucket_gets_429_with_retry_after(limited: HubEnv) -> None:
    headers = {"Authorization": f"Bearer {_token(limited, LENDER)}"}
    for _ in range(3):
        assert limited.client.get("/v1/agreements", headers=headers).status_code == 200
    _assert_429(limited.client.get("/v1/agreements", headers=headers))
    # another route of the same class shares the bucket
    _assert_429(limited.client.get("/v1/consents", headers=headers))


def test_buckets_are_per_partner_and_per_route_class(limited: HubEnv) -> None:
    lender = {"Authorization": f"Bearer {_token(limited, LENDER)}"}
    for _ in range(3):
        limited.client.get("/v1/agreements", headers=lender)
    _assert_429(limited.client.get("/v1/agreements", headers=lender))
    other = {"Authorization": f"Bearer {_token(limited, OTHER)}"}
    assert limited.client.get("/v1/agreements", headers=other).status_code == 200
    agreement = limited.partner(LENDER)["agreements"][0]["id"]
    pulled = limited.client.get(f"/v1/agreements/{agreement}/records?limit=1", headers=lender)
    assert pulled.status_code == 200, pulled.text  # the pull bucket is its own


def test_a_partners_registry_setting_overrides_the_default(limited: HubEnv) -> None:
    partner_id = limited.partner(LENDER)["partner_id"]
    with limited.session() as session:
        partner = session.get(Partner, partner_id)
        assert partner is not None
        partner.rate_limits = {"api": {"per_minute": NO_REFILL, "burst": 6}}
        session.commit()
    headers = {"Authorization": f"Bearer {_token(limited, LENDER)}"}
    statuses = [limited.client.get("/v1/agreements", headers=headers).status_code for _ in range(8)]
    assert statuses == [200] * 6 + [429] * 2


@pytest.mark.parametrize(
    "setting", [{"api": {"per_minute": -1, "burst": 0}}, {"api": "lots"}, ["api"], {"x": {}}]
)
def test_a_malformed_registry_setting_falls_back_to_the_default(
    limited: HubEnv, setting: Any
) -> None:
    with limited.session() as session:
        partner = session.get(Partner, limited.partner(OTHER)["partner_id"])
        assert partner is not None
        partner.rate_limits = setting
        session.commit()
    headers = {"Authorization": f"Bearer {_token(limited, OTHER)}"}
    statuses = [limited.client.get("/v1/agreements", headers=headers).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_the_token_endpoint_has_its_own_bucket(limited: HubEnv) -> None:
    for _ in range(3):
        _token(limited, LENDER)
    response = limited.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": limited.basic_auth(LENDER)},
    )
    _assert_429(response)
    _token(limited, OTHER)  # another client is not affected


def _from(hub: HubEnv, address: str) -> TestClient:
    """A client of the same hub whose requests come from ``address``."""
    return TestClient(
        hub.client.app, base_url=TEST_ISSUER, raise_server_exceptions=False, client=(address, 4711)
    )


def test_bad_secrets_for_a_partner_do_not_lock_it_out(limited: HubEnv) -> None:
    """A client id is no secret: guesses at a partner's secret from one address exhaust that
    address's buckets, never the partner's own."""
    client_id = limited.partner(LENDER)["client_id"]
    garbage = "Basic " + _b64(f"{client_id}:not-the-secret")
    attacker = _from(limited, "203.0.113.7")
    statuses = [
        attacker.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": garbage},
        )
        for _ in range(6)
    ]
    assert [r.status_code for r in statuses[:3]] == [401] * 3
    assert statuses[0].json()["error"] == "invalid_client"  # RFC 6749 JSON, as before
    for refused in statuses[3:]:
        _assert_429(refused)
    partner = _from(limited, "198.51.100.20")
    response = partner.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": limited.basic_auth(LENDER)},
    )
    assert response.status_code == 200, response.text


def test_unknown_client_ids_from_one_address_share_its_bucket(limited: HubEnv) -> None:
    """3 failures per claimed client and address, 9 per address whatever the client ids."""
    sprayer = _from(limited, "203.0.113.8")
    statuses = [
        sprayer.post(
            "/oauth/token", data={"grant_type": "client_credentials", "client_id": f"nobody-{i}"}
        ).status_code
        for i in range(11)
    ]
    assert statuses == [401] * 9 + [429, 429]
    _token(limited, LENDER)  # another address is not affected


class _ViaTestClient(httpx.BaseTransport):
    """The SDK's httpx client, answered by the hub's ASGI app through the test client."""

    def __init__(self, hub: HubEnv) -> None:
        self.hub = hub

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.hub.client.request(
            request.method, str(request.url), headers=dict(request.headers), content=request.read()
        )
        headers = [(k, v) for k, v in answer.headers.multi_items() if k != "content-encoding"]
        return httpx.Response(
            answer.status_code, headers=headers, content=answer.content, request=request
        )


def test_the_sdk_waits_out_a_real_429(
    seeded_template: tuple[Path, str, dict[str, Any]],
    databases: TestDatabases,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data_dir, template_url, credentials = seeded_template
    limits = dict(LOW, api=RateLimit(per_minute=60, burst=1))  # one call a second
    settings = make_settings(data_dir, databases.clone(template_url), rate_limits=limits)
    env = build_env(settings, credentials)
    now = [1_000_000.0]
    env.runtime.rate_limiter.clock = lambda: now[0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(sdk_client, "_sleep", sleep)
    partner = env.partner(LENDER)
    with env.client:
        client = HubClient(
            "http://testserver",
            partner["client_id"],
            client_secret=partner["client_secret"],
            transport=_ViaTestClient(env),
        )
        try:
            first = client.list_agreements()
            second = client.list_agreements()  # 429, Retry-After: 1, then served
        finally:
            client.close()
    assert first == second
    assert slept == [1.0]


def test_the_operator_sets_a_partners_limits_with_history(limited: HubEnv) -> None:
    partner_id = limited.partner(LENDER)["partner_id"]
    with limited.session() as session:
        with pytest.raises(ValidationFailedError):
            set_partner_rate_limits(
                session, partner_id=partner_id, limits={"api": {"burst": 0}}, actor="op"
            )
        set_partner_rate_limits(
            session,
            partner_id=partner_id,
            limits={"api": {"per_minute": NO_REFILL, "burst": 5}},
            actor="op",
            reason="a large lender",
        )
        session.commit()
        events = session.scalars(
            select(PartnerEvent.event).where(PartnerEvent.partner_id == partner_id)
        ).all()
    assert "rate_limits_set" in events
    headers = {"Authorization": f"Bearer {_token(limited, LENDER)}"}
    statuses = [limited.client.get("/v1/agreements", headers=headers).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _assertion(claims: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJFZERTQSJ9.{body}.c2ln"


@pytest.mark.parametrize(
    ("headers", "form", "expected"),
    [
        ({"authorization": "Basic " + _b64("lender%2Dx:secret")}, {}, "lender-x"),
        ({"authorization": "Basic !!!"}, {}, None),
        ({"authorization": "Basic " + _b64(":secret")}, {}, None),
        ({}, {"client_id": "dealer-y"}, "dealer-y"),
        ({}, {"client_assertion": _assertion({"sub": "oem-z", "iss": "oem-z"})}, "oem-z"),
        ({}, {"client_assertion": _assertion({"sub": 7})}, None),
        ({}, {"client_assertion": "a.%%%.c"}, None),
        ({}, {"client_assertion": "not-a-jwt"}, None),
        ({}, {"client_id": "x" * 500}, "x" * 128),
        ({}, {}, None),
    ],
)
def test_failures_are_keyed_by_the_claimed_client_id(
    headers: dict[str, str], form: dict[str, str], expected: str | None
) -> None:
    assert claimed_client_id(headers, form) == expected
