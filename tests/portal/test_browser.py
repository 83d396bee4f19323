"""The portal in real headless Chromium (Debian's ``chromium``; browsers are never downloaded):
the whole journey of the issue. Screenshots go to
``tests/artifacts/portal/`` (git-ignored), at desktop and phone sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from consent.models import Consent, ConsentStatus
from tests.portal.helpers import DATASET, LENDER, last_code, purpose_of, released_to
from tests.support.browser import BROWSER_MARKS, screenshot
from tests.support.hub import HubEnv

INSURER = "insurer-anxin"
SIZES_SKIP = {"desktop": 0, "phone": 1}
SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}

pytestmark = BROWSER_MARKS


def _shot(page: object, name: str) -> None:
    screenshot(page, "portal", name)


def _ask_consent(env: HubEnv, mobile: str) -> str:
    """The insurer asks the consumer for consent through the partner API."""
    response = env.client.post(
        "/v1/consent-requests",
        headers=env.auth(INSURER),
        json={
            "subject": {"mobile": mobile},
            "purpose": "claims_handling",
            "categories": ["vehicle", "service_history", "claim"],
            "duration_days": 60,
            "reason": "To settle your claim quickly.",
        },
    )
    assert response.status_code == 201, response.text
    request_id: str = response.json()["id"]
    return request_id


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_whole_journey(hub: HubEnv, base_url: str, browser: object, size: str) -> None:
    """Sign in (desktop: mobile number, phone: e-mail) with the code from the outbox, grant a
    pending request (narrowed), withdraw a consent, see the lender's pull in the ledger and its
    next pull refused, verify a receipt, download my data, ask for a correction (the provider
    resolves it), erase my data after confirming, switch language, sign out."""
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    # CI machines are shared: wait for pages as a patient person would, not 5 s.
    expect.set_options(timeout=30_000)
    agreement = hub.agreement(LENDER, DATASET)
    hub.pull_all(LENDER, agreement)
    consumer, lender_consent = released_to(
        hub, LENDER, DATASET, purpose_of(hub, LENDER, agreement), skip=SIZES_SKIP[size]
    )
    request_id = _ask_consent(hub, consumer.mobile)
    context = browser.new_context(
        viewport=SIZES[size],  # type: ignore[arg-type]
        locale="zh-CN",
        accept_downloads=True,
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        # Sign in with the code from the outbox.
        page.goto(f"{base_url}/portal/")
        expect(page.get_by_role("heading", name="登录")).to_be_visible()
        _shot(page, f"{size}-1-sign-in")
        # One field: the desktop journey signs in by mobile number, the phone one by e-mail.
        identifier = consumer.email if size == "phone" else consumer.mobile
        page.get_by_label("手机号码或电子邮箱").fill(identifier)
        page.get_by_role("button", name="发送验证码").click()
        expect(page.get_by_role("heading", name="输入验证码")).to_be_visible()
        page.get_by_label("6 位验证码").fill(last_code(hub, identifier))
        _shot(page, f"{size}-2-code")
        page.get_by_role("button", name="登录").click()
        expect(page.get_by_role("heading", name="您的授权")).to_be_visible()
        _shot(page, f"{size}-3-home")

        # Grant the pending request, narrower: without the claims.
        request = page.locator(f"#request-{request_id}")
        expect(request).to_contain_text("To settle your claim quickly.")
        request.get_by_label("您的保险理赔").uncheck()
        request.get_by_label("授权多少天").fill("30")
        _shot(page, f"{size}-4-request")
        request.get_by_role("button", name="同意授权").click()
        expect(page.get_by_role("status")).to_contain_text("已授权")
        with hub.session() as session:
            granted = session.get(Consent, request_id)
            assert granted is not None
            assert granted.status == ConsentStatus.ACTIVE
            assert sorted(granted.categories) == ["service_history", "vehicle"]

        # Withdraw the lender's consent.
        card = page.locator(f"#consent-{lender_consent}")
        card.get_by_role("button", name="撤回").click()
        expect(page.get_by_role("status")).to_contain_text("授权已撤回")
        _shot(page, f"{size}-5-withdrawn")
        with hub.session() as session:
            status = session.scalar(select(Consent.status).where(Consent.id == lender_consent))
        assert status == ConsentStatus.WITHDRAWN

        # The ledger shows the lender's pull; its next pull is refused.
        page.get_by_role("link", name="谁查看了我的数据").click()
        expect(page.locator(".ledger .allowed").first).to_contain_text("Jinqiao")
        hub.pull_all(LENDER, agreement)
        page.get_by_label("显示").select_option("denied")
        page.get_by_role("button", name="筛选").click()
        expect(page.locator(".ledger .denied").first).to_contain_text("已拒绝")
        _shot(page, f"{size}-6-ledger-refused")

        # A receipt of the withdrawn consent verifies.
        page.goto(f"{base_url}/portal/consents/{lender_consent}/receipts")
        page.get_by_role("button", name="验证").last.click()
        expect(page.get_by_role("status")).to_contain_text("签名验证通过")
        _shot(page, f"{size}-7-receipt")

        # Download my data.
        page.get_by_role("link", name="我的数据", exact=True).click()
        with page.expect_download() as info:
            page.get_by_role("link", name="下载（JSON）").click()
        document = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
        assert document["records"]
        _shot(page, f"{size}-8-my-data")

        # Ask for a correction of a loan application's field; the dealer resolves it.
        record = page.locator("details", has_text=DATASET)
        record.locator("summary").click()
        record.get_by_role("link", name="信息有误？申请更正").click()
        expect(page.get_by_role("heading", name="申请更正")).to_be_visible()
        page.get_by_label("哪项信息有误？").select_option("monthly_income_cny")
        page.get_by_label("正确的内容").fill("23000")
        page.get_by_label("补充说明（选填）").fill("以我最新的工资单为准。")
        _shot(page, f"{size}-10-correction")
        page.get_by_role("button", name="提交申请").click()
        expect(page.get_by_role("status")).to_contain_text("您的更正申请已发送")
        expect(page.locator(".rights-request").first).to_contain_text("已收到")
        dealer = hub.auth(DATASET.split(".")[0])
        items = hub.client.get("/v1/rights-requests", headers=dealer).json()["items"]
        mine = next(i for i in items if i["proposed_value"] == "23000")
        resolved = hub.client.post(
            f"/v1/rights-requests/{mine['id']}/resolution",
            headers=dealer,
            json={"reason": "已按您的工资单更正。"},
        )
        assert resolved.status_code == 200, resolved.text
        page.reload()
        expect(page.locator(f"#rights-{mine['id']}")).to_contain_text("已完成")
        expect(page.locator(f"#rights-{mine['id']}")).to_contain_text("已按您的工资单更正。")
        _shot(page, f"{size}-11-rights")

        # Erase everything, after the confirmation step.
        page.get_by_role("link", name="删除我的全部数据").click()
        expect(page.get_by_role("heading", name="删除我的全部数据")).to_be_visible()
        # Confirmed with the identifier they signed in with (phone: e-mail, desktop: mobile).
        page.get_by_label("请输入您用于登录的手机号码或电子邮箱以确认").fill(identifier)
        page.get_by_label("我了解此操作无法撤销。").check()
        _shot(page, f"{size}-12-erasure")
        page.get_by_role("button", name="立即删除我的全部数据").click()
        expect(page.get_by_role("status")).to_contain_text("您的数据已被删除")
        expect(page.locator(".rights-request").first).to_contain_text("已完成")
        _shot(page, f"{size}-13-erased")
        page.get_by_role("link", name="我的数据", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text("您的数据已被删除")
        # The consent granted above ended with the erasure, and the list says why; the insurer
        # is told (through its webhooks) to delete what it received.
        page.get_by_role("link", name="我的授权").click()
        expect(page.get_by_text("目前没有机构可以使用您的数据。")).to_be_visible()
        ended = page.locator(f"#consent-{request_id}")
        expect(ended).to_contain_text("已被平台撤销")
        expect(ended).to_contain_text("因您的数据被删除而终止")
        _shot(page, f"{size}-14-consents-after-erasure")
        with hub.session() as session:
            revoked = session.get(Consent, request_id)
            assert revoked is not None and revoked.status == ConsentStatus.REVOKED
        page.get_by_role("link", name="我的数据", exact=True).click()

        # Switch language, then sign out.
        page.get_by_role("button", name="English").click()
        expect(page.get_by_role("heading", name="My data", exact=True)).to_be_visible()
        page.get_by_role("link", name="My consents").click()
        expect(page.get_by_role("heading", name="Your consents")).to_be_visible()
        _shot(page, f"{size}-9-english")
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("status")).to_contain_text("You are signed out.")
    finally:
        context.close()
