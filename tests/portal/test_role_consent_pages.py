"""A consent addressed to every partner of a role ("every lender"): the consumer is told which
partners received their data under it (the right to know the recipients), in both languages,
on the consents page and in the consumer API; before any partner does, it says so."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.consent.support import consumer_auth
from tests.portal.helpers import (
    DATASET,
    LENDER,
    consumer_with_record,
    fetch_record_of,
    new_client,
    purpose_of,
    sign_in,
)
from tests.support.consents import grant_to_role
from tests.support.hub import HubEnv


def _card(html: str, element_id: str) -> str:
    cards = dict(re.findall(r'<article[^>]* id="([^"]+)">(.*?)</article>', html, re.S))
    assert element_id in cards, f"no #{element_id} on the page"
    return cards[element_id]


def every_lender(env: HubEnv, subject_id: str) -> str:
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
    consent_id = every_lender(hub, consumer.subject_id)
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
