"""A consent addressed to a role ("any lender"): its ending reaches exactly the partners that
received records under it, each with its own pseudonym for the subject; the regulator's list,
acknowledgements and deletion attestations work per partner; an erasure tells them too."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from consent.models import ConsentNotification, ConsentRelease
from hub.demo.population import Consumer
from hub.records.erasure import erase_subject_id
from hub.store.base import utcnow
from tests.consent.receiver import Receiver, receiver
from tests.consent.support import (
    DATASET,
    LENDER,
    PURPOSE,
    consumer_auth,
    owners,
    person_without_consent,
    usable,
)
from tests.support.consents import grant_to_role
from tests.support.hub import HubEnv

OTHER_LENDER = "lender-pearl"
TAKEN: set[str] = set()


@pytest.fixture(scope="module")
def endpoints(hub: HubEnv) -> Iterator[dict[str, Receiver]]:
    with receiver() as first, receiver() as second:
        made = {}
        for ref, rx in ((LENDER, first), (OTHER_LENDER, second)):
            created = hub.client.post(
                "/v1/webhooks", json={"url": rx.url + "/hook"}, headers=hub.auth(ref)
            )
            assert created.status_code == 201, created.text
            made[ref] = created.json()["id"]
        yield {LENDER: first, OTHER_LENDER: second}
        for ref, endpoint_id in made.items():
            hub.client.delete(f"/v1/webhooks/{endpoint_id}", headers=hub.auth(ref))


def subject_without_consents(hub: HubEnv, people: list[Consumer]) -> str:
    """A subject in the dataset with no usable consent for either lender."""
    while True:
        _, subject_id = person_without_consent(hub, people, TAKEN)
        if not usable(hub, subject_id, recipient=OTHER_LENDER):
            return subject_id


def any_lender_consent(hub: HubEnv, subject_id: str) -> str:
    return grant_to_role(hub, role="lender", subject_id=subject_id, purpose=PURPOSE)


def held_pseudonyms(hub: HubEnv, ref: str, subject_id: str) -> set[str]:
    """Pull the whole dataset as ``ref``: the pseudonyms its copy of the subject's rows carry."""
    keys = {key for key, owner in owners(hub).items() if owner == subject_id}
    return {
        r["subject"]
        for r in hub.pull_all(ref, hub.agreement(ref, DATASET), limit=1000)
        if r["record_key"] in keys
    }


def releases(hub: HubEnv, consent_id: str) -> set[str]:
    with hub.session() as session:
        return set(
            session.scalars(
                select(ConsentRelease.partner_id).where(ConsentRelease.consent_id == consent_id)
            )
        )


def notifications(hub: HubEnv, consent_id: str) -> list[ConsentNotification]:
    with hub.session() as session:
        return list(
            session.scalars(
                select(ConsentNotification).where(ConsentNotification.consent_id == consent_id)
            )
        )


def unacknowledged(hub: HubEnv) -> dict[str, dict[str, object]]:
    response = hub.client.get(
        "/v1/consents/unacknowledged-withdrawals", headers=hub.auth("regulator-fsr")
    )
    assert response.status_code == 200, response.text
    return {i["notification_id"]: i for i in response.json()["items"]}


def partner_id(hub: HubEnv, ref: str) -> str:
    return str(hub.partner(ref)["partner_id"])


def listed_consents(hub: HubEnv, ref: str) -> set[str]:
    """Every consent id ``GET /v1/consents`` lists for ``ref``, page by page."""
    ids: set[str] = set()
    after: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 500, **({"after": after} if after else {})}
        page = hub.client.get("/v1/consents", params=params, headers=hub.auth(ref))
        assert page.status_code == 200, page.text
        body = page.json()
        ids |= {item["id"] for item in body["items"]}
        after = body["next_after"]
        if after is None:
            return ids


def test_a_withdrawal_reaches_only_the_lender_that_pulled(
    hub: HubEnv, people: list[Consumer], endpoints: dict[str, Receiver]
) -> None:
    subject_id = subject_without_consents(hub, people)
    consent_id = any_lender_consent(hub, subject_id)
    held = held_pseudonyms(hub, LENDER, subject_id)
    assert len(held) == 1, "the role's consent released the subject's records"
    assert releases(hub, consent_id) == {partner_id(hub, LENDER)}
    held_pseudonyms(hub, LENDER, subject_id)  # a second pull records nothing new
    assert releases(hub, consent_id) == {partner_id(hub, LENDER)}

    withdrawn = hub.client.post(
        f"/v1/me/consents/{consent_id}/withdraw", json={}, headers=consumer_auth(hub, subject_id)
    )
    assert withdrawn.status_code == 200, withdrawn.text
    [notification] = notifications(hub, consent_id)
    assert notification.partner_id == partner_id(hub, LENDER)
    assert notification.event_type == "consent.withdrawn"

    hub.runtime.webhooks.deliver_due()
    [got] = endpoints[LENDER].for_event(notification.id)
    payload = json.loads(got.body)
    assert payload["type"] == "consent.withdrawn"
    assert payload["data"]["consent_id"] == consent_id
    assert {payload["data"]["subject"]} == held, "its own pseudonym for the subject"
    assert not endpoints[OTHER_LENDER].for_event(notification.id)
    assert not any(consent_id in r.body.decode() for r in endpoints[OTHER_LENDER].received)

    # The lender that pulled may read the consent and its receipts; the other one may not.
    for path in (f"/v1/consents/{consent_id}", f"/v1/consents/{consent_id}/receipts"):
        assert hub.client.get(path, headers=hub.auth(LENDER)).status_code == 200
        assert hub.client.get(path, headers=hub.auth(OTHER_LENDER)).status_code == 404

    listed = unacknowledged(hub)[notification.id]
    assert listed["partner_id"] == partner_id(hub, LENDER)
    assert listed["deletion_attested"] is False
    ack = f"/v1/consent-notifications/{notification.id}/acknowledgement"
    assert hub.client.post(ack, headers=hub.auth(OTHER_LENDER)).status_code == 404
    attest = f"/v1/consents/{consent_id}/deletion-attestations"
    body = {"statement": "Deleted the loan file", "deleted_at": utcnow().isoformat()}
    assert hub.client.post(attest, json=body, headers=hub.auth(OTHER_LENDER)).status_code == 404
    assert notification.id in unacknowledged(hub)
    ok = hub.client.post(attest, json=body, headers=hub.auth(LENDER))
    assert ok.status_code == 201, ok.text
    assert notification.id not in unacknowledged(hub)


def test_an_acknowledgement_clears_the_regulators_list(
    hub: HubEnv, people: list[Consumer], endpoints: dict[str, Receiver]
) -> None:
    subject_id = subject_without_consents(hub, people)
    consent_id = any_lender_consent(hub, subject_id)
    pulled = {ref: held_pseudonyms(hub, ref, subject_id) for ref in (LENDER, OTHER_LENDER)}
    assert pulled[LENDER] != pulled[OTHER_LENDER], "each partner has its own pseudonym"
    hub.client.post(
        f"/v1/me/consents/{consent_id}/withdraw", json={}, headers=consumer_auth(hub, subject_id)
    )
    told = {n.partner_id: n for n in notifications(hub, consent_id)}
    assert set(told) == {partner_id(hub, LENDER), partner_id(hub, OTHER_LENDER)}
    for ref in (LENDER, OTHER_LENDER):
        assert {told[partner_id(hub, ref)].payload["data"]["subject"]} == pulled[ref]
    first = told[partner_id(hub, LENDER)].id
    second = told[partner_id(hub, OTHER_LENDER)].id
    assert {first, second} <= set(unacknowledged(hub))
    acked = hub.client.post(
        f"/v1/consent-notifications/{first}/acknowledgement", headers=hub.auth(LENDER)
    )
    assert acked.status_code == 200, acked.text
    still = unacknowledged(hub)
    assert first not in still and second in still


def test_an_erasure_tells_the_partners_that_pulled(
    hub: HubEnv, people: list[Consumer], endpoints: dict[str, Receiver]
) -> None:
    subject_id = subject_without_consents(hub, people)
    consent_id = any_lender_consent(hub, subject_id)
    held = held_pseudonyms(hub, OTHER_LENDER, subject_id)
    assert held
    with hub.session() as session:
        erase_subject_id(
            session,
            protector=hub.runtime.protector,
            consents=hub.runtime.consents,
            subject_id=subject_id,
            actor="operator:test",
            reason="test erasure",
        )
        session.commit()
    [notification] = notifications(hub, consent_id)
    assert notification.partner_id == partner_id(hub, OTHER_LENDER)
    assert notification.event_type == "consent.revoked"
    assert {notification.payload["data"]["subject"]} == held


def test_a_partner_lists_the_role_consents_it_received_records_under(
    hub: HubEnv, people: list[Consumer]
) -> None:
    subject_id = subject_without_consents(hub, people)
    consent_id = any_lender_consent(hub, subject_id)
    assert consent_id not in listed_consents(hub, LENDER), "nothing received under it yet"
    assert held_pseudonyms(hub, LENDER, subject_id)
    assert consent_id in listed_consents(hub, LENDER)
    assert consent_id not in listed_consents(hub, OTHER_LENDER), "the role alone shows nothing"
    own = hub.client.get("/v1/consents", params={"limit": 1}, headers=hub.auth(LENDER))
    assert own.json()["items"], "the partner's own consents are still listed"


def test_an_ending_with_no_release_tells_nobody(hub: HubEnv, people: list[Consumer]) -> None:
    subject_id = subject_without_consents(hub, people)
    consent_id = any_lender_consent(hub, subject_id)
    hub.client.post(
        f"/v1/me/consents/{consent_id}/withdraw", json={}, headers=consumer_auth(hub, subject_id)
    )
    assert releases(hub, consent_id) == set()
    assert notifications(hub, consent_id) == []
