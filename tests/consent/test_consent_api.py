"""The consent API end to end: a partner asks, the consumer answers, receipts verify, pulls obey."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from consent.models import ConsentEvent
from consent.receipts import verify_receipt
from hub.audit.models import AuditEvent
from hub.demo.population import Consumer
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


def ask(hub: HubEnv, person: Consumer, **overrides: Any) -> dict[str, Any]:
    response = hub.client.post(
        "/v1/consent-requests", json=request_body(person, **overrides), headers=hub.auth(LENDER)
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def released_subjects(hub: HubEnv) -> set[str]:
    items = hub.pull_all(LENDER, hub.agreement(LENDER, DATASET), limit=1000)
    keys = owners(hub)
    return {keys[i["record_key"]] for i in items}


def test_request_grant_pull_withdraw_with_receipts(hub: HubEnv, people: list[Consumer]) -> None:
    person, subject_id = person_without_consent(hub, people, TAKEN)
    assert subject_id not in released_subjects(hub)

    asked = ask(hub, person)
    assert asked["status"] == "requested" and "subject_id" not in asked
    me = consumer_auth(hub, subject_id)
    pending = hub.client.get("/v1/me/consent-requests", headers=me).json()["items"]
    mine = next(p for p in pending if p["id"] == asked["id"])
    assert "To assess" in mine["reason"] and mine["summary"]

    granted = hub.client.post(
        f"/v1/me/consent-requests/{asked['id']}/grant",
        json={"sensitive": True, "duration_days": 30, "categories": [
            "identity", "identity_document", "income", "loan", "vehicle_identifier"]},
        headers=me,
    )  # fmt: skip
    assert granted.status_code == 200, granted.text
    consent = granted.json()
    assert consent["status"] == "active" and "contact" not in consent["categories"]
    assert consent["receipt_id"].startswith("rcp_")
    assert "may read and keep" in consent["summary"]

    # The very next pull releases the subject's records, without the narrowed-away contact.
    items = hub.pull_all(LENDER, hub.agreement(LENDER, DATASET), limit=1000)
    keys = owners(hub)
    theirs = [i for i in items if keys[i["record_key"]] == subject_id]
    assert theirs and all("mobile" not in i["fields"] for i in theirs)

    # The audit event of a pull cites the receipt id.
    with hub.session() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.kind == "release")).all()
    assert any(consent["receipt_id"].encode() in e.canonical for e in events)

    withdrawn = hub.client.post(
        f"/v1/me/consents/{consent['id']}/withdraw", json={"reason": "sold the car"}, headers=me
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    assert subject_id not in released_subjects(hub)
    again = hub.client.post(f"/v1/me/consents/{consent['id']}/withdraw", json={}, headers=me)
    assert again.status_code == 409
    assert again.json()["type"].endswith("/invalid-consent-transition")

    # Receipts: one per grant and change, chained, verified with the published JWKS.
    jwks = hub.client.get("/.well-known/jwks.json").json()
    receipts = hub.client.get(f"/v1/me/consents/{consent['id']}/receipts", headers=me).json()
    partner_view = hub.client.get(
        f"/v1/consents/{consent['id']}/receipts", headers=hub.auth(LENDER)
    ).json()
    assert receipts == partner_view
    claims = [verify_receipt(r["jws"], jwks) for r in receipts["items"]]
    assert [c["event"]["type"] for c in claims] == ["consent.granted", "consent.withdrawn"]
    assert claims[1]["prev"] == claims[0]["jti"] == consent["receipt_id"]
    assert claims[0]["consent"]["categories"] == sorted(consent["categories"])
    assert all(c["iss"] == hub.settings.issuer for c in claims)
    assert subject_id not in str(claims)

    history = hub.client.get(f"/v1/me/consents/{consent['id']}/history", headers=me).json()
    steps = [(e["from_status"], e["to_status"]) for e in history["items"]]
    assert steps == [(None, "requested"), ("requested", "active"), ("active", "withdrawn")]
    assert history["items"][0]["terms"]["categories"] != history["items"][1]["terms"]["categories"]


def test_a_tampered_receipt_does_not_verify(hub: HubEnv, people: list[Consumer]) -> None:
    from consent.errors import InvalidConsentError

    person, subject_id = person_without_consent(hub, people, TAKEN)
    asked = ask(hub, person)
    me = consumer_auth(hub, subject_id)
    hub.client.post(
        f"/v1/me/consent-requests/{asked['id']}/grant", json={"sensitive": True}, headers=me
    )
    receipt = hub.client.get(f"/v1/me/consents/{asked['id']}/receipts", headers=me).json()
    jws = receipt["items"][0]["jws"]
    header, payload, signature = jws.split(".")
    forged = f"{header}.{payload[:-4]}AAAA.{signature}"
    jwks = hub.client.get("/.well-known/jwks.json").json()
    with pytest.raises(InvalidConsentError):
        verify_receipt(forged, jwks)
    # An access token is not a receipt, though signed with the same key.
    with pytest.raises(InvalidConsentError):
        verify_receipt(hub.token(LENDER), jwks)


def test_pause_and_resume(hub: HubEnv, people: list[Consumer]) -> None:
    person, subject_id = person_without_consent(hub, people, TAKEN)
    asked = ask(hub, person)
    me = consumer_auth(hub, subject_id)
    hub.client.post(
        f"/v1/me/consent-requests/{asked['id']}/grant", json={"sensitive": True}, headers=me
    )
    assert subject_id in released_subjects(hub)
    paused = hub.client.post(f"/v1/me/consents/{asked['id']}/pause", json={}, headers=me)
    assert paused.json()["status"] == "paused"
    assert subject_id not in released_subjects(hub)
    assert (
        hub.client.post(f"/v1/me/consents/{asked['id']}/pause", json={}, headers=me).status_code
        == 409
    )
    resumed = hub.client.post(f"/v1/me/consents/{asked['id']}/resume", json={}, headers=me)
    assert resumed.json()["status"] == "active"
    assert subject_id in released_subjects(hub)
    assert (
        hub.client.post(f"/v1/me/consents/{asked['id']}/resume", json={}, headers=me).status_code
        == 409
    )


def test_deny_and_double_grant(hub: HubEnv, people: list[Consumer]) -> None:
    person, subject_id = person_without_consent(hub, people, TAKEN)
    me = consumer_auth(hub, subject_id)
    first = ask(hub, person)
    denied = hub.client.post(
        f"/v1/me/consent-requests/{first['id']}/deny", json={"reason": "no"}, headers=me
    )
    assert denied.status_code == 200 and denied.json()["status"] == "denied"
    grant_denied = hub.client.post(
        f"/v1/me/consent-requests/{first['id']}/grant", json={}, headers=me
    )
    assert grant_denied.status_code == 409
    second = ask(hub, person)
    ok = hub.client.post(
        f"/v1/me/consent-requests/{second['id']}/grant", json={"sensitive": True}, headers=me
    )
    assert ok.status_code == 200
    twice = hub.client.post(
        f"/v1/me/consent-requests/{second['id']}/grant", json={"sensitive": True}, headers=me
    )
    assert twice.status_code == 409
    with hub.session() as session:
        events = session.scalars(
            select(ConsentEvent).where(ConsentEvent.consent_id == second["id"])
        ).all()
    assert [e.seq for e in events] == [1, 2]


def test_without_the_separate_sensitive_consent_sensitive_categories_are_left_out(
    hub: HubEnv, people: list[Consumer]
) -> None:
    person, subject_id = person_without_consent(hub, people, TAKEN)
    me = consumer_auth(hub, subject_id)
    asked = ask(hub, person)
    granted = hub.client.post(f"/v1/me/consent-requests/{asked['id']}/grant", json={}, headers=me)
    assert granted.status_code == 200, granted.text
    body = granted.json()
    assert body["sensitive"] is False and "identity_document" not in body["categories"]
    explicit = ask(hub, person)
    refused = hub.client.post(
        f"/v1/me/consent-requests/{explicit['id']}/grant",
        json={"categories": ["identity_document"]},
        headers=me,
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "sensitive"


@pytest.mark.parametrize(
    ("overrides", "slug", "field"),
    [
        ({"purpose": "astrology"}, "invalid-consent", "purpose"),
        ({"categories": ["horoscope"]}, "invalid-consent", "categories"),
        ({"categories": ["driving_behaviour"]}, "invalid-consent", "categories"),
        ({"purpose": "ubi_pricing", "categories": ["vehicle"]}, "invalid-consent", "purpose"),
        ({"duration_days": 91}, "fair-use-exceeded", "duration_days"),
        ({"fetches_per_day": 5001}, "fair-use-exceeded", "fetches_per_day"),
        (
            {"data_from": "2020-01-01T00:00:00Z", "data_until": "2026-01-01T00:00:00Z"},
            "fair-use-exceeded",
            "data_until",
        ),
        ({"sensitive": False}, "invalid-consent", "sensitive"),
        ({"mode": "view_once", "retention_days": 30}, "invalid-consent", "retention_days"),
        ({"reason": "   "}, "invalid-consent", "reason"),
    ],
)
def test_bad_requests_are_422_and_store_nothing(
    hub: HubEnv, people: list[Consumer], overrides: dict[str, Any], slug: str, field: str
) -> None:
    person = next(p for p in people if p.id_type == "prc_id")
    with hub.session() as session:
        before = session.scalars(select(ConsentEvent.id)).all()
    response = hub.client.post(
        "/v1/consent-requests", json=request_body(person, **overrides), headers=hub.auth(LENDER)
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["type"].endswith("/" + slug)
    assert problem["errors"][0]["field"] == field
    with hub.session() as session:
        assert session.scalars(select(ConsentEvent.id)).all() == before


@pytest.mark.parametrize(
    "body",
    [
        {"subject": {}},
        {"subject": {"id_number": "not-an-id"}},
        {"status": "active"},
        {"recipient_id": "ptn_x"},
        {"duration_days": 0},
        {"categories": []},
        {"data_from": "2026-01-01T00:00:00"},
    ],
)
def test_malformed_requests_are_4xx(
    hub: HubEnv, people: list[Consumer], body: dict[str, Any]
) -> None:
    person = next(p for p in people if p.id_type == "prc_id")
    response = hub.client.post(
        "/v1/consent-requests", json=request_body(person, **body), headers=hub.auth(LENDER)
    )
    assert response.status_code == 422, response.text


def test_an_unknown_consumer_is_404(hub: HubEnv, people: list[Consumer]) -> None:
    response = hub.client.post(
        "/v1/consent-requests",
        json=request_body(people[0], subject={"mobile": "+8613957204816"}),
        headers=hub.auth(LENDER),
    )
    assert response.status_code == 404


def test_nobody_answers_for_another_subject(hub: HubEnv, people: list[Consumer]) -> None:
    person, subject_id = person_without_consent(hub, people, TAKEN)
    _, intruder = person_without_consent(hub, people, TAKEN)
    asked = ask(hub, person)
    other = consumer_auth(hub, intruder)
    for path, body in (
        (f"/v1/me/consent-requests/{asked['id']}/grant", {"sensitive": True}),
        (f"/v1/me/consent-requests/{asked['id']}/deny", {}),
        (f"/v1/me/consents/{asked['id']}/withdraw", {}),
    ):
        response = hub.client.post(path, json=body, headers=other)
        assert response.status_code == 404, path
    missing = hub.client.post("/v1/me/consent-requests/cns_nope/grant", json={}, headers=other)
    assert missing.json()["detail"] == response.json()["detail"]
    assert (
        hub.client.get(f"/v1/me/consents/{asked['id']}/history", headers=other).status_code == 404
    )
    # A body naming a subject is refused: the subject is whoever the token speaks for.
    smuggled = hub.client.post(
        f"/v1/me/consent-requests/{asked['id']}/grant",
        json={"sensitive": True, "subject_id": subject_id},
        headers=other,
    )
    assert smuggled.status_code == 422
    # Another partner does not see the request either.
    assert (
        hub.client.get(f"/v1/consents/{asked['id']}", headers=hub.auth("lender-pearl")).status_code
        == 404
    )


@pytest.mark.parametrize("kind", ["none", "garbage", "partner", "receipt"])
def test_consumer_routes_need_a_consumer_token(
    hub: HubEnv, people: list[Consumer], kind: str
) -> None:
    headers: dict[str, str] = {}
    if kind == "garbage":
        headers = {"Authorization": "Bearer abc.def.ghi"}
    elif kind == "partner":
        headers = hub.auth(LENDER)
    elif kind == "receipt":
        person, subject_id = person_without_consent(hub, people, TAKEN)
        asked = ask(hub, person)
        me = consumer_auth(hub, subject_id)
        hub.client.post(
            f"/v1/me/consent-requests/{asked['id']}/grant", json={"sensitive": True}, headers=me
        )
        jws = hub.client.get(f"/v1/me/consents/{asked['id']}/receipts", headers=me).json()
        headers = {"Authorization": f"Bearer {jws['items'][0]['jws']}"}
    response = hub.client.get("/v1/me/consents", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_a_consumer_token_is_not_a_partner_token(hub: HubEnv, people: list[Consumer]) -> None:
    _, subject_id = person_without_consent(hub, people, TAKEN)
    response = hub.client.get("/v1/consents", headers=consumer_auth(hub, subject_id))
    assert response.status_code == 401


def test_my_consents_in_plain_words(hub: HubEnv, people: list[Consumer]) -> None:
    from tests.consent.support import subject_of

    subject_id = subject_of(hub, people[0])
    items = hub.client.get("/v1/me/consents", headers=consumer_auth(hub, subject_id)).json()[
        "items"
    ]
    assert items
    for item in items:
        assert item["summary"] and item["status"] != "requested"
        assert "Purpose:" in item["summary"] and "until" in item["summary"]


def test_revocation_needs_admin_and_a_reason(hub: HubEnv, people: list[Consumer]) -> None:
    person, subject_id = person_without_consent(hub, people, TAKEN)
    asked = ask(hub, person)
    me = consumer_auth(hub, subject_id)
    hub.client.post(
        f"/v1/me/consent-requests/{asked['id']}/grant", json={"sensitive": True}, headers=me
    )
    path = f"/v1/consents/{asked['id']}/revocations"
    assert hub.client.post(path, json={"reason": "x"}, headers=hub.auth(LENDER)).status_code == 403
    assert hub.client.post(path, json={}, headers=hub.auth("operator")).status_code == 422
    revoked = hub.client.post(
        path, json={"reason": "recipient under investigation"}, headers=hub.auth("operator")
    )
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    history = hub.client.get(f"/v1/me/consents/{asked['id']}/history", headers=me).json()["items"]
    assert history[-1]["actor"].startswith("admin:")
    assert history[-1]["reason"] == "recipient under investigation"
    assert subject_id not in released_subjects(hub)


def test_partner_lists_its_consents(hub: HubEnv) -> None:
    page = hub.client.get("/v1/consents", params={"limit": 5}, headers=hub.auth(LENDER)).json()
    assert len(page["items"]) == 5 and page["next_after"]
    more = hub.client.get(
        "/v1/consents", params={"limit": 5, "after": page["next_after"]}, headers=hub.auth(LENDER)
    ).json()
    assert not {i["id"] for i in page["items"]} & {i["id"] for i in more["items"]}
    own = hub.partner(LENDER)["partner_id"]
    assert all(i["recipient_id"] == own for i in page["items"] + more["items"])


def test_the_routes_are_documented(hub: HubEnv) -> None:
    paths = hub.client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/consent-requests",
        "/v1/consents/{consent_id}/receipts",
        "/v1/consents/{consent_id}/deletion-attestations",
        "/v1/me/consents/{consent_id}/withdraw",
        "/v1/me/consent-requests/{consent_id}/grant",
        "/v1/webhooks",
        "/v1/consent-notifications/{notification_id}/acknowledgement",
    ):
        assert path in paths, path
