"""A consent's cap on fetches a day on the consents page, in real headless Chromium (Debian's
``chromium``), in Chinese and English: the lender pulled the consumer's record once today, so
the capped consent says "1 used today"; a pending request shows the cap the insurer asks for,
with a labelled field to grant fewer. Screenshots go to ``tests/artifacts/portal/``
(git-ignored), at desktop and phone sizes."""

from __future__ import annotations

import pytest

from tests.portal.helpers import (
    capped_consent,
    consumer_with_record,
    fetch_record_of,
    insurer_asks,
    last_code,
)
from tests.support.browser import BROWSER_MARKS, screenshot
from tests.support.hub import HubEnv

SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
#: A consumer of their own for each size.
SIZES_SKIP = {"desktop": 0, "phone": 1}

pytestmark = BROWSER_MARKS


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_cap_and_todays_fetches_in_both_languages(
    hub: HubEnv, base_url: str, browser: object, size: str
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    # CI machines are shared: wait for pages as a patient person would, not 5 s.
    expect.set_options(timeout=30_000)
    consumer = consumer_with_record(hub, skip=SIZES_SKIP[size])
    consent_id = capped_consent(hub, consumer.subject_id, 5)
    fetch_record_of(hub, consumer.subject_id)
    request_id = insurer_asks(hub, consumer.mobile, fetches_per_day=4)

    context = browser.new_context(viewport=SIZES[size], locale="zh-CN")  # type: ignore[arg-type]
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(f"{base_url}/portal/")
        page.get_by_label("手机号码或电子邮箱").fill(consumer.mobile)
        page.get_by_role("button", name="发送验证码").click()
        page.get_by_label("6 位验证码").fill(last_code(hub, consumer.mobile))
        page.get_by_role("button", name="登录").click()
        expect(page.get_by_role("heading", name="您的授权")).to_be_visible()

        consent = page.locator(f"#consent-{consent_id}")
        expect(consent.locator(".fetches")).to_have_text(
            "每天最多调取 5 次；今天（UTC）已调取 1 次。"
        )
        request = page.locator(f"#request-{request_id}")
        expect(request.locator(".fetches")).to_have_text("对方要求每天最多调取您的数据 4 次。")
        # The field is found by its label, and its description is the asked cap.
        field = request.get_by_label("每天最多允许调取几次？（最多 4 次）")
        expect(field).to_have_value("4")
        expect(field).to_have_accessible_description("对方要求每天最多调取您的数据 4 次。")
        screenshot(page, "portal", f"{size}-fetch-cap-zh")

        page.get_by_role("button", name="English").click()
        expect(page.get_by_role("heading", name="Your consents")).to_be_visible()
        expect(consent.locator(".fetches")).to_have_text(
            "Up to 5 fetches a day; 1 used today (UTC)."
        )
        expect(request.locator(".fetches")).to_have_text(
            "They ask to fetch your data at most 4 times a day."
        )
        field = request.get_by_label("How many fetches a day? (at most 4)")
        expect(field).to_have_value("4")
        expect(field).to_have_accessible_description(
            "They ask to fetch your data at most 4 times a day."
        )
        screenshot(page, "portal", f"{size}-fetch-cap-en")
    finally:
        context.close()
