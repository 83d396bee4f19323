"""A role consent's recipients line on the consents page in real headless Chromium (Debian's
``chromium``), in Chinese and English, at desktop and phone sizes. Screenshots go to
``tests/artifacts/portal/`` (git-ignored)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.portal.helpers import LENDER, consumer_with_record, fetch_record_of, last_code
from tests.portal.test_role_consent_pages import every_lender
from tests.support.browser import BROWSER_MARKS, screenshot
from tests.support.hub import HubEnv

pytestmark = BROWSER_MARKS


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_recipients_line_in_chromium(
    hub: HubEnv, base_url: str, browser: Any, size: str
) -> None:
    from playwright.sync_api import expect

    # CI machines are shared: wait for pages as a patient person would, not 5 s.
    expect.set_options(timeout=30_000)
    consumer = consumer_with_record(hub, skip={"desktop": 5, "phone": 6}[size])
    consent_id = every_lender(hub, consumer.subject_id)
    fetch_record_of(hub, consumer.subject_id)
    lender = hub.partner(LENDER)["name"]
    viewport = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
    context = browser.new_context(viewport=viewport[size], locale="zh-CN")
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{base_url}/portal/")
        page.get_by_label("手机号码或电子邮箱").fill(consumer.mobile)
        page.get_by_role("button", name="发送验证码").click()
        page.get_by_label("6 位验证码").fill(last_code(hub, consumer.mobile))
        page.get_by_role("button", name="登录").click()
        consent = page.locator(f"#consent-{consent_id}")
        expect(consent.locator(".received")).to_have_text(
            f"已根据此授权获取您数据的机构：{lender}。"
        )
        expect(page.get_by_role("heading", name="所有贷款机构")).to_be_visible()
        screenshot(page, "portal", f"{size}-role-consent-zh")
        page.get_by_role("button", name="English").click()
        expect(consent.locator(".received")).to_have_text(f"Received your data under it: {lender}.")
        screenshot(page, "portal", f"{size}-role-consent-en")
    finally:
        context.close()
