"""The regulator dashboard through the test client: sign-in (client id and secret, audit:read
only, rate-limited failures, all logged), session cookie, CSRF, pages, sign-out, expiry."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from hub.registry.partners import live_secrets
from hub.regulator.sessions import RegulatorSession
from tests.portal.helpers import demo_consumers
from tests.regulator.helpers import (
    COOKIE,
    LENDER,
    OPERATOR,
    REGULATOR,
    csrf_of,
    new_client,
    pull,
    sign_in,
)
from tests.support.hub import HubEnv

PAGES = ("/overview", "/events", "/lookup", "/withdrawals", "/verify")


def _attempt(env: HubEnv, client: TestClient, client_id: str, secret: str) -> int:
    page = client.get("/regulator/sign-in")
    response = client.post(
        "/regulator/sign-in",
        data={"csrf_token": csrf_of(page.text), "client_id": client_id, "client_secret": secret},
        follow_redirects=False,
    )
    return response.status_code


def _sign_in_events(env: HubEnv, outcome: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = env.client.get(
        "/v1/audit/events",
        params={"kind": "regulator.sign_in", "outcome": outcome, "limit": 1000},
        headers=env.auth(REGULATOR),
    ).json()["items"]
    return items


def test_sign_in_and_every_page(hub: HubEnv) -> None:
    pull(hub)
    client = new_client(hub)
    sign_in(hub, client)
    cookie = next(c for c in client.cookies.jar if c.name == COOKIE)
    assert cookie.has_nonstandard_attr("HttpOnly")
    raw = client.get("/regulator/overview")
    assert "default-src 'self'" in raw.headers["content-security-policy"]
    assert raw.headers["cache-control"] == "no-store"
    for page in PAGES:
        response = client.get("/regulator" + page)
        assert response.status_code == 200, (page, response.text)
        assert response.headers["content-type"].startswith("text/html")
        assert "<script" not in response.text and " style=" not in response.text
    overview = client.get("/regulator/overview").text
    assert "<svg" in overview and "<rect" in overview
    assert hub.partner(REGULATOR)["partner_id"] in str(_sign_in_events(hub, "allowed"))


def test_set_cookie_flags(hub: HubEnv) -> None:
    client = new_client(hub)
    page = client.get("/regulator/sign-in")
    partner = hub.partner(REGULATOR)
    response = client.post(
        "/regulator/sign-in",
        data={
            "csrf_token": csrf_of(page.text),
            "client_id": partner["client_id"],
            "client_secret": partner["client_secret"],
        },
        follow_redirects=False,
    )
    header = response.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=strict" in header and "path=/" in header


def test_the_operator_may_sign_in_a_lender_may_not(hub: HubEnv) -> None:
    sign_in(hub, new_client(hub), OPERATOR)
    client = new_client(hub)
    lender = hub.partner(LENDER)
    assert _attempt(hub, client, lender["client_id"], lender["client_secret"]) == 403
    assert client.get("/regulator/overview", follow_redirects=False).status_code == 303
    reasons = [e.get("reasons") for e in _sign_in_events(hub, "denied")]
    assert ["scope.audit_read_missing"] in reasons


def test_wrong_secret_is_refused_and_logged(hub: HubEnv) -> None:
    client = new_client(hub)
    regulator = hub.partner(REGULATOR)
    assert _attempt(hub, client, regulator["client_id"], "wrong") == 401
    assert _attempt(hub, client, "no-such-client", "wrong") == 401
    denied = _sign_in_events(hub, "denied")
    assert ["client.secret_mismatch"] in [e.get("reasons") for e in denied]
    assert ["client.unknown"] in [e.get("reasons") for e in denied]
    assert "wrong" not in str(denied)  # the secret tried is never logged


def test_failures_are_rate_limited(fresh_hub: HubEnv) -> None:
    env = fresh_hub
    client = new_client(env)
    regulator = env.partner(REGULATOR)
    limit = env.client.app.state.regulator.settings.failures_per_partner  # type: ignore[attr-defined]
    statuses = [_attempt(env, client, regulator["client_id"], "wrong") for _ in range(limit + 1)]
    assert statuses == [401] * limit + [429]
    # Even the right secret waits for the window to pass.
    assert _attempt(env, client, regulator["client_id"], regulator["client_secret"]) == 429
    # Another partner is not affected.
    sign_in(env, new_client(env), OPERATOR)


def test_forms_need_the_csrf_token(hub: HubEnv) -> None:
    client = new_client(hub)
    client.get("/regulator/sign-in")
    regulator = hub.partner(REGULATOR)
    response = client.post(
        "/regulator/sign-in",
        data={"client_id": regulator["client_id"], "client_secret": regulator["client_secret"]},
    )
    assert response.status_code == 403
    sign_in(hub, client)
    for path, data in (
        ("/regulator/lookup", {"kind": "vin", "value": "LSVAU2180N2183294"}),
        ("/regulator/verify", {}),
        ("/regulator/sign-out", {}),
        ("/regulator/language", {"locale": "en"}),
    ):
        refused = client.post(path, data={**data, "csrf_token": "forged"})
        assert refused.status_code == 403, path
    assert client.get("/regulator/overview").status_code == 200  # still signed in


def test_pages_need_a_session(hub: HubEnv) -> None:
    client = new_client(hub)
    for page in PAGES:
        response = client.get("/regulator" + page, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/regulator/sign-in"
    # A bearer token is no way in.
    response = client.get(
        "/regulator/overview", headers=hub.auth(REGULATOR), follow_redirects=False
    )
    assert response.status_code == 303


def test_forged_and_expired_cookies_are_ignored(hub: HubEnv) -> None:
    dashboard = hub.client.app.state.regulator  # type: ignore[attr-defined]
    regulator_id = hub.partner(REGULATOR)["partner_id"]
    client = new_client(hub)
    expired = RegulatorSession(regulator_id, "x" * 43, None, int(time.time()) - 1)
    client.cookies.set(COOKIE, dashboard.sessions.encode(expired))
    assert client.get("/regulator/overview", follow_redirects=False).status_code == 303
    with hub.session() as session:
        secret_id = live_secrets(session, partner_id=regulator_id)[-1].id
    live = RegulatorSession(
        regulator_id,
        "x" * 43,
        None,
        int(time.time()) + 600,
        session_id="sid-forged-test",
        secret_id=secret_id,
    )
    payload, _mac = dashboard.sessions.encode(live).split(".")
    client.cookies.set(COOKIE, payload + ".AAAA")
    assert client.get("/regulator/overview", follow_redirects=False).status_code == 303
    client.cookies.set(COOKIE, "garbage")
    assert client.get("/regulator/overview", follow_redirects=False).status_code == 303
    client.cookies.set(COOKIE, dashboard.sessions.encode(live))
    assert client.get("/regulator/overview", follow_redirects=False).status_code == 200


def test_sign_out(hub: HubEnv) -> None:
    client = new_client(hub)
    csrf = sign_in(hub, client)
    response = client.post("/regulator/sign-out", data={"csrf_token": csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/regulator/sign-in?notice=signed-out"
    assert client.get("/regulator/overview", follow_redirects=False).status_code == 303


def test_language(hub: HubEnv) -> None:
    client = new_client(hub)
    csrf = sign_in(hub, client)
    assert "概览" in client.get("/regulator/overview").text  # Chinese by default
    client.post(
        "/regulator/language",
        data={"csrf_token": csrf, "locale": "en", "next": "/regulator/events"},
    )
    page = client.get("/regulator/overview").text
    assert "Overview" in page and 'lang="en"' in page


def test_event_search(hub: HubEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub.client.app.state.regulator.settings, "page_size", 3)  # type: ignore[attr-defined]
    pull(hub)
    client = new_client(hub)
    sign_in(hub, client)
    lender = hub.partner(LENDER)["partner_id"]
    page = client.get("/regulator/events", params={"partner_id": lender, "kind": "release"})
    assert page.status_code == 200
    assert page.text.count('<tr class="outcome-') >= 1
    assert "release.denied" in page.text  # the kind selector
    # Paging: the next page starts after the last index shown.
    first = client.get("/regulator/events")
    assert 'id="next-page"' in first.text
    later = client.get("/regulator/events", params={"after": "1"})
    assert later.status_code == 200 and '<td class="num">2</td>' in later.text


@pytest.mark.parametrize(
    "params",
    [
        {"subject": "not-a-pseudonym"},
        {"since": "yesterday"},
        {"since": "2026-11-20", "until": "2026-11-10"},
        {"after": "-5"},
    ],
)
def test_bad_search_input_is_an_html_422(hub: HubEnv, params: dict[str, str]) -> None:
    client = new_client(hub)
    sign_in(hub, client)
    response = client.get("/regulator/events", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert 'id="search-error"' in response.text


def test_overview_bad_range(hub: HubEnv) -> None:
    client = new_client(hub)
    sign_in(hub, client)
    for params in ({"since": "2020-01-01", "until": "2026-01-01"}, {"until": "2026-13-01"}):
        response = client.get("/regulator/overview", params=params)
        assert response.status_code == 422 and response.headers["content-type"].startswith(
            "text/html"
        )


def test_lookup_page(hub: HubEnv) -> None:
    client = new_client(hub)
    csrf = sign_in(hub, client)
    consumer = demo_consumers(hub)[0]
    found = client.post(
        "/regulator/lookup", data={"csrf_token": csrf, "kind": "mobile", "value": consumer.mobile}
    )
    assert found.status_code == 200
    assert hub.runtime.protector.pseudonym("audit", consumer.subject_id) in found.text
    placeholder = client.post(
        "/regulator/lookup", data={"csrf_token": csrf, "kind": "id_number", "value": "0" * 18}
    )
    assert placeholder.status_code == 422 and 'id="lookup-error"' in placeholder.text
    missing = client.post(
        "/regulator/lookup", data={"csrf_token": csrf, "kind": "vin", "value": "LSVAU2180N2183294"}
    )
    assert missing.status_code in (404, 422)
    bad_kind = client.post(
        "/regulator/lookup", data={"csrf_token": csrf, "kind": "plate", "value": "粤B12345"}
    )
    assert bad_kind.status_code == 422
    by_email = client.post(
        "/regulator/lookup", data={"csrf_token": csrf, "kind": "email", "value": consumer.email}
    )
    assert by_email.status_code == 200, by_email.text
    assert hub.runtime.protector.pseudonym("audit", consumer.subject_id) in by_email.text
    test_address = client.post(
        "/regulator/lookup", data={"csrf_token": csrf, "kind": "email", "value": "test@test.com"}
    )
    assert test_address.status_code == 422 and 'id="lookup-error"' in test_address.text
