"""Signing in to the regulator dashboard through the test client."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.support.hub import HubEnv

REGULATOR = "regulator-fsr"
OPERATOR = "operator"
LENDER = "lender-jinqiao"
DATASET = "dealer-huadong.loan-applications"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
COOKIE = "tollhouse_regulator"


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(env: HubEnv, client: TestClient, ref: str = REGULATOR) -> str:
    """Sign ``ref`` in on ``client`` (its own cookie jar); returns the session's CSRF token."""
    page = client.get("/regulator/sign-in")
    assert page.status_code == 200, page.text
    partner = env.partner(ref)
    response = client.post(
        "/regulator/sign-in",
        data={
            "csrf_token": csrf_of(page.text),
            "client_id": partner["client_id"],
            "client_secret": partner["client_secret"],
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/regulator/overview"
    overview = client.get("/regulator/overview")
    assert overview.status_code == 200, overview.text
    return csrf_of(overview.text)


def new_client(env: HubEnv) -> TestClient:
    """A second client on the same app with a cookie jar of its own."""
    return TestClient(env.client.app, base_url=str(env.client.base_url))


def pull(env: HubEnv, ref: str = LENDER, limit: int = 20) -> str:
    response = env.client.get(
        f"/v1/agreements/{env.agreement(ref, DATASET)}/records",
        params={"limit": limit},
        headers=env.auth(ref),
    )
    assert response.status_code == 200, response.text
    return response.headers["x-request-id"]
