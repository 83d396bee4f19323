"""A partner names the consumer by e-mail address (a blind index, like ID number, mobile and
VIN): the request reaches that consumer; an unknown address is 404 like an unknown mobile; a
malformed one is 422; identifiers naming different consumers are 422."""

from __future__ import annotations

from typing import Any

import pytest

from hub.demo.population import Consumer
from tests.consent.support import LENDER, consumer_auth, person_without_consent, request_body
from tests.support.hub import HubEnv

TAKEN: set[str] = set()


def _ask(hub: HubEnv, person: Consumer, subject: dict[str, str]) -> Any:
    return hub.client.post(
        "/v1/consent-requests",
        json=request_body(person, subject=subject),
        headers=hub.auth(LENDER),
    )


def test_a_request_naming_the_consumer_by_email_reaches_them(
    hub: HubEnv, people: list[Consumer]
) -> None:
    person, subject_id = person_without_consent(hub, people, TAKEN)
    # Case and surrounding spaces do not matter: the address is normalised before indexing.
    response = _ask(hub, person, {"email": f" {person.email.upper()} "})
    assert response.status_code == 201, response.text
    asked = response.json()
    assert asked["status"] == "requested"
    pending = hub.client.get("/v1/me/consent-requests", headers=consumer_auth(hub, subject_id))
    assert pending.status_code == 200, pending.text
    assert asked["id"] in {item["id"] for item in pending.json()["items"]}
    # The same consumer named by e-mail and mobile together.
    both = _ask(hub, person, {"email": person.email, "mobile": person.mobile})
    assert both.status_code == 201, both.text
    assert person.email not in response.text and person.email not in both.text


def test_identifiers_naming_different_consumers_are_422(
    hub: HubEnv, people: list[Consumer]
) -> None:
    person, _ = person_without_consent(hub, people, TAKEN)
    other, _ = person_without_consent(hub, people, TAKEN)
    response = _ask(hub, person, {"email": other.email, "id_number": person.id_number})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "subject"


def test_an_unknown_email_is_404_like_an_unknown_mobile(
    hub: HubEnv, people: list[Consumer]
) -> None:
    by_email = _ask(hub, people[0], {"email": "zhang.wei.1987@163.com"})
    by_mobile = _ask(hub, people[0], {"mobile": "+8613957204816"})
    assert by_email.status_code == by_mobile.status_code == 404, by_email.text
    assert by_email.json()["detail"] == by_mobile.json()["detail"]
    assert by_email.json()["type"] == by_mobile.json()["type"]


@pytest.mark.parametrize(
    "email",
    [
        "li.wei.163.com",  # no @
        "li@wei@163.com",  # two @
        "li.wei@163",  # no dot in the domain
        "li..wei@163.com",
        ".liwei@163.com",
        "li wei@163.com",
        "<li.wei@163.com>",
        "li.wei@-163.com",
        "@163.com",
        "x" * 65 + "@163.com",  # local part over 64
        "x" * 60 + "@" + "a" * 190 + ".com",  # over 254 characters
    ],
)
def test_a_malformed_email_is_422(hub: HubEnv, people: list[Consumer], email: str) -> None:
    response = _ask(hub, people[0], {"email": email})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert email not in response.text


def test_the_openapi_documents_email(hub: HubEnv) -> None:
    spec = hub.client.get("/openapi.json").json()
    lookup = spec["components"]["schemas"]["SubjectLookup"]["properties"]
    assert "description" in lookup["email"]
    assert {"type": "string", "maxLength": 254} in lookup["email"]["anyOf"]
    operation = spec["paths"]["/v1/consent-requests"]["post"]
    assert "e-mail" in operation["description"]
