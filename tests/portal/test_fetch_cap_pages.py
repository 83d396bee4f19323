"""A consent's cap on fetches a day in the portal's pages: a capped consent shows the cap and
the fetches used today (UTC), in both languages; a pending request shows the cap the partner
asks for, and the consumer may grant it lower, never higher."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from consent.models import Consent, ConsentStatus
from tests.portal.helpers import (
    capped_consent,
    consumer_with_record,
    fetch_record_of,
    insurer_asks,
    new_client,
    sign_in,
)
from tests.support.hub import HubEnv


def _cards(html: str) -> dict[str, str]:
    """The HTML inside each ``<article>`` of the page, by its id."""
    return dict(re.findall(r'<article[^>]* id="([^"]+)">(.*?)</article>', html, re.S))


def _card(html: str, element_id: str) -> str:
    cards = _cards(html)
    assert element_id in cards, f"no #{element_id} on the page"
    return cards[element_id]


def _in_english(client: TestClient, token: str) -> None:
    response = client.post(
        "/portal/language", data={"csrf_token": token, "locale": "en", "next": "/portal/home"}
    )
    assert response.status_code == 303


@pytest.mark.parametrize(
    ("cap", "skip", "chinese", "english"),
    [
        (
            3,
            0,
            "每天最多调取 3 次；今天（UTC）已调取 {used} 次。",
            "Up to 3 fetches a day; {used} used today (UTC).",
        ),
        (
            1,
            1,
            "每天最多调取 1 次；今天（UTC）已调取 {used} 次。",
            "Up to 1 fetch a day; {used} used today (UTC).",
        ),
    ],
)
def test_a_capped_consent_shows_its_cap_and_the_fetches_used_today(
    hub: HubEnv, cap: int, skip: int, chinese: str, english: str
) -> None:
    consumer = consumer_with_record(hub, skip=skip)
    consent_id = capped_consent(hub, consumer.subject_id, cap)
    client = new_client(hub)
    token = sign_in(hub, client, consumer.mobile)

    card = _card(client.get("/portal/home").text, f"consent-{consent_id}")
    assert f'<p class="fetches">{chinese.format(used=0)}</p>' in card

    fetch_record_of(hub, consumer.subject_id)
    card = _card(client.get("/portal/home").text, f"consent-{consent_id}")
    assert f'<p class="fetches">{chinese.format(used=1)}</p>' in card
    # The cap follows the consent's own terms and comes before its status.
    assert card.index('class="summary"') < card.index('class="fetches"') < card.index('"status ')

    _in_english(client, token)
    home = client.get("/portal/home").text
    assert f'<p class="fetches">{english.format(used=1)}</p>' in _card(
        home, f"consent-{consent_id}"
    )
    # The consumer's other consents (listed or ended) have no cap and say nothing about fetches.
    others = {k: v for k, v in _cards(home).items() if k.startswith("consent-")}
    assert others.keys() - {f"consent-{consent_id}"}, "the consumer has other consents"
    for element_id, card in others.items():
        if element_id != f"consent-{consent_id}":
            assert 'class="fetches"' not in card, element_id


def test_a_request_shows_the_cap_asked_for_and_may_be_granted_lower(hub: HubEnv) -> None:
    consumer = consumer_with_record(hub, skip=2)
    capped = insurer_asks(hub, consumer.mobile, fetches_per_day=4)
    uncapped = insurer_asks(hub, consumer.mobile)
    client = new_client(hub)
    token = sign_in(hub, client, consumer.mobile)

    home = client.get("/portal/home").text
    card = _card(home, f"request-{capped}")
    assert (
        f'<p class="fetches" id="fetches-asked-{capped}">对方要求每天最多调取您的数据 4 次。</p>'
    ) in card
    assert f'<label for="fetches-{capped}">每天最多允许调取几次？（最多 4 次）</label>' in card
    assert re.search(
        rf'<input id="fetches-{capped}" name="fetches_per_day" type="number" min="1" max="4" '
        rf'value="4" aria-describedby="fetches-asked-{capped}">',
        card,
    )
    other = _card(home, f"request-{uncapped}")
    assert 'class="fetches"' not in other and "fetches_per_day" not in other

    _in_english(client, token)
    card = _card(client.get("/portal/home").text, f"request-{capped}")
    assert "They ask to fetch your data at most 4 times a day." in card
    assert "How many fetches a day? (at most 4)" in card

    form = {
        "csrf_token": token,
        "categories": ["vehicle", "service_history"],
        "duration_days": "30",
    }
    # More than asked is refused with the form's error page; nothing changes.
    refused = client.post(f"/portal/requests/{capped}/grant", data={**form, "fetches_per_day": "5"})
    assert refused.status_code == 422, refused.text
    with hub.session() as session:
        still = session.get(Consent, capped)
        assert still is not None and still.status == ConsentStatus.REQUESTED

    granted = client.post(f"/portal/requests/{capped}/grant", data={**form, "fetches_per_day": "2"})
    assert granted.status_code == 303, granted.text
    with hub.session() as session:
        consent = session.get(Consent, capped)
        assert consent is not None
        assert consent.status == ConsentStatus.ACTIVE
        assert consent.fetches_per_day == 2
    card = _card(client.get("/portal/home").text, f"consent-{capped}")
    assert "Up to 2 fetches a day; 0 used today (UTC)." in card

    # Granting without the field keeps the cap asked for.
    kept = insurer_asks(hub, consumer.mobile, fetches_per_day=7)
    response = client.post(f"/portal/requests/{kept}/grant", data=form)
    assert response.status_code == 303, response.text
    with hub.session() as session:
        consent = session.get(Consent, kept)
        assert consent is not None and consent.fetches_per_day == 7
