"""The hardening that depends on the wire, against `tollhouse serve` on a loopback port: a
streamed oversize body is cut with 413, many concurrent connections get no 5xx, /metrics
answers a local scraper, and the server's own log is JSON lines that carry no token."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_loopback import Server
from tests.support.databases import TestDatabases

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, databases: TestDatabases) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("hardened") / "var", databases.new("hardened"))
    running.start()
    yield running
    running.stop()


def _lender(server: Server) -> tuple[str, str]:
    data_dir = Path(server.env["TOLLHOUSE_DATA_DIR"])
    partner = json.loads((data_dir / "demo-credentials.json").read_text())["partners"][
        "lender-jinqiao"
    ]
    response = httpx.post(
        server.url + "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(partner["client_id"], partner["client_secret"]),
    )
    return response.json()["access_token"], partner["agreements"][0]["id"]


def test_a_streamed_oversize_body_is_cut_with_413(server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(200):
            yield b" " * 65536  # 12.5 MB in all, no Content-Length

    response = httpx.post(
        server.url + "/v1/datasets/x/records",
        content=chunks(),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    # A declared length beyond the cap is refused before a byte of the body is read.
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/datasets/x/records HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 413")


@pytest.fixture(scope="module")
def under_load(server: Server) -> list[httpx.Response]:
    """64 requests over 64 concurrent connections to one worker on SQLite: mostly cheap reads
    (connection pressure), every eighth a pull through the gates (writes an audit event)."""
    token, agreement = _lender(server)

    def call(i: int) -> httpx.Response:
        path = f"/v1/agreements/{agreement}/records" if i % 8 == 0 else "/v1/agreements"
        with httpx.Client(timeout=120) as client:
            return client.get(
                server.url + path,
                params={"limit": 2} if i % 8 == 0 else {},
                headers={"Authorization": f"Bearer {token}"},
            )

    with ThreadPoolExecutor(max_workers=64) as pool:
        return list(pool.map(call, range(64)))


def test_many_concurrent_connections_get_no_500(under_load: list[httpx.Response]) -> None:
    statuses = [r.status_code for r in under_load]
    assert 500 not in statuses, statuses
    for response in under_load:
        if response.status_code == 503:  # overload: a problem to retry, never an opaque 500
            assert response.headers["retry-after"]
            assert response.json()["type"].endswith("/unavailable")
        else:
            assert response.status_code == 200, response.text


def test_metrics_answer_a_local_scraper(server: Server) -> None:
    response = httpx.get(server.url + "/metrics")
    assert response.status_code == 200
    assert "tollhouse_http_requests_total" in response.text
    proxied = httpx.get(server.url + "/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
    assert proxied.status_code == 404


def test_the_server_log_is_json_and_carries_no_token(server: Server) -> None:
    token, agreement = _lender(server)
    httpx.get(f"{server.url}/v1/agreements/{agreement}/records", params={"access_token": token})
    response = httpx.get(server.url + "/healthz")
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    text = server.log.read_text()
    assert token not in text
    assert token.split(".")[1] not in text
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(e.get("event") == "request" and e.get("request_id") for e in events)
