"""The portal through its pages: sign-in with a code from the outbox, consents in plain words,
withdraw with CSRF, grant (narrowed) and deny a pending request, language switch."""

from __future__ import annotations

from sqlalchemy import select

from consent.models import Consent, ConsentStatus
from tests.portal.helpers import consumer_with, csrf_of, new_client, sign_in, statuses_of
from tests.support.hub import HubEnv


def test_sign_in_then_home_lists_consents_in_plain_words(hub: HubEnv) -> None:
    consumer = consumer_with(hub, ConsentStatus.ACTIVE)
    client = new_client(hub)
    sign_in(hub, client, consumer.mobile)
    home = client.get("/portal/home")
    # CN subjects see Chinese by default.
    assert "您的授权" in home.text
    with hub.session() as session:
        active = hub.runtime.consents.overview(
            session, subject_id=consumer.subject_id, statuses=[ConsentStatus.ACTIVE]
        )
        for item in active:
            assert f'id="consent-{item.consent.id}"' in home.text
            assert item.consent.expires_at.date().isoformat() in home.text


def test_withdraw_with_csrf(hub: HubEnv) -> None:
    consumer = consumer_with(hub, ConsentStatus.ACTIVE, skip=1)
    client = new_client(hub)
    token = sign_in(hub, client, consumer.mobile)
    consent_id = statuses_of(hub, consumer.subject_id, ConsentStatus.ACTIVE)[0]
    response = client.post(f"/portal/consents/{consent_id}/withdraw", data={"csrf_token": token})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/portal/home?notice=withdrawn"
    with hub.session() as session:
        status = session.scalar(select(Consent.status).where(Consent.id == consent_id))
    assert status == ConsentStatus.WITHDRAWN
    page = client.get(response.headers["location"])
    assert "授权已撤回" in page.text
    # Withdrawing twice: a clear conflict page, nothing changes.
    again = client.post(f"/portal/consents/{consent_id}/withdraw", data={"csrf_token": token})
    assert again.status_code == 409


def test_language_switch(hub: HubEnv) -> None:
    consumer = consumer_with(hub, ConsentStatus.ACTIVE, skip=2)
    client = new_client(hub)
    token = sign_in(hub, client, consumer.mobile)
    response = client.post(
        "/portal/language", data={"csrf_token": token, "locale": "en", "next": "/portal/home"}
    )
    assert response.status_code == 303
    page = client.get("/portal/home")
    assert "Your consents" in page.text and 'lang="en"' in page.text
    assert csrf_of(page.text) == token


def test_grant_a_request_narrower(hub: HubEnv) -> None:
    consumer = consumer_with(hub, ConsentStatus.REQUESTED)
    request_id = statuses_of(hub, consumer.subject_id, ConsentStatus.REQUESTED)[0]
    with hub.session() as session:
        asked = session.get(Consent, request_id)
        assert asked is not None
        categories = list(asked.categories)
    client = new_client(hub)
    token = sign_in(hub, client, consumer.mobile)
    home = client.get("/portal/home")
    assert f'id="request-{request_id}"' in home.text
    # Widening is refused by the consent service.
    wider = client.post(
        f"/portal/requests/{request_id}/grant",
        data={"csrf_token": token, "categories": [*categories, "biometric"]},
    )
    assert wider.status_code == 422
    response = client.post(
        f"/portal/requests/{request_id}/grant",
        data={"csrf_token": token, "categories": categories[:1], "duration_days": "30"},
    )
    assert response.status_code == 303, response.text
    with hub.session() as session:
        granted = session.get(Consent, request_id)
        assert granted is not None
        assert granted.status == ConsentStatus.ACTIVE
        assert granted.categories == categories[:1]
        assert (granted.expires_at - granted.starts_at).days == 30


def test_deny_a_request(hub: HubEnv) -> None:
    consumer = consumer_with(hub, ConsentStatus.REQUESTED, skip=1)
    request_id = statuses_of(hub, consumer.subject_id, ConsentStatus.REQUESTED)[0]
    client = new_client(hub)
    token = sign_in(hub, client, consumer.mobile)
    response = client.post(f"/portal/requests/{request_id}/deny", data={"csrf_token": token})
    assert response.status_code == 303
    assert request_id in statuses_of(hub, consumer.subject_id, ConsentStatus.DENIED)


def test_pause_then_resume(hub: HubEnv) -> None:
    consumer = consumer_with(hub, ConsentStatus.ACTIVE, skip=12)
    consent_id = statuses_of(hub, consumer.subject_id, ConsentStatus.ACTIVE)[0]
    client = new_client(hub)
    token = sign_in(hub, client, consumer.mobile)
    paused = client.post(f"/portal/consents/{consent_id}/pause", data={"csrf_token": token})
    assert paused.headers["location"] == "/portal/home?notice=paused"
    assert consent_id in statuses_of(hub, consumer.subject_id, ConsentStatus.PAUSED)
    # Resume is offered only for paused consents; resuming twice conflicts.
    resumed = client.post(f"/portal/consents/{consent_id}/resume", data={"csrf_token": token})
    assert resumed.headers["location"] == "/portal/home?notice=resumed"
    again = client.post(f"/portal/consents/{consent_id}/resume", data={"csrf_token": token})
    assert again.status_code == 409
    unknown = client.post(f"/portal/consents/{consent_id}/erase", data={"csrf_token": token})
    assert unknown.status_code == 404


def test_pages_need_sign_in(hub: HubEnv) -> None:
    client = new_client(hub)
    for path in ("/portal/home", "/portal/ledger", "/portal/my-data", "/portal/my-data.csv"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/portal/sign-in"
    # The sign-in page is Chinese by default, with security headers and no caching.
    page = client.get("/portal/sign-in")
    assert 'lang="zh-CN"' in page.text and "登录" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
