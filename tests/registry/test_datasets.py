"""Datasets declared with a JSON Schema (categories and sensitivity from the taxonomy);
versions are additive and records say which version they follow."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy import select

from hub.records.models import Record
from tests.support.hub import HubEnv

DEALER = "dealer-nanfang"
VIN = "LSVAU2180N2183294"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "vin": {"type": "string", "x-category": "vehicle_identifier"},
        "warranty_start": {"type": "string", "format": "date", "x-category": "warranty"},
        "mileage_km": {"type": "integer", "x-category": "vehicle"},
    },
    "required": ["vin", "warranty_start"],
    "additionalProperties": False,
}


def declare(hub: HubEnv, dataset_id: str, schema: dict[str, Any], who: str = DEALER) -> Any:
    return hub.client.post(
        "/v1/datasets",
        json={"id": dataset_id, "title": "Warranty registrations", "json_schema": schema},
        headers=hub.auth(who),
    )


def test_declare_read_and_version_a_dataset(hub: HubEnv) -> None:
    created = declare(hub, "dealer-nanfang.warranty", SCHEMA)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["schema_version"] == 1
    assert body["field_specs"]["vin"] == {
        "type": "string", "category": "vehicle_identifier", "sensitive": False, "required": True,
    }  # fmt: skip
    assert body["json_schema"]["properties"]["warranty_start"]["format"] == "date"

    # Every member can read the catalogue entry (not the records).
    seen = hub.client.get("/v1/datasets/dealer-nanfang.warranty", headers=hub.auth("oem-zhiyuan"))
    assert (
        seen.status_code == 200 and seen.json()["provider_id"] == hub.partner(DEALER)["partner_id"]
    )

    publish = hub.client.post(
        "/v1/datasets/dealer-nanfang.warranty/records",
        json={"records": [{"record_key": "W-1", "subject": {"vin": VIN},
                           "fields": {"vin": VIN, "warranty_start": "2026-01-05"}}]},
        headers=hub.auth(DEALER),
    )  # fmt: skip
    assert publish.status_code == 200, publish.text

    v2 = copy.deepcopy(SCHEMA)
    v2["properties"]["service_plan"] = {"type": "string", "x-category": "service_history"}
    added = hub.client.post(
        "/v1/datasets/dealer-nanfang.warranty/schema-versions",
        json={"json_schema": v2},
        headers=hub.auth(DEALER),
    )
    assert added.status_code == 201, added.text
    assert added.json()["schema_version"] == 2

    publish = hub.client.post(
        "/v1/datasets/dealer-nanfang.warranty/records",
        json={"records": [{"record_key": "W-2", "subject": {"vin": VIN},
                           "fields": {"vin": VIN, "warranty_start": "2026-02-01",
                                      "service_plan": "gold"}}]},
        headers=hub.auth(DEALER),
    )  # fmt: skip
    assert publish.status_code == 200, publish.text
    with hub.session() as session:
        versions = dict(
            session.execute(
                select(Record.record_key, Record.schema_version).where(
                    Record.dataset_id == "dealer-nanfang.warranty"
                )
            ).all()
        )
    assert versions == {"W-1": 1, "W-2": 2}

    history = hub.client.get(
        "/v1/datasets/dealer-nanfang.warranty/schema-versions", headers=hub.auth(DEALER)
    ).json()["items"]
    assert [v["version"] for v in history] == [1, 2]
    assert "service_plan" not in history[0]["json_schema"]["properties"]


def _change(**props: Any) -> dict[str, Any]:
    schema = copy.deepcopy(SCHEMA)
    schema["properties"].update(props)
    return schema


@pytest.mark.parametrize(
    "schema",
    [
        {
            **SCHEMA,
            "properties": {k: v for k, v in SCHEMA["properties"].items() if k != "mileage_km"},
        },
        _change(mileage_km={"type": "number", "x-category": "vehicle"}),
        _change(mileage_km={"type": "integer", "x-category": "driving_behaviour"}),
        _change(extra={"type": "string", "x-category": "vehicle"})
        | {"required": ["vin", "warranty_start", "extra"]},
        SCHEMA,
    ],
)
def test_versions_are_additive(hub: HubEnv, schema: dict[str, Any]) -> None:
    dataset_id = f"dealer-nanfang.additive-{abs(hash(str(schema))) % 10**8}"
    assert declare(hub, dataset_id, SCHEMA).status_code == 201
    response = hub.client.post(
        f"/v1/datasets/{dataset_id}/schema-versions",
        json={"json_schema": schema},
        headers=hub.auth(DEALER),
    )
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith("/schema-not-additive")


@pytest.mark.parametrize(
    "schema",
    [
        _change(vin={"type": "string", "x-category": "no_such_category"}),
        _change(vin={"type": "string"}),
        _change(vin={"type": "array", "x-category": "vehicle"}),
        _change(vin={"type": "string", "format": "email", "x-category": "vehicle"}),
        _change(vin={"type": "string", "x-category": "vehicle", "pattern": "^x"}),
        _change(card={"type": "string", "x-category": "financial_account", "x-sensitive": False}),
        _change(BadName={"type": "string", "x-category": "vehicle"}),
        {**SCHEMA, "type": "array"},
        {**SCHEMA, "required": ["missing"]},
        {**SCHEMA, "properties": {}},
        {"type": 5},
    ],
)
def test_bad_schemas_are_422(hub: HubEnv, schema: dict[str, Any]) -> None:
    response = declare(hub, "dealer-nanfang.bad", schema)
    assert response.status_code == 422, response.text
    assert response.json()["errors"]


def test_declaration_rules(hub: HubEnv) -> None:
    assert declare(hub, "dealer-nanfang.dupe", SCHEMA).status_code == 201
    assert declare(hub, "dealer-nanfang.dupe", SCHEMA).status_code == 409
    extra = hub.client.post(
        "/v1/datasets",
        json={"id": "dealer-nanfang.x1", "title": "t", "json_schema": SCHEMA, "provider_id": "p"},
        headers=hub.auth(DEALER),
    )
    assert extra.status_code == 422
    assert declare(hub, "Bad Id!", SCHEMA).status_code == 422
    assert declare(hub, "regulator.ds", SCHEMA, who="regulator-fsr").status_code == 403
    other = hub.client.post(
        "/v1/datasets/dealer-nanfang.dupe/schema-versions",
        json={"json_schema": SCHEMA},
        headers=hub.auth("dealer-huadong"),
    )
    assert other.status_code == 404, "only the provider versions its dataset"
    assert hub.client.get("/v1/datasets/nope", headers=hub.auth(DEALER)).status_code == 404


def test_sensitive_category_is_sensitive_by_default(hub: HubEnv) -> None:
    schema = _change(
        card={"type": "string", "x-category": "financial_account"},
        plate={"type": "string", "x-category": "vehicle", "x-sensitive": True},
    )
    created = declare(hub, "dealer-nanfang.sensitive", schema)
    assert created.status_code == 201, created.text
    specs = created.json()["field_specs"]
    assert specs["card"]["sensitive"] is True and specs["plate"]["sensitive"] is True
