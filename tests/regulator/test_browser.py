"""The regulator dashboard in real headless Chromium (Debian's ``chromium``; browsers are never
downloaded), against a real uvicorn on loopback: sign in, see the charts, search the events,
look a subject up, verify the log, sign out. Screenshots go to ``tests/artifacts/regulator/``
(git-ignored)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update

from hub.audit.models import AuditEvent, SignedTreeHead, TreeBlock
from tests.portal.helpers import DemoConsumer, demo_consumers
from tests.regulator.helpers import DATASET, LENDER, REGULATOR, pull
from tests.support.browser import BROWSER_MARKS, screenshot
from tests.support.hub import HubEnv

pytestmark = BROWSER_MARKS


def _shot(page: object, name: str) -> None:
    screenshot(page, "regulator", name)


def _traffic(hub: HubEnv) -> None:
    """Some accesses to chart: pulls by two lenders, and a refused one."""
    pull(hub, LENDER, limit=60)
    pull(hub, LENDER, limit=20)
    pull(hub, "lender-pearl", limit=40)
    other = hub.agreement("lender-pearl", DATASET)
    refused = hub.client.get(f"/v1/agreements/{other}/records", headers=hub.auth(LENDER))
    assert refused.status_code == 404


def _released_consumer(hub: HubEnv) -> DemoConsumer:
    """A demo consumer whose records the lenders' pulls decided on (their events exist)."""
    protector = hub.runtime.protector
    for consumer in demo_consumers(hub):
        events = hub.client.get(
            "/v1/audit/events",
            params={"subject": protector.pseudonym("audit", consumer.subject_id), "limit": 1},
            headers=hub.auth(REGULATOR),
        ).json()["items"]
        if events:
            return consumer
    raise AssertionError("no pulled consumer")


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_regulator_journey(hub: HubEnv, base_url: str, browser: object, size: str) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    expect.set_options(timeout=30_000)
    _traffic(hub)
    viewport = (
        {"width": 1280, "height": 900} if size == "desktop" else {"width": 390, "height": 844}
    )
    context = browser.new_context(viewport=viewport, locale="zh-CN")  # type: ignore[arg-type]
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    # Refused sign-ins and placeholders answer 401/422 (logged as "failed to load"); anything
    # else on the console (a CSP violation, a script error) is a bug.
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    credentials = hub.partner(REGULATOR)
    try:
        # Sign in (Chinese by default), first with a wrong secret.
        page.goto(f"{base_url}/regulator/")
        expect(page.get_by_role("heading", name="登录")).to_be_visible()
        page.locator("#client_id").fill(credentials["client_id"])
        page.locator("#client_secret").fill("not-the-secret")
        page.locator("#sign-in").click()
        expect(page.locator("#sign-in-error")).to_be_visible()
        _shot(page, f"{size}-1-sign-in-refused")
        page.locator("#client_id").fill(credentials["client_id"])
        page.locator("#client_secret").fill(credentials["client_secret"])
        page.locator("#sign-in").click()

        # The overview: figures and four server-rendered SVG charts.
        expect(page.get_by_role("heading", name="概览")).to_be_visible()
        for chart in ("per-day", "per-partner", "per-purpose", "denials"):
            expect(page.locator(f"#chart-{chart} svg")).to_be_visible()
        assert page.locator("#chart-per-partner rect").count() >= 2
        assert page.locator("#chart-denials rect").count() >= 1
        expect(page.locator("#chart-per-partner")).to_contain_text("Jinqiao")
        _shot(page, f"{size}-2-overview-zh")

        # English, one click away.
        page.get_by_role("button", name="English").click()
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        _shot(page, f"{size}-3-overview-en")

        # Search the events: the lender's refused request.
        page.get_by_role("link", name="Events").click()
        lender_id = hub.partner(LENDER)["partner_id"]
        page.locator("#f-partner").select_option(lender_id)
        page.locator("#f-kind").select_option("release.denied")
        page.locator("#search").click()
        rows = page.locator("#event-table tbody tr.outcome-denied")
        expect(rows.first).to_be_visible()
        expect(rows.first).to_contain_text("agreement.not_recipient")
        rows.first.locator("summary").click()
        expect(rows.first.locator("pre")).to_contain_text('"kind": "release.denied"')
        _shot(page, f"{size}-4-events")

        # Look a subject up by mobile number, then follow the pseudonym to their events.
        consumer = _released_consumer(hub)
        page.get_by_role("link", name="Subject lookup").click()
        page.locator("#kind").select_option("mobile")
        page.locator("#value").fill("13800000000")
        page.locator("#look-up").click()
        expect(page.locator("#lookup-error")).to_be_visible()  # a placeholder
        page.locator("#kind").select_option("mobile")
        page.locator("#value").fill(consumer.mobile)
        page.locator("#look-up").click()
        pseudonym = hub.runtime.protector.pseudonym("audit", consumer.subject_id)
        expect(page.locator("#pseudonym")).to_have_text(pseudonym)
        _shot(page, f"{size}-5-lookup")
        page.locator("#subject-events").click()
        expect(page.locator("#f-subject")).to_have_value(pseudonym)
        expect(page.locator("#event-table tbody tr").first).to_be_visible()
        _shot(page, f"{size}-6-subject-events")

        # Withdrawals not yet acknowledged.
        page.get_by_role("link", name="Withdrawals").click()
        expect(page.locator("#withdrawal-table")).to_be_visible()
        _shot(page, f"{size}-7-withdrawals")

        # Verify the log: the head kept at sign-in against the current one.
        pull(hub, LENDER, limit=10)
        page.get_by_role("link", name="Verify the log").click()
        expect(page.locator("#stored-head")).to_be_visible()
        page.locator("#verify").click()
        expect(page.locator("#verdict")).to_have_class("card verdict ok")
        expect(page.locator("#current-head")).to_be_visible()
        _shot(page, f"{size}-8-verify")

        # Sign out: the pages are closed again.
        page.locator("#sign-out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.goto(f"{base_url}/regulator/overview")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert not errors, errors  # no CSP violations or script errors
    finally:
        context.close()


def test_signing_out_ends_a_copied_cookie(hub: HubEnv, base_url: str, browser: object) -> None:
    """Sign in, copy the session cookie into a second browser, sign out in the first: the copy,
    which opened the dashboard a moment before, now gets the sign-in page."""
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    name = hub.client.app.state.regulator.cookie_name  # type: ignore[attr-defined]
    first = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    second = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    credentials = hub.partner(REGULATOR)
    try:
        page = first.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{base_url}/regulator/sign-in")
        page.get_by_role("button", name="English").click()
        page.locator("#client_id").fill(credentials["client_id"])
        page.locator("#client_secret").fill(credentials["client_secret"])
        page.locator("#sign-in").click()
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        cookies = [c for c in first.cookies() if c.get("name") == name]
        assert len(cookies) == 1, first.cookies()
        second.add_cookies(cookies)  # type: ignore[arg-type]

        stolen = second.new_page()
        stolen.set_default_timeout(30_000)
        stolen.goto(f"{base_url}/regulator/events")
        expect(stolen.get_by_role("heading", name="Events")).to_be_visible()  # the copy works

        page.locator("#sign-out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

        stolen.goto(f"{base_url}/regulator/overview")
        # No session at all now, so the sign-in page in the default language (Chinese).
        expect(stolen.get_by_role("heading", name="登录")).to_be_visible()
        expect(stolen.locator("#client_secret")).to_be_visible()
        assert stolen.url == f"{base_url}/regulator/sign-in"
        assert not [
            c
            for c in second.cookies()
            if c.get("name") == name and c.get("value") == cookies[0].get("value")
        ]
        _shot(stolen, "desktop-8b-copied-cookie-signed-out")
    finally:
        first.close()
        second.close()


def test_a_rewritten_log_is_shown_as_such(hub: HubEnv, base_url: str, browser: object) -> None:
    """Runs last in this module (it damages the module's hub): the operator rewrites an old
    event and re-signs the log from scratch; the verify page says so, plainly."""
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(30_000)
    credentials = hub.partner(REGULATOR)
    # events of its own, whatever else ran before on this worker: the head seen at sign-in
    # must cover the event rewritten below
    for _ in range(4):
        pull(hub, LENDER, limit=5)
    try:
        page.goto(f"{base_url}/regulator/sign-in")
        page.get_by_role("button", name="English").click()
        page.locator("#client_id").fill(credentials["client_id"])
        page.locator("#client_secret").fill(credentials["client_secret"])
        page.locator("#sign-in").click()
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        with hub.session() as session:
            digest = session.scalar(select(AuditEvent.leaf_hash).where(AuditEvent.index == 3))
            assert digest is not None
            session.execute(
                update(AuditEvent)
                .where(AuditEvent.index == 3)
                .values(leaf_hash=bytes(b ^ 0xFF for b in digest))
            )
            session.execute(delete(SignedTreeHead))
            session.execute(delete(TreeBlock))
            session.commit()
        pull(hub, LENDER, limit=5)
        page.get_by_role("link", name="Verify the log").click()
        page.locator("#verify").click()
        expect(page.locator("#verdict")).to_have_class("card verdict bad")
        expect(page.locator("#verdict")).to_contain_text("does NOT check out")
        _shot(page, "desktop-9-verify-rewritten")
    finally:
        context.close()
