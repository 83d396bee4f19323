"""Withdrawal takes effect at once: the next page of a pull that began before it releases
nothing more under that consent."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub.demo.population import Consumer
from hub.records.models import Record
from tests.consent.support import (
    DATASET,
    LENDER,
    consumer_auth,
    owners,
    person_without_consent,
    request_body,
)
from tests.support.hub import HubEnv


def page(hub: HubEnv, agreement_id: str, cursor: str | None, limit: int = 2) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit}
    if cursor:
        params["cursor"] = cursor
    response = hub.client.get(
        f"/v1/agreements/{agreement_id}/records", params=params, headers=hub.auth(LENDER)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_withdrawal_through_the_consumer_api_stops_the_next_page(
    hub: HubEnv, people: list[Consumer]
) -> None:
    agreement_id = hub.agreement(LENDER, DATASET)
    keys = owners(hub)
    with hub.session() as session:  # the owner of the record the first page (limit 1) holds
        first_owner = session.scalars(
            select(Record.subject_id).where(Record.dataset_id == DATASET).order_by(Record.id)
        ).first()
    taken: set[str] = {str(first_owner)}
    person, subject_id = person_without_consent(hub, people, taken)
    asked = hub.client.post(
        "/v1/consent-requests", json=request_body(person), headers=hub.auth(LENDER)
    ).json()
    me = consumer_auth(hub, subject_id)
    granted = hub.client.post(
        f"/v1/me/consent-requests/{asked['id']}/grant", json={"sensitive": True}, headers=me
    ).json()
    released = [i["record_key"] for i in hub.pull_all(LENDER, agreement_id, limit=1000)]
    theirs = [k for k in released if keys[k] == subject_id]
    assert theirs, "the grant releases the subject's records"

    first = page(hub, agreement_id, None, limit=1)  # a pull begins while the consent holds

    assert all(keys[i["record_key"]] != subject_id for i in first["items"])
    assert first["next_cursor"]

    withdrawn = hub.client.post(
        f"/v1/me/consents/{granted['id']}/withdraw", json={"reason": "mid-pull"}, headers=me
    )
    assert withdrawn.status_code == 200

    cursor = first["next_cursor"]
    rest: list[dict[str, Any]] = []
    withheld = 0
    while cursor:
        body = page(hub, agreement_id, cursor)
        rest.extend(body["items"])
        withheld += body["withheld"]
        cursor = body["next_cursor"]
    assert rest, "other subjects' records still flow"
    assert all(keys[i["record_key"]] != subject_id for i in rest)
    assert withheld >= len(theirs)
