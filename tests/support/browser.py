"""What the browser tests share: Debian's Chromium driven by Playwright (browsers are never
downloaded) and screenshots that leave the page as they found it. The app they browse is served
by :func:`tests.support.served.served_in_thread`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

#: ``pytestmark`` of every browser test module.
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian chromium is not installed (make system-deps)"
    ),
]


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser (Playwright's sync API)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Any, folder: str, name: str) -> None:
    """A full-page screenshot under ``tests/artifacts/<folder>/`` that leaves the page as it
    found it.

    Chromium takes a full-page screenshot by growing the viewport to the page's height and
    shrinking it back; a page that was scrolled then lands at another scroll position, set
    asynchronously after the screenshot returned. A click right after it could be aimed at the
    button where it was and dispatched where it is no more: nothing is submitted and the test
    waits in vain for the next page (this was the portal's intermittent phone-size "grant
    hang"). So: restore the scroll position and let two animation frames pass."""
    target = ARTIFACTS / folder
    target.mkdir(parents=True, exist_ok=True)
    scrolled = page.evaluate("[window.scrollX, window.scrollY]")
    page.screenshot(path=str(target / f"{name}.png"), full_page=True)
    page.evaluate(
        """([x, y]) => new Promise(done => {
            window.scrollTo(x, y);
            requestAnimationFrame(() => requestAnimationFrame(() => {
                window.scrollTo(x, y);
                done();
            }));
        })""",
        scrolled,
    )
