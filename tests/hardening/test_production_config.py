"""Production configuration: security headers (CSP everywhere, HSTS when the public URL is https),
no CORS, no debug routes, /docs still usable; JSON logs with request ids; Prometheus metrics on
loopback only; /readyz failing when the database is unreachable."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re

import anyio
import anyio.to_thread
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from hub.app import create_app
from tests.support.hub import TEST_ISSUER, HubEnv

ALWAYS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


@pytest.mark.parametrize(
    "path", ["/healthz", "/v1/agreements", "/v1/no-such-route", "/.well-known/jwks.json"]
)
def test_every_response_carries_the_security_headers(hub: HubEnv, path: str) -> None:
    response = hub.client.get(path)
    for name, value in ALWAYS.items():
        assert response.headers[name] == value
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-request-id"].startswith("req_")
    # served over plain http (tests, or behind a TLS proxy with an http issuer): no HSTS
    assert "strict-transport-security" not in response.headers


def _directives(csp: str) -> dict[str, list[str]]:
    parts = (d.split() for d in csp.split(";") if d.strip())
    return {p[0]: p[1:] for p in parts}


@pytest.mark.parametrize("path", ["/docs", "/docs/oauth2-redirect", "/redoc"])
def test_docs_are_served_locally_under_a_hash_based_csp(hub: HubEnv, path: str) -> None:
    page = hub.client.get(path)
    assert page.status_code == 200
    csp = _directives(page.headers["content-security-policy"])
    assert csp["default-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert not any(s.startswith("http") for values in csp.values() for s in values), csp
    # every inline script is admitted by its hash, and nothing else is inline
    inline = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    hashes = [s for s in csp["script-src"] if s.startswith("'sha256-")]
    expected = [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in inline
    ]
    assert hashes == expected
    # every asset the page loads is served by the hub itself
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert all(a.startswith("/docs/static/") for a in assets), assets
    assert assets or path == "/docs/oauth2-redirect"
    for asset in assets:
        assert hub.client.get(asset).status_code == 200


def test_docs_assets_and_openapi(hub: HubEnv) -> None:
    assert "swagger-ui" in hub.client.get("/docs").text
    assert hub.client.get("/openapi.json").status_code == 200
    missing = hub.client.get("/docs/static/no-such-asset.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_hsts_is_sent_when_the_issuer_is_https(hub: HubEnv) -> None:
    settings = hub.settings.model_copy(update={"issuer": "https://hub.example"})
    with TestClient(create_app(settings, hub.runtime), base_url="https://hub.example") as client:
        response = client.get("/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=63072000")


def test_no_cors_is_granted_to_any_origin(hub: HubEnv) -> None:
    origin = {"Origin": "https://evil.example"}
    preflight = hub.client.options(
        "/v1/agreements",
        headers=origin
        | {
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    simple = hub.client.get("/v1/agreements", headers=origin | hub.auth("lender-jinqiao"))
    for response in (preflight, simple):
        assert "access-control-allow-origin" not in response.headers
        assert "access-control-allow-credentials" not in response.headers
    assert preflight.status_code in (404, 405)


@pytest.mark.parametrize(
    "path", ["/debug", "/admin", "/_debug", "/console", "/.env", "/var/demo-credentials.json"]
)
def test_no_debug_routes(hub: HubEnv, path: str) -> None:
    assert hub.client.get(path).status_code == 404
    assert hub.client.app.debug is False  # type: ignore[attr-defined]


def test_a_server_error_reveals_nothing(hub: HubEnv) -> None:
    app = create_app(hub.settings, hub.runtime)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret detail LSVAU2180N2183294 at /srv/hub/keys")

    with TestClient(app, base_url=TEST_ISSUER, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "LSVAU" not in response.text and "Traceback" not in response.text
    assert "/srv/hub" not in response.text


def test_logs_are_json_lines_with_the_request_id(
    hub: HubEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    agreement = hub.partner("lender-jinqiao")["agreements"][0]["id"]
    response = hub.client.get(
        f"/v1/agreements/{agreement}/records",
        params={"limit": 2},
        headers=hub.auth("lender-jinqiao"),
    )
    assert response.status_code == 200
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    mine = [
        line
        for line in lines
        if line.get("event") == "request"
        and line.get("request_id") == response.headers["x-request-id"]
    ]
    assert len(mine) == 1, lines
    (line,) = mine
    assert line["route"] == "/v1/agreements/{agreement_id}/records"  # the template, not the id
    assert line["status"] == 200 and line["level"] == "info" and "timestamp" in line
    assert agreement not in json.dumps(line)


def test_metrics_on_loopback_only(hub: HubEnv) -> None:
    agreement = hub.partner("lender-jinqiao")["agreements"][0]["id"]
    hub.client.get(f"/v1/agreements/{agreement}/records", headers=hub.auth("lender-jinqiao"))
    app = hub.client.app
    with TestClient(app, base_url=TEST_ISSUER, client=("127.0.0.1", 40000)) as local:  # type: ignore[arg-type]
        response = local.get("/metrics")
        proxied = local.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 200, response.text
    text = response.text
    assert (
        'tollhouse_http_requests_total{method="GET",route="/v1/agreements/{agreement_id}/records",'
        'status="200"}' in text
    )
    assert "tollhouse_http_request_duration_seconds_bucket" in text
    assert 'tollhouse_audit_events_total{kind="release"' in text
    assert "tollhouse_webhook_outbox_backlog" in text
    assert proxied.status_code == 404
    assert hub.client.get("/metrics").status_code == 404  # not loopback
    assert "/metrics" not in hub.client.get("/openapi.json").json()["paths"]


def test_readyz_fails_when_the_database_is_unreachable(hub: HubEnv) -> None:
    assert hub.client.get("/readyz").status_code == 200
    broken = dataclasses.replace(
        hub.runtime, engine=create_engine("sqlite:////nonexistent-dir/tollhouse.db")
    )
    with TestClient(create_app(hub.settings, broken), base_url=TEST_ISSUER) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "nonexistent" not in response.text


class _NotReady:
    revision = "none"

    def ready(self) -> bool:
        return False


def test_readyz_fails_when_the_policy_engine_is_not_ready(hub: HubEnv) -> None:
    broken = dataclasses.replace(hub.runtime, policy=_NotReady())  # type: ignore[arg-type]
    with TestClient(create_app(hub.settings, broken), base_url=TEST_ISSUER) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["type"].endswith("/unavailable")


def test_a_database_failure_during_a_request_is_a_503_to_retry(hub: HubEnv) -> None:
    broken_engine = create_engine("sqlite:////nonexistent-dir/tollhouse.db")
    broken = dataclasses.replace(hub.runtime, session_factory=sessionmaker(broken_engine))
    with TestClient(
        create_app(hub.settings, broken), base_url=TEST_ISSUER, raise_server_exceptions=False
    ) as client:
        response = client.get("/v1/agreements", headers=hub.auth("lender-jinqiao"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert "nonexistent" not in response.text


def test_the_database_pool_covers_every_handler_thread(hub: HubEnv) -> None:
    async def thread_limit() -> float:
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    pool = hub.runtime.engine.pool
    capacity = pool.size() + max(pool._max_overflow, 0)  # type: ignore[attr-defined]
    assert capacity >= anyio.run(thread_limit)
