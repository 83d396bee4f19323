"""Identity lookups (a consumer found by ID number, mobile, VIN or e-mail): placeholders are
refused with 422, bulk enumeration meets a velocity limit (distinct identifiers per partner per
window, 429 + Retry-After), and every refusal is audited without the identifier."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from hub.audit.models import AuditEvent
from hub.demo.population import generate_population
from hub.ratelimit import is_placeholder
from hub.records.service import IDENTIFIER_VALIDATORS
from tests.conftest import make_settings
from tests.support.databases import TestDatabases
from tests.support.hub import HubEnv, build_env

LENDER = "lender-jinqiao"
OTHER = "lender-pearl"
REGULATOR = "regulator-fsr"
#: Well-formed mobiles that no demo consumer has (the lookups answer 404).
UNKNOWN_MOBILES = ["13912873645", "13987216453", "15820394716", "18639201745", "17720394856"]


@pytest.fixture(scope="module")
def guarded(
    seeded_template: tuple[Path, str, dict[str, Any]], databases: TestDatabases
) -> Iterator[HubEnv]:
    data_dir, template_url, credentials = seeded_template
    settings = make_settings(data_dir, databases.clone(template_url), lookup_velocity_max=3)
    env = build_env(settings, credentials)
    with env.client:
        yield env


def _ask(hub: HubEnv, subject: dict[str, str], ref: str = LENDER) -> httpx.Response:
    return hub.client.post(
        "/v1/consent-requests",
        json={
            "subject": subject,
            "purpose": "credit-assessment",
            "categories": ["identity"],
            "duration_days": 30,
            "reason": "loan application",
        },
        headers=hub.auth(ref),
    )


def _explain(hub: HubEnv, subject: dict[str, str]) -> httpx.Response:
    agreement = hub.partner(LENDER)["agreements"][0]["id"]
    return hub.client.post(
        "/v1/decisions/explain",
        json={"agreement_id": agreement, "subject": subject},
        headers=hub.auth(REGULATOR),
    )


def _event(hub: HubEnv, response: httpx.Response) -> dict[str, Any]:
    with hub.session() as session:
        row = session.scalars(
            select(AuditEvent).where(AuditEvent.request_id == response.headers["x-request-id"])
        ).one()
    event: dict[str, Any] = json.loads(row.canonical)
    return event


PLACEHOLDERS = [
    ("id_number", "000000000000000000"),
    ("id_number", "111111111111111111"),
    ("id_number", "11010519491231002X"),
    ("mobile", "13800138000"),
    ("mobile", "+8613333333333"),
    ("mobile", "13800000000"),
    ("vin", "11111111111111111"),
    ("vin", "00000000000000000"),
    ("vin", "1M8GDM9AXKP042788"),
    ("email", "test@test.com"),
    ("email", "Li.Wei@Example.COM"),
    ("email", "zhang.san@mail.example.org"),
    ("email", "wang.fang@corp.invalid"),
    ("email", "noreply@163.com"),
    ("email", "test1+loans@qq.com"),
    ("email", "123456789@qq.com"),
    ("email", "aaaa@126.com"),
]


@pytest.mark.parametrize("route", ["consent-requests", "explain"])
@pytest.mark.parametrize(("kind", "value"), PLACEHOLDERS)
def test_placeholders_are_a_422_and_audited(
    guarded: HubEnv, route: str, kind: str, value: str
) -> None:
    subject = {kind: value}
    response = _ask(guarded, subject) if route == "consent-requests" else _explain(guarded, subject)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/placeholder-identifier")
    assert body["errors"][0]["field"] == f"subject.{kind}"
    assert value not in response.text
    event = _event(guarded, response)
    assert event["kind"] == "lookup.refused"
    assert event["reasons"] == ["lookup.placeholder_identifier"]
    assert value not in json.dumps(event)


def test_the_demo_population_has_no_placeholders(guarded: HubEnv) -> None:
    """Real-looking identifiers pass (the demo's own consumers are found as before)."""
    population = generate_population(seed=7, consumers=500)
    for consumer in population.consumers:
        assert not is_placeholder("id_number", consumer.id_number)
        assert not is_placeholder("mobile", consumer.mobile)
        assert not is_placeholder("email", consumer.email)
    for vehicle in population.vehicles:
        assert not is_placeholder("vin", vehicle.vin)


@pytest.mark.parametrize(
    "email",
    ["li.wei@163.com", "wangfang88@qq.com", "38271946@qq.com", "contest@sina.com", "x@y.cn"],
)
def test_real_looking_emails_are_not_placeholders(email: str) -> None:
    assert IDENTIFIER_VALIDATORS["email"](email)
    assert not is_placeholder("email", email)


def test_malformed_emails_are_not_placeholders() -> None:
    """A malformed address is left to the lookup itself (422 ``malformed``)."""
    for email in ("test", "test@", "@test.com", "a@b@example.com", ""):
        assert not is_placeholder("email", email)


def test_distinct_lookups_beyond_the_window_cap_are_a_429_and_audited(guarded: HubEnv) -> None:
    assert all(IDENTIFIER_VALIDATORS["mobile"](m) for m in UNKNOWN_MOBILES)
    for mobile in UNKNOWN_MOBILES[:3]:
        assert _ask(guarded, {"mobile": mobile}).status_code == 404
    assert _ask(guarded, {"mobile": UNKNOWN_MOBILES[0]}).status_code == 404  # not counted again
    refused = _ask(guarded, {"mobile": UNKNOWN_MOBILES[3]})
    assert refused.status_code == 429, refused.text
    assert refused.json()["type"].endswith("/lookup-velocity-exceeded")
    assert int(refused.headers["retry-after"]) >= 1
    assert UNKNOWN_MOBILES[3] not in refused.text
    event = _event(guarded, refused)
    assert event["kind"] == "lookup.refused"
    assert event["partner_id"] == guarded.partner(LENDER)["partner_id"]
    assert event["reasons"] == ["lookup.velocity_exceeded"]
    # a refused lookup is not counted; an identifier already counted is still served
    assert _ask(guarded, {"mobile": UNKNOWN_MOBILES[1]}).status_code == 404
    # the limit is per partner
    assert _ask(guarded, {"mobile": UNKNOWN_MOBILES[3]}, ref=OTHER).status_code == 404
