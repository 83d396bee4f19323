"""``/docs`` and ``/redoc`` in real headless Chromium (Debian's ``chromium``): the pages render
from the hub's own assets under their hash-based CSP, with no policy violation and no request
leaving the hub."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from tests.support.hub import HubEnv

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]


@pytest.fixture(scope="module")
def base_url(hub: HubEnv) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = uvicorn.Config(
        hub.client.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize(
    ("path", "rendered"),
    [("/docs", ".swagger-ui .opblock"), ("/redoc", "[role=search], .api-content")],
)
def test_the_docs_render_without_csp_violations(base_url: str, path: str, rendered: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        try:
            page = browser.new_page()
            messages: list[str] = []
            requested: list[str] = []
            page.on("console", lambda m: messages.append(m.text))
            page.on("response", lambda r: requested.append(r.url))  # fetched, not blocked
            page.goto(base_url + path)
            page.wait_for_selector(rendered, timeout=20_000)
        finally:
            browser.close()
    # ReDoc's footer logo comes from its vendor's CDN: the policy blocks it (as it should).
    # Any other violation (a script or style the policy did not admit) breaks the page.
    violations = [m for m in messages if "Content Security Policy" in m and "img-src" not in m]
    assert not violations, violations
    foreign = [u for u in requested if not u.startswith((base_url, "data:", "blob:"))]
    assert not foreign, foreign
