"""``/docs`` and ``/redoc`` in real headless Chromium (Debian's ``chromium``): the pages render
from the hub's own assets under their hash-based CSP, with no policy violation and no request
leaving the hub."""

from __future__ import annotations

import pytest

from tests.support.browser import BROWSER_MARKS, chromium

pytestmark = BROWSER_MARKS


@pytest.mark.parametrize(
    ("path", "rendered"),
    [("/docs", ".swagger-ui .opblock"), ("/redoc", "[role=search], .api-content")],
)
def test_the_docs_render_without_csp_violations(base_url: str, path: str, rendered: str) -> None:
    messages: list[str] = []
    requested: list[str] = []
    with chromium() as browser:
        page = browser.new_page()
        page.on("console", lambda m: messages.append(m.text))
        page.on("response", lambda r: requested.append(r.url))  # fetched, not blocked
        page.goto(base_url + path)
        page.wait_for_selector(rendered, timeout=20_000)
    # ReDoc's footer logo comes from its vendor's CDN: the policy blocks it (as it should).
    # Any other violation (a script or style the policy did not admit) breaks the page.
    violations = [m for m in messages if "Content Security Policy" in m and "img-src" not in m]
    assert not violations, violations
    foreign = [u for u in requested if not u.startswith((base_url, "data:", "blob:"))]
    assert not foreign, foreign
