"""A consent addressed to every partner of a role ("every lender"): the consumer is told which
partners received their data under it (the right to know the recipients), in both languages,
on the consents page and in the consumer API; before any partner does, it says so."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient

from tests.consent.support import consumer_auth
from tests.portal.helpers import (
    DATASET,
    LENDER,
    consumer_with_record,
    fetch_record_of,
    last_code,
    new_client,
    purpose_of,
    sign_in,
)
from tests.support.browser import BROWSER_MARKS, chromium, screenshot
from tests.support.consents import grant_to_role
from tests.support.hub import HubEnv
from tests.support.served import served_in_thread

_Test = TypeVar("_Test", bound=Callable[..., Any])


def _card(html: str, element_id: str) -> str:
    cards = dict(re.findall(r'<article[^>]* id="([^"]+)">(.*?)</article>', html, re.S))
    assert element_id in cards, f"no #{element_id} on the page"
    return cards[element_id]


def _every_lender(env: HubEnv, subject_id: str) -> str:
    """A new consent letting every lender read the consumer's loan application; its id."""
    purpose = purpose_of(env, LENDER, env.agreement(LENDER, DATASET))
    return grant_to_role(env, role="lender", subject_id=subject_id, purpose=purpose)


def _received_by(env: HubEnv, subject_id: str, consent_id: str) -> object:
    response = env.client.get("/v1/me/consents", headers=consumer_auth(env, subject_id))
    assert response.status_code == 200, response.text
    [item] = [i for i in response.json()["items"] if i["id"] == consent_id]
    return item["received_by"]


def test_a_role_consent_names_the_partners_that_received_the_data(hub: HubEnv) -> None:
    consumer = consumer_with_record(hub, skip=3)
    consent_id = _every_lender(hub, consumer.subject_id)
    client: TestClient = new_client(hub)
    token = sign_in(hub, client, consumer.mobile)

    card = _card(client.get("/portal/home").text, f"consent-{consent_id}")
    assert "所有贷款机构" in card, "the role in words, not its key"
    assert '<p class="received">尚无机构根据此授权获取过您的数据。</p>' in card
    assert _received_by(hub, consumer.subject_id, consent_id) == []

    fetch_record_of(hub, consumer.subject_id)
    lender = hub.partner(LENDER)
    card = _card(client.get("/portal/home").text, f"consent-{consent_id}")
    assert f'<p class="received">已根据此授权获取您数据的机构：{lender["name"]}。</p>' in card
    assert card.index('class="summary"') < card.index('class="received"') < card.index('"status ')
    assert _received_by(hub, consumer.subject_id, consent_id) == [lender["partner_id"]]

    switched = client.post(
        "/portal/language", data={"csrf_token": token, "locale": "en", "next": "/portal/home"}
    )
    assert switched.status_code == 303
    card = _card(client.get("/portal/home").text, f"consent-{consent_id}")
    assert "Every lender" in card
    assert f'<p class="received">Received your data under it: {lender["name"]}.</p>' in card


def test_a_consent_naming_one_partner_has_no_recipients_line(hub: HubEnv) -> None:
    consumer = consumer_with_record(hub, skip=4)
    client = new_client(hub)
    sign_in(hub, client, consumer.mobile)
    home = client.get("/portal/home").text
    assert 'id="consent-' in home, "the consumer has consents on the page"
    assert 'class="received"' not in home
    response = hub.client.get("/v1/me/consents", headers=consumer_auth(hub, consumer.subject_id))
    assert response.status_code == 200, response.text
    assert all(i["received_by"] is None for i in response.json()["items"])


@pytest.fixture(scope="module")
def base_url(hub: HubEnv) -> Iterator[str]:
    with served_in_thread(hub.client.app) as url:
        yield url


def _in_chromium(test: _Test) -> _Test:
    """The browser tests' marks, on this test only (the others need no browser)."""
    for mark in BROWSER_MARKS:
        test = mark(test)
    return test


@_in_chromium
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_recipients_line_in_chromium(hub: HubEnv, base_url: str, size: str) -> None:
    from playwright.sync_api import expect

    # CI machines are shared: wait for pages as a patient person would, not 5 s.
    expect.set_options(timeout=30_000)
    consumer = consumer_with_record(hub, skip={"desktop": 5, "phone": 6}[size])
    consent_id = _every_lender(hub, consumer.subject_id)
    fetch_record_of(hub, consumer.subject_id)
    lender = hub.partner(LENDER)["name"]
    viewport = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
    with chromium() as browser:
        context = browser.new_context(viewport=viewport[size], locale="zh-CN")  # type: ignore[arg-type]
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
        context.close()
