"""Finding a subject's audit pseudonym from an identifier: placeholders refused, every lookup
logged with the pseudonym only, never the identifier."""

from __future__ import annotations

from typing import Any

import pytest

from hub.deid.identifiers import prc_id_check_char
from tests.portal.helpers import demo_consumers
from tests.regulator.helpers import LENDER, REGULATOR, pull
from tests.support.hub import HubEnv

LOOKUP = "/v1/audit/subjects/lookup"


def look_up(hub: HubEnv, kind: str, value: str, ref: str = REGULATOR) -> Any:
    return hub.client.post(LOOKUP, json={"kind": kind, "value": value}, headers=hub.auth(ref))


def test_lookup_gives_the_pseudonym_the_log_uses(hub: HubEnv) -> None:
    consumer = demo_consumers(hub)[0]
    response = look_up(hub, "mobile", consumer.mobile)
    assert response.status_code == 200, response.text
    body = response.json()
    expected = hub.runtime.protector.pseudonym("audit", consumer.subject_id)
    assert body["subject"] == expected
    # The lookup is an event naming the regulator and the pseudonym, not the mobile number.
    events = hub.client.get(
        "/v1/audit/events",
        params={"kind": "subject.looked_up", "subject": expected},
        headers=hub.auth(REGULATOR),
    ).json()["items"]
    event = next(e for e in events if e["index"] == body["event_index"])
    assert event["partner_id"] == hub.partner(REGULATOR)["partner_id"]
    assert event["subjects"] == [expected] and event["outcome"] == "found"
    digits = consumer.mobile.lstrip("+")
    assert digits[-8:] not in str(event)


def test_lookup_by_email_finds_the_same_pseudonym_as_by_mobile(hub: HubEnv) -> None:
    consumer = next(c for c in demo_consumers(hub) if c.email)
    by_mobile = look_up(hub, "mobile", consumer.mobile)
    by_email = look_up(hub, "email", f" {consumer.email.upper()} ")
    assert by_mobile.status_code == by_email.status_code == 200, by_email.text
    assert by_email.json()["subject"] == by_mobile.json()["subject"]
    assert by_email.json()["subject"] == hub.runtime.protector.pseudonym(
        "audit", consumer.subject_id
    )
    events = hub.client.get(
        "/v1/audit/events",
        params={"kind": "subject.looked_up", "subject": by_email.json()["subject"]},
        headers=hub.auth(REGULATOR),
    ).json()["items"]
    event = next(e for e in events if e["index"] == by_email.json()["event_index"])
    assert event["identifier_kind"] == "email" and event["outcome"] == "found"
    assert consumer.email.split("@")[0] not in str(event)


def test_unknown_email_is_404(hub: HubEnv) -> None:
    response = look_up(hub, "email", "zhang.wei.1987@163.com")
    assert response.status_code == 404, response.text
    assert "zhang.wei" not in response.text


def test_the_pseudonym_finds_the_subjects_releases(hub: HubEnv) -> None:
    pull(hub, LENDER, limit=200)
    released = hub.client.get(
        "/v1/audit/events", params={"kind": "release", "limit": 1000}, headers=hub.auth(REGULATOR)
    ).json()["items"]
    named = {s for e in released for d in e.get("decisions", []) for s in d.get("subjects", [])}
    found = 0
    for consumer in demo_consumers(hub)[:20]:
        psn = look_up(hub, "mobile", consumer.mobile).json()["subject"]
        found += psn in named
    assert found, "no looked-up pseudonym appears in the release events"


def test_unknown_subject_is_404_and_logged(hub: HubEnv) -> None:
    body17 = "11010519800101987"
    id_number = body17 + prc_id_check_char(body17)
    response = look_up(hub, "id_number", id_number)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    events = hub.client.get(
        "/v1/audit/events",
        params={"kind": "subject.looked_up", "outcome": "not_found"},
        headers=hub.auth(REGULATOR),
    ).json()["items"]
    assert events and "subjects" not in events[-1]
    assert id_number not in str(events[-1])


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("id_number", "000000000000000000"),
        ("id_number", "111111111111111111"),
        ("id_number", "test"),
        ("id_number", "TEST"),
        ("vin", "00000000000000000"),
        ("vin", "TESTVIN0000000000"),
        ("vin", "12345678901234567"),
        ("mobile", "13800000000"),
        ("mobile", "+86 138 0013 8000"),
        ("mobile", "test"),
        ("mobile", "n/a"),
        ("email", "test@test.com"),
        ("email", "test"),
        ("email", "li.wei@example.com"),
        ("email", "li.wei@EXAMPLE.org"),
        ("email", "li.wei@shop.invalid"),
        ("email", "li.wei@localhost"),
        ("email", "noreply@163.com"),
        ("email", "user1@qq.com"),
        ("email", "1234567890@qq.com"),
    ],
)
def test_placeholders_are_refused(hub: HubEnv, kind: str, value: str) -> None:
    response = look_up(hub, kind, value)
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith("/placeholder-identifier")


def test_a_refused_lookup_is_logged_without_its_value(hub: HubEnv) -> None:
    response = look_up(hub, "mobile", "13800000000")
    assert response.status_code == 422, response.text
    events = hub.client.get(
        "/v1/audit/events",
        params={"kind": "subject.looked_up", "outcome": "refused"},
        headers=hub.auth(REGULATOR),
    ).json()["items"]
    assert events, "a refused lookup must leave an audit event"
    last = events[-1]
    assert last["request_id"] == response.json()["request_id"]
    assert "13800000000" not in str(last) and "subjects" not in last


@pytest.mark.parametrize(
    ("body"),
    [
        {"kind": "id_number", "value": "110105194912310022"},  # wrong check character
        {"kind": "vin", "value": "LSVAU2180N218329"},  # 16 characters
        {"kind": "mobile", "value": "+86 12"},
        {"kind": "plate", "value": "粤B12345"},
        {"kind": "vin", "value": "   "},
        {"kind": "vin"},
        {"kind": "vin", "value": "x" * 65},
        {"kind": "vin", "value": "LSVAU2180N2183294", "extra": 1},
        {"kind": "email", "value": "li.wei.163.com"},
        {"kind": "email", "value": "li.wei@163"},
        {"kind": "email", "value": "li..wei@163.com"},
        {"kind": "email", "value": "x" * 60 + "@" + "a" * 190 + ".com"},
    ],
)
def test_malformed_lookups_are_422(hub: HubEnv, body: dict[str, Any]) -> None:
    response = hub.client.post(LOOKUP, json=body, headers=hub.auth(REGULATOR))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_only_auditors_look_up(hub: HubEnv) -> None:
    consumer = demo_consumers(hub)[0]
    assert look_up(hub, "mobile", consumer.mobile, ref=LENDER).status_code == 403
    assert hub.client.post(LOOKUP, json={"kind": "mobile", "value": "x"}).status_code == 401
