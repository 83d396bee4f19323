"""Security of the portal: CSRF, another consumer's ids, code brute force, rate limits, session
fixation and expiry, and never telling whether a mobile number is known."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from consent.models import Consent, ConsentStatus
from hub.portal.models import PortalSession
from hub.store.base import utcnow
from tests.portal.helpers import (
    ask_code,
    consumer_with,
    csrf_of,
    last_code,
    new_client,
    outbox,
    sign_in,
    statuses_of,
)
from tests.support.hub import HubEnv

COOKIE = "tollhouse_portal"


@pytest.mark.parametrize("token", [None, "", "not-the-token"])
def test_withdraw_without_the_csrf_token_is_403(hub: HubEnv, token: str | None) -> None:
    consumer = consumer_with(hub, ConsentStatus.ACTIVE)
    client = new_client(hub)
    sign_in(hub, client, consumer.mobile)
    consent_id = statuses_of(hub, consumer.subject_id, ConsentStatus.ACTIVE)[0]
    data = {} if token is None else {"csrf_token": token}
    response = client.post(f"/portal/consents/{consent_id}/withdraw", data=data)
    assert response.status_code == 403
    assert consent_id in statuses_of(hub, consumer.subject_id, ConsentStatus.ACTIVE)


def test_sign_in_form_needs_the_csrf_token(hub: HubEnv) -> None:
    client = new_client(hub)
    client.get("/portal/sign-in")
    response = client.post("/portal/sign-in", data={"identifier": "+8613800000000"})
    assert response.status_code == 403


def test_another_consumers_consent_is_404(hub: HubEnv) -> None:
    owner = consumer_with(hub, ConsentStatus.ACTIVE, skip=1)
    other = consumer_with(hub, ConsentStatus.ACTIVE, skip=2, other_than=owner)
    consent_id = statuses_of(hub, owner.subject_id, ConsentStatus.ACTIVE)[0]
    client = new_client(hub)
    token = sign_in(hub, client, other.mobile)
    for action in ("withdraw", "pause"):
        response = client.post(
            f"/portal/consents/{consent_id}/{action}", data={"csrf_token": token}
        )
        assert response.status_code == 404
    missing = client.post("/portal/consents/cns_nope/withdraw", data={"csrf_token": token})
    assert missing.status_code == 404
    assert consent_id in statuses_of(hub, owner.subject_id, ConsentStatus.ACTIVE)


def test_another_consumers_request_is_404(hub: HubEnv) -> None:
    owner = consumer_with(hub, ConsentStatus.REQUESTED)
    other = consumer_with(hub, ConsentStatus.ACTIVE, skip=3, other_than=owner)
    request_id = statuses_of(hub, owner.subject_id, ConsentStatus.REQUESTED)[0]
    client = new_client(hub)
    token = sign_in(hub, client, other.mobile)
    for action in ("grant", "deny"):
        response = client.post(
            f"/portal/requests/{request_id}/{action}",
            data={"csrf_token": token, "categories": ["vehicle"]},
        )
        assert response.status_code == 404
    assert request_id in statuses_of(hub, owner.subject_id, ConsentStatus.REQUESTED)


def test_code_brute_force_locks_the_code(hub: HubEnv) -> None:
    consumer = consumer_with(hub, ConsentStatus.ACTIVE, skip=4)
    client = new_client(hub)
    token = ask_code(client, consumer.mobile)
    right = last_code(hub, consumer.mobile)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    answers = []
    for _ in range(5):
        response = client.post("/portal/sign-in/code", data={"csrf_token": token, "code": wrong})
        answers.append((response.status_code, "过多" in response.text))
    assert answers == [(400, False)] * 4 + [(400, True)]
    # Even the right code is refused now.
    response = client.post("/portal/sign-in/code", data={"csrf_token": token, "code": right})
    assert response.status_code == 400 and "过多" in response.text
    assert client.get("/portal/home").status_code == 303


def test_codes_per_identifier_are_rate_limited(hub: HubEnv) -> None:
    consumer = consumer_with(hub, ConsentStatus.ACTIVE, skip=7)
    limit = hub.client.app.state.portal.settings.codes_per_identifier  # type: ignore[attr-defined]
    statuses = []
    for _ in range(limit + 1):
        client = new_client(hub)
        page = client.get("/portal/sign-in")
        response = client.post(
            "/portal/sign-in",
            data={"csrf_token": csrf_of(page.text), "identifier": consumer.mobile},
        )
        statuses.append(response.status_code)
    assert statuses == [303] * limit + [429]


def test_codes_per_ip_are_rate_limited(hub: HubEnv) -> None:
    limit = hub.client.app.state.portal.settings.codes_per_ip  # type: ignore[attr-defined]
    statuses = []
    for n in range(limit + 1):
        client = new_client(hub, ip="203.0.113.9")
        page = client.get("/portal/sign-in")
        response = client.post(
            "/portal/sign-in",
            data={"csrf_token": csrf_of(page.text), "identifier": f"+861390000{n:04d}"},
        )
        statuses.append(response.status_code)
    assert statuses == [303] * limit + [429]


def test_unknown_mobile_gets_the_same_answer_and_no_message(hub: HubEnv) -> None:
    unknown = "+8613000000001"
    known = consumer_with(hub, ConsentStatus.ACTIVE, skip=8)
    before = set(outbox(hub).glob("*.json"))
    pages = []
    for mobile in (unknown, known.mobile):
        client = new_client(hub)
        ask_code(client, mobile)
        page = client.get("/portal/sign-in/code")
        pages.append((page.status_code, page.text.replace(csrf_of(page.text), "")))
    assert pages[0] == pages[1]
    sent = set(outbox(hub).glob("*.json")) - before
    assert len(sent) == 1  # only to the known consumer


def test_session_id_is_rotated_at_sign_in(hub: HubEnv) -> None:
    consumer = consumer_with(hub, ConsentStatus.ACTIVE, skip=9)
    client = new_client(hub)
    token = ask_code(client, consumer.mobile)
    anonymous = client.cookies[COOKIE]
    response = client.post(
        "/portal/sign-in/code",
        data={"csrf_token": token, "code": last_code(hub, consumer.mobile)},
    )
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # the test issuer is http
    signed_in = client.cookies[COOKIE]
    assert signed_in != anonymous
    # The old (possibly planted) session id is dead: it signs nobody in.
    attacker = new_client(hub)
    attacker.cookies.set(COOKIE, anonymous)
    assert attacker.get("/portal/home").status_code == 303
    # A made-up session id is ignored too.
    forged = new_client(hub)
    forged.cookies.set(COOKIE, "chosen-by-attacker")
    assert forged.get("/portal/home").status_code == 303
    assert client.get("/portal/home").status_code == 200
    # The signed-in page carries a different CSRF token from the anonymous one.
    assert csrf_of(client.get("/portal/home").text) != token


def test_session_expires(hub: HubEnv) -> None:
    consumer = consumer_with(hub, ConsentStatus.ACTIVE, skip=10)
    client = new_client(hub)
    sign_in(hub, client, consumer.mobile)
    with hub.session() as session, session.begin():
        session.execute(
            update(PortalSession)
            .where(PortalSession.subject_id == consumer.subject_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    response = client.get("/portal/home")
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/sign-in"


def test_sign_out_ends_the_session(hub: HubEnv) -> None:
    consumer = consumer_with(hub, ConsentStatus.ACTIVE, skip=11)
    client = new_client(hub)
    token = sign_in(hub, client, consumer.mobile)
    old = client.cookies[COOKIE]
    response = client.post("/portal/sign-out", data={"csrf_token": token})
    assert response.status_code == 303
    assert client.cookies[COOKIE] != old
    assert client.get("/portal/home").status_code == 303
    with hub.session() as session:
        assert session.scalar(select(Consent.id).limit(1)) is not None
