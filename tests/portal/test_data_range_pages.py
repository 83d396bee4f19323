"""A consent's data range in the portal's pages: a consent with a range says which data it
covers, in both languages; a request says which data the partner asks for; consents without a
range say nothing about it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from consent.service import ConsentTerms
from hub.store.base import utcnow
from tests.portal.helpers import (
    DATASET,
    INSURER,
    LENDER,
    consumer_with_record,
    new_client,
    purpose_of,
    sign_in,
)
from tests.portal.test_fetch_cap_pages import _card, _cards, _in_english
from tests.support.hub import HubEnv


def test_a_consent_with_a_data_range_shows_it_in_both_languages(hub: HubEnv) -> None:
    consumer = consumer_with_record(hub, skip=3)
    now = utcnow()
    terms = ConsentTerms(
        purpose=purpose_of(hub, LENDER, hub.agreement(LENDER, DATASET)),
        categories=("identity", "income", "loan"),
        starts_at=now - timedelta(minutes=1),
        expires_at=now + timedelta(days=30),
        data_from=datetime(2026, 6, 1, tzinfo=UTC),
        data_until=datetime(2026, 9, 1, 12, 30, tzinfo=UTC),
    )
    with hub.session() as session:
        consent_id = hub.runtime.consents.grant(
            session,
            subject_id=consumer.subject_id,
            recipient_id=str(hub.partner(LENDER)["partner_id"]),
            terms=terms,
            channel="test",
            now=now - timedelta(minutes=1),
        ).id
        session.commit()
    client = new_client(hub)
    token = sign_in(hub, client, consumer.mobile)

    card = _card(client.get("/portal/home").text, f"consent-{consent_id}")
    assert (
        '<p class="data-range">仅限 2026-06-01 至 2026-09-01 12:30（UTC）期间产生的数据。</p>'
        in card
    )
    assert card.index('class="summary"') < card.index('class="data-range"') < card.index('"status ')

    _in_english(client, token)
    home = client.get("/portal/home").text
    assert (
        '<p class="data-range">Only data produced from 2026-06-01 until 2026-09-01 12:30 (UTC).</p>'
    ) in _card(home, f"consent-{consent_id}")
    others = {k: v for k, v in _cards(home).items() if k.startswith("consent-")}
    assert others.keys() - {f"consent-{consent_id}"}, "the consumer has other consents"
    for element_id, other in others.items():
        if element_id != f"consent-{consent_id}":
            assert 'class="data-range"' not in other, element_id


def test_a_request_shows_the_data_range_asked_for(hub: HubEnv) -> None:
    consumer = consumer_with_record(hub, skip=4)
    response = hub.client.post(
        "/v1/consent-requests",
        headers=hub.auth(INSURER),
        json={
            "subject": {"mobile": consumer.mobile},
            "purpose": "claims_handling",
            "categories": ["vehicle", "service_history"],
            "duration_days": 60,
            "reason": "To settle your claim quickly.",
            "data_from": "2026-03-01T00:00:00Z",
        },
    )
    assert response.status_code == 201, response.text
    request_id = response.json()["id"]
    client = new_client(hub)
    sign_in(hub, client, consumer.mobile)
    card = _card(client.get("/portal/home").text, f"request-{request_id}")
    expires = response.json()["expires_at"][:10]
    assert f"对方只要求 2026-03-01 至 {expires}" in card
