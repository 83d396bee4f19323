"""Mass assignment: fields a caller must not set (status, recipient, scopes, owner ids...) are
refused with 422 in every JSON body the API accepts, and nothing changes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from consent.models import Consent
from hub.registry.models import Agreement, Partner
from hub.store.base import Base
from tests.hardening.matrix import CONSUMER, MATRIX, Route
from tests.support.hub import HubEnv

#: Fields that would grant something if a body accepted them.
PRIVILEGED = {
    "status": "active",
    "recipient_id": "ptn_attacker",
    "provider_id": "ptn_attacker",
    "partner_id": "ptn_attacker",
    "subject_id": "sub_victim",
    "scopes": ["admin"],
    "role": "operator",
    "id": "forced-id",
    "created_at": "2020-01-01T00:00:00Z",
}
#: Object schemas that are free-form maps on purpose (their values are checked by the service).
FREE_FORM = {"json_schema", "jwks", "fields", "subject"}


def _json_body_operations(hub: HubEnv) -> list[tuple[str, str, dict[str, Any]]]:
    doc = hub.client.get("/openapi.json").json()
    found = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                found.append((method.upper(), path, content["application/json"]["schema"]))
    return found


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def _open_objects(doc: dict[str, Any], schema: dict[str, Any], where: str) -> list[str]:
    """Object schemas reachable from a body that accept unknown members."""
    schema = _resolve(doc, schema)
    problems: list[str] = []
    if "properties" in schema and schema.get("additionalProperties") is not False:
        problems.append(where)
    for name, sub in schema.get("properties", {}).items():
        if name not in FREE_FORM:
            problems += _open_objects(doc, sub, f"{where}.{name}")
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            problems += _open_objects(doc, sub, where)
    if "items" in schema and isinstance(schema["items"], dict):
        problems += _open_objects(doc, schema["items"], f"{where}[]")
    return problems


def test_every_request_body_schema_forbids_unknown_members(hub: HubEnv) -> None:
    doc = hub.client.get("/openapi.json").json()
    open_objects = [
        f"{method} {path}: {where}"
        for method, path, schema in _json_body_operations(hub)
        for where in _open_objects(doc, schema, "body")
    ]
    assert not open_objects, open_objects


def _principal(method: str, path: str) -> str:
    allowed = MATRIX[(method, path)]
    for preferred in ("lender", "dealer", "regulator", "operator", CONSUMER):
        if preferred in allowed:
            return preferred
    raise AssertionError(f"nobody may call {method} {path}")


def test_privileged_extra_fields_are_422_in_every_body(
    hub: HubEnv, principal_headers: dict[str, dict[str, str]]
) -> None:
    doc = hub.client.get("/openapi.json").json()
    failures = []
    for method, path, schema in _json_body_operations(hub):
        declared = set(_resolve(doc, schema).get("properties", {}))
        extras = {k: v for k, v in PRIVILEGED.items() if k not in declared}
        response = hub.client.request(
            method,
            Route(method, path).url(),
            json=extras,
            headers=principal_headers[_principal(method, path)],
        )
        if response.status_code != 422:
            failures.append(f"{method} {path}: {response.status_code}")
            continue
        flagged = {e["field"] for e in response.json().get("errors", [])}
        if not set(extras) <= flagged:
            failures.append(f"{method} {path}: extra fields not reported: {set(extras) - flagged}")
    assert not failures, failures


def _count(hub: HubEnv, model: type[Base]) -> int:
    with hub.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _assert_refused_and_unchanged(
    hub: HubEnv, model: type[Base], method: str, url: str, body: dict[str, Any], who: str
) -> None:
    before = _count(hub, model)
    response = hub.client.request(method, url, json=body, headers=hub.auth(who))
    assert response.status_code == 422, response.text
    # The extra member is the only problem: the same body without it would have been accepted.
    assert {e["field"] for e in response.json()["errors"]} <= set(body) - _BASE_KEYS[url]
    assert _count(hub, model) == before


_BASE_KEYS: dict[str, set[str]] = {}


def test_a_valid_proposal_with_status_active_is_refused(hub: HubEnv) -> None:
    dataset = hub.partner("dealer-huadong")["datasets"][0]
    proposal = {
        "dataset_id": dataset,
        "recipient_id": hub.partner("lender-pearl")["partner_id"],
        "purpose": "credit-assessment",
        "fields": ["amount_cny"],
        "retention_days": 30,
        "valid_from": "2027-01-01T00:00:00Z",
        "valid_until": "2027-12-31T00:00:00Z",
    }
    _BASE_KEYS["/v1/agreements"] = set(proposal)
    for extra in ({"status": "active"}, {"provider_id": hub.partner("lender-pearl")["partner_id"]}):
        _assert_refused_and_unchanged(
            hub, Agreement, "POST", "/v1/agreements", proposal | extra, "dealer-huadong"
        )


def test_a_consent_request_cannot_arrive_granted(hub: HubEnv) -> None:
    request = {
        "subject": {"vin": "LSVAU2180N2183294"},
        "purpose": "credit-assessment",
        "categories": ["identity"],
        "duration_days": 30,
        "reason": "loan",
    }
    _BASE_KEYS["/v1/consent-requests"] = set(request)
    for extra in ({"status": "active"}, {"recipient_id": "ptn_other"}, {"subject_id": "x"}):
        _assert_refused_and_unchanged(
            hub, Consent, "POST", "/v1/consent-requests", request | extra, "lender-jinqiao"
        )


@pytest.mark.parametrize("extra", [{"scopes": ["admin"]}, {"status": "active"}, {"id": "ptn_x"}])
def test_a_partner_cannot_be_registered_with_scopes(hub: HubEnv, extra: dict[str, Any]) -> None:
    body = {
        "name": "Newco",
        "legal_name": "Newco Ltd",
        "registration_id": "91310000MA1FL0000X",
        "role": "lender",
        "jurisdiction": "CN",
        "contact": {"name": "Ops", "email": "ops@newco.example"},
    }
    _BASE_KEYS["/v1/partners"] = set(body)
    _assert_refused_and_unchanged(hub, Partner, "POST", "/v1/partners", body | extra, "operator")


def test_cosignature_body_forbids_unknown_members(hub: HubEnv) -> None:
    response = hub.client.post(
        "/v1/audit/cosignatures", json={"status": "accepted"}, headers=hub.auth("regulator-fsr")
    )
    assert response.status_code == 422
    assert "status" in {e["field"] for e in response.json()["errors"]}
