"""Onboarding through the admin API: register, credentials, rotation with grace, suspension."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from hub.registry import service as registry
from hub.registry.models import AppendOnlyError, PartnerEvent
from hub.store.base import utcnow
from tests.registry.support import admin, bearer, new_partner, token_response
from tests.support.hub import HubEnv

LENDER = "lender-pearl"
DATASET = "dealer-huadong.loan-applications"


def test_onboarding_a_partner_end_to_end(hub: HubEnv) -> None:
    created = new_partner(hub, client_id="lingang-leasing")
    partner = created["partner"]
    assert partner["status"] == "active" and partner["role"] == "lender"
    assert partner["scopes"] == ["records:publish", "records:pull"]
    assert created["client_id"] == "lingang-leasing"

    headers = bearer(hub, created["client_id"], created["client_secret"])
    listed = hub.client.get("/v1/agreements", headers=headers)
    assert listed.status_code == 200 and listed.json()["items"] == []

    shown = admin(hub, "GET", f"/v1/partners/{partner['id']}")
    assert shown.status_code == 200 and shown.json()["contact"]["email"] == "dpo@lingang.example"
    assert "client_secret" not in shown.text and "secret_hash" not in shown.text
    events = admin(hub, "GET", f"/v1/partners/{partner['id']}/events").json()["items"]
    assert [e["event"] for e in events] == ["registered"]
    assert events[0]["actor"].startswith("operator:")


def test_wrong_secret_and_unknown_client_are_refused(hub: HubEnv) -> None:
    created = new_partner(hub)
    assert token_response(hub, created["client_id"], "not-the-secret").status_code == 401
    assert token_response(hub, "nobody", created["client_secret"]).status_code == 401


@pytest.mark.parametrize(
    "overrides",
    [
        {"scopes": ["admin"]},
        {"status": "active"},
        {"role": "operator"},
        {"jurisdiction": "China"},
        {"registration_id": "x"},
        {"contact": {"name": "A", "email": "not-an-email"}},
        {"contact": {"name": "A", "password": "x"}},
        {"webhook_url": "http://127.0.0.1:9/hook"},
        {"webhook_url": "https://10.0.0.8/hook"},
    ],
)
def test_bad_registrations_are_422(hub: HubEnv, overrides: dict[str, Any]) -> None:
    body = {
        "name": "X", "legal_name": "X Ltd", "registration_id": "91310000X", "role": "dealer",
        "jurisdiction": "CN", "contact": {"name": "Ops"}, **overrides,
    }  # fmt: skip
    response = admin(hub, "POST", "/v1/partners", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_duplicate_client_id_is_409(hub: HubEnv) -> None:
    new_partner(hub, client_id="dup-client")
    response = admin(
        hub, "POST", "/v1/partners",
        json={"name": "Y", "legal_name": "Y", "registration_id": "91999", "role": "dealer",
              "jurisdiction": "CN", "contact": {"name": "Ops"}, "client_id": "dup-client"},
    )  # fmt: skip
    assert response.status_code == 409
    assert response.json()["type"].endswith("/already-exists")


@pytest.mark.parametrize("who", ["lender-jinqiao", "regulator-fsr"])
def test_only_the_operator_administers_partners(hub: HubEnv, who: str) -> None:
    response = hub.client.get("/v1/partners", headers=hub.auth(who))
    assert response.status_code == 403
    response = hub.client.post(
        f"/v1/partners/{hub.partner('dealer-nanfang')['partner_id']}/suspension",
        json={"reason": "x"},
        headers=hub.auth(who),
    )
    assert response.status_code == 403


def test_unknown_partner_is_404(hub: HubEnv) -> None:
    assert admin(hub, "GET", "/v1/partners/ptn_nope").status_code == 404
    response = admin(hub, "POST", "/v1/partners/ptn_nope/secrets", json={"grace_seconds": 0})
    assert response.status_code == 404


def test_rotation_keeps_the_old_secret_for_the_grace_period_then_stops_it(hub: HubEnv) -> None:
    created = new_partner(hub)
    pid, cid, old = created["partner"]["id"], created["client_id"], created["client_secret"]

    rotated = admin(hub, "POST", f"/v1/partners/{pid}/secrets", json={"grace_seconds": 2})
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["client_secret"]
    assert new != old and rotated.json()["previous_secrets_expire_at"]
    assert token_response(hub, cid, old).status_code == 200, "within the grace period"
    assert token_response(hub, cid, new).status_code == 200

    time.sleep(2.2)
    assert token_response(hub, cid, old).status_code == 401, "after the grace period"
    assert token_response(hub, cid, new).status_code == 200
    secrets = admin(hub, "GET", f"/v1/partners/{pid}/secrets").json()["items"]
    assert len(secrets) == 2 and secrets[1]["expires_at"] is None


def test_rotation_without_grace_stops_the_old_secret_at_once(hub: HubEnv) -> None:
    created = new_partner(hub)
    pid, cid, old = created["partner"]["id"], created["client_id"], created["client_secret"]
    rotated = admin(hub, "POST", f"/v1/partners/{pid}/secrets", json={"grace_seconds": 0})
    assert token_response(hub, cid, old).status_code == 401
    assert token_response(hub, cid, rotated.json()["client_secret"]).status_code == 200


@pytest.mark.parametrize("grace", [-1, 10**9])
def test_grace_period_is_bounded(hub: HubEnv, grace: int) -> None:
    created = new_partner(hub)
    response = admin(
        hub, "POST", f"/v1/partners/{created['partner']['id']}/secrets",
        json={"grace_seconds": grace},
    )  # fmt: skip
    assert response.status_code == 422


def test_live_secrets_boundary(hub: HubEnv) -> None:
    created = new_partner(hub)
    pid = created["partner"]["id"]
    now = utcnow()
    with hub.session() as session:
        registry.rotate_client_secret(
            session, partner_id=pid, grace_seconds=600, max_grace_seconds=3600, actor="t", now=now
        )
        assert len(registry.live_secrets(session, partner_id=pid, now=now)) == 2
        later = now + timedelta(seconds=600)
        assert len(registry.live_secrets(session, partner_id=pid, now=later)) == 1
        session.rollback()


def test_suspension_cuts_an_in_flight_paginated_pull(hub: HubEnv) -> None:
    pid = hub.partner(LENDER)["partner_id"]
    agreement_id = hub.agreement(LENDER, DATASET)
    headers = hub.auth(LENDER)
    url = f"/v1/agreements/{agreement_id}/records"
    first = hub.client.get(url, params={"limit": 2}, headers=headers)
    assert first.status_code == 200
    cursor = first.json()["next_cursor"]
    assert cursor

    suspended = admin(hub, "POST", f"/v1/partners/{pid}/suspension", json={"reason": "audit"})
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    try:
        nxt = hub.client.get(url, params={"limit": 2, "cursor": cursor}, headers=headers)
        assert nxt.status_code == 401
        assert nxt.headers["content-type"] == "application/problem+json"
        assert (
            token_response(
                hub, hub.partner(LENDER)["client_id"], hub.partner(LENDER)["client_secret"]
            ).status_code
            == 401
        ), "no new tokens while suspended"
        again = admin(hub, "POST", f"/v1/partners/{pid}/suspension", json={"reason": "x"})
        assert again.status_code == 409
    finally:
        reinstated = admin(hub, "POST", f"/v1/partners/{pid}/reinstatement", json={"reason": "ok"})
        assert reinstated.status_code == 200, reinstated.text

    # Tokens from before the suspension stay dead; a new one resumes the pull at the cursor.
    assert hub.client.get(url, params={"cursor": cursor}, headers=headers).status_code == 401
    fresh = bearer(hub, hub.partner(LENDER)["client_id"], hub.partner(LENDER)["client_secret"])
    resumed = hub.client.get(url, params={"limit": 2, "cursor": cursor}, headers=fresh)
    assert resumed.status_code == 200
    assert not {i["record_key"] for i in resumed.json()["items"]} & {
        i["record_key"] for i in first.json()["items"]
    }
    hub._tokens.clear()
    events = admin(hub, "GET", f"/v1/partners/{pid}/events").json()["items"]
    assert [e["event"] for e in events][-2:] == ["suspended", "reinstated"]


def test_reinstating_an_active_partner_is_409(hub: HubEnv) -> None:
    pid = hub.partner("dealer-nanfang")["partner_id"]
    response = admin(hub, "POST", f"/v1/partners/{pid}/reinstatement", json={"reason": "x"})
    assert response.status_code == 409


def test_partner_history_is_append_only(hub: HubEnv) -> None:
    with hub.session() as session:
        event = session.scalars(select(PartnerEvent).limit(1)).one()
        event.reason = "rewritten"
        with pytest.raises(AppendOnlyError):
            session.flush()
        session.rollback()
