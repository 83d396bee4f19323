"""A dataset may name the field that carries a record's data time (``x-data-time``): checked when
the schema is declared or versioned, parsed strictly at publish into ``records.occurred_at``."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update

from hub.records.models import Record
from hub.records.service import parse_data_time
from tests.support.hub import HubEnv

DEALER = "dealer-nanfang"
VIN = "LSVAU2180N2183294"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "vin": {"type": "string", "x-category": "vehicle_identifier"},
        "driven_at": {"type": "string", "format": "date-time", "x-category": "vehicle"},
        "serviced_on": {"type": "string", "format": "date", "x-category": "service_history"},
        "mileage_km": {"type": "integer", "x-category": "vehicle"},
    },
    "required": ["vin"],
    "additionalProperties": False,
    "x-data-time": "driven_at",
}


def declare(hub: HubEnv, dataset_id: str, schema: dict[str, Any]) -> Any:
    return hub.client.post(
        "/v1/datasets",
        json={"id": dataset_id, "title": "Trips", "json_schema": schema},
        headers=hub.auth(DEALER),
    )


def new_version(hub: HubEnv, dataset_id: str, schema: dict[str, Any]) -> Any:
    return hub.client.post(
        f"/v1/datasets/{dataset_id}/schema-versions",
        json={"json_schema": schema},
        headers=hub.auth(DEALER),
    )


def publish(hub: HubEnv, dataset_id: str, key: str, version: int = 1, **fields: Any) -> Any:
    return hub.client.post(
        f"/v1/datasets/{dataset_id}/records",
        json={
            "records": [
                {"record_key": key, "version": version, "subject": {"vin": VIN},
                 "fields": {"vin": VIN, **fields}}
            ]
        },
        headers=hub.auth(DEALER),
    )  # fmt: skip


def occurred_at(hub: HubEnv, dataset_id: str, key: str) -> datetime | None:
    with hub.session() as session:
        return session.scalars(
            select(Record.occurred_at).where(
                Record.dataset_id == dataset_id, Record.record_key == key
            )
        ).one()


def test_a_declared_data_time_is_read_back_and_marks_its_field(hub: HubEnv) -> None:
    created = declare(hub, "dealer-nanfang.trips", SCHEMA)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["json_schema"]["x-data-time"] == "driven_at"
    assert body["field_specs"]["driven_at"]["data_time"] is True
    assert "data_time" not in body["field_specs"]["serviced_on"]
    versions = hub.client.get(
        "/v1/datasets/dealer-nanfang.trips/schema-versions", headers=hub.auth(DEALER)
    ).json()["items"]
    assert [v["json_schema"].get("x-data-time") for v in versions] == ["driven_at"]

    plain = copy.deepcopy(SCHEMA)
    del plain["x-data-time"]
    created = declare(hub, "dealer-nanfang.plain-trips", plain)
    assert created.status_code == 201, created.text
    assert "x-data-time" not in created.json()["json_schema"]


@pytest.mark.parametrize(
    ("data_time", "message"),
    [
        ("nowhere", "must name a field"),
        ("mileage_km", "date or date-time"),
        ("vin", "date or date-time"),
        (5, "must name a field"),
        (["driven_at"], "must name a field"),
    ],
)
def test_a_bad_data_time_is_422(hub: HubEnv, data_time: Any, message: str) -> None:
    response = declare(hub, "dealer-nanfang.bad-trips", {**SCHEMA, "x-data-time": data_time})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    errors = response.json()["errors"]
    assert any(e["field"] == "schema.x-data-time" and message in e["message"] for e in errors), (
        errors
    )


def test_a_later_version_may_name_a_data_time_but_never_move_it(hub: HubEnv) -> None:
    plain = copy.deepcopy(SCHEMA)
    del plain["x-data-time"]
    assert declare(hub, "dealer-nanfang.late-trips", plain).status_code == 201
    first = publish(hub, "dealer-nanfang.late-trips", "L-1", driven_at="2026-06-01T08:00:00Z")
    assert first.status_code == 200, first.text
    assert occurred_at(hub, "dealer-nanfang.late-trips", "L-1") is None

    v2 = copy.deepcopy(SCHEMA)
    v2["properties"]["fuel_l"] = {"type": "number", "x-category": "vehicle"}
    added = new_version(hub, "dealer-nanfang.late-trips", v2)
    assert added.status_code == 201, added.text
    assert added.json()["json_schema"]["x-data-time"] == "driven_at"
    versions = hub.client.get(
        "/v1/datasets/dealer-nanfang.late-trips/schema-versions", headers=hub.auth(DEALER)
    ).json()["items"]
    assert [v["json_schema"].get("x-data-time") for v in versions] == [None, "driven_at"]

    # The same record published again (same version, same content) gets its data time.
    again = publish(hub, "dealer-nanfang.late-trips", "L-1", driven_at="2026-06-01T08:00:00Z")
    assert again.json()["unchanged"] == 1
    assert occurred_at(hub, "dealer-nanfang.late-trips", "L-1") == datetime(
        2026, 6, 1, 8, tzinfo=UTC
    )

    v3 = copy.deepcopy(v2)
    v3["properties"]["seats"] = {"type": "integer", "x-category": "vehicle"}
    for moved in (
        {**v3, "x-data-time": "serviced_on"},
        {k: v for k, v in v3.items() if k != "x-data-time"},
    ):
        response = new_version(hub, "dealer-nanfang.late-trips", moved)
        assert response.status_code == 422, response.text
        assert response.json()["type"].endswith("/schema-not-additive")
        assert any(e["field"] == "schema.x-data-time" for e in response.json()["errors"])


def test_publish_fills_occurred_at_from_the_data_time(hub: HubEnv) -> None:
    assert declare(hub, "dealer-nanfang.dated-trips", SCHEMA).status_code == 201
    dataset = "dealer-nanfang.dated-trips"
    cases = {
        "D-Z": ("2026-06-01T08:30:00Z", datetime(2026, 6, 1, 8, 30, tzinfo=UTC)),
        "D-8": ("2026-06-01T08:30:00+08:00", datetime(2026, 6, 1, 0, 30, tzinfo=UTC)),
        "D-F": (
            "2026-06-01T08:30:00.123456789-02:00",  # nanoseconds: kept to the microsecond
            datetime(2026, 6, 1, 10, 30, 0, 123456, tzinfo=UTC),
        ),
    }
    for key, (value, expected) in cases.items():
        response = publish(hub, dataset, key, driven_at=value)
        assert response.status_code == 200, response.text
        assert occurred_at(hub, dataset, key) == expected

    # No data time in the record: unknown (NULL), as for a dataset that names none.
    assert publish(hub, dataset, "D-none", mileage_km=5).status_code == 200
    assert occurred_at(hub, dataset, "D-none") is None

    # A new version moves it; an unchanged one keeps it.
    assert publish(hub, dataset, "D-Z", 2, driven_at="2026-07-01T00:00:00Z").status_code == 200
    assert occurred_at(hub, dataset, "D-Z") == datetime(2026, 7, 1, tzinfo=UTC)
    assert publish(hub, dataset, "D-Z", 3, mileage_km=1).status_code == 200
    assert occurred_at(hub, dataset, "D-Z") is None


def test_a_date_data_time_is_midnight_utc(hub: HubEnv) -> None:
    schema = {**SCHEMA, "x-data-time": "serviced_on"}
    assert declare(hub, "dealer-nanfang.services", schema).status_code == 201
    response = publish(hub, "dealer-nanfang.services", "S-1", serviced_on="2026-02-28")
    assert response.status_code == 200, response.text
    assert occurred_at(hub, "dealer-nanfang.services", "S-1") == datetime(2026, 2, 28, tzinfo=UTC)
    with hub.session() as session:  # the column is stored in UTC, NULL-able
        session.execute(update(Record).where(Record.record_key == "S-1").values(occurred_at=None))
        session.commit()
    assert occurred_at(hub, "dealer-nanfang.services", "S-1") is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("driven_at", "2026-06-01T08:30:00", "needs a UTC offset"),
        ("driven_at", "2026-06-01 08:30:00Z", "RFC 3339"),
        ("driven_at", "20260601T083000Z", "RFC 3339"),
        ("driven_at", "2026-06-01", "RFC 3339"),
        ("driven_at", "2026-06-01T24:00:00Z", "not a valid date-time"),
        ("driven_at", "2026-06-01T08:30:00+25:00", "not a valid date-time"),
        ("driven_at", "0001-01-01T00:00:00+01:00", "not a valid date-time"),
        ("driven_at", 1780000000, "must be of type datetime"),
        ("serviced_on", "2026-02-30", "not a calendar date"),
        ("serviced_on", "2026-W22-1", "YYYY-MM-DD"),
        ("serviced_on", "20260601", "YYYY-MM-DD"),
        ("serviced_on", "2026-06-01T00:00:00Z", "YYYY-MM-DD"),
    ],
)
def test_a_bad_data_time_at_publish_is_422_naming_the_field(
    hub: HubEnv, field: str, value: Any, message: str
) -> None:
    dataset = f"dealer-nanfang.strict-{field.replace('_', '-')}"
    declare(hub, dataset, {**SCHEMA, "x-data-time": field})
    response = publish(hub, dataset, "B-1", **{field: value})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    errors = response.json()["errors"]
    assert errors == [{"field": f"records[0].fields.{field}", "message": errors[0]["message"]}]
    assert message in errors[0]["message"]
    with hub.session() as session:
        assert session.scalars(select(Record.id).where(Record.dataset_id == dataset)).all() == []


@given(
    st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
)
def test_any_offset_date_time_parses_to_the_same_instant(when: datetime, minutes: int) -> None:
    local = when.astimezone(timezone(timedelta(minutes=minutes)))
    text = local.isoformat()
    assert parse_data_time(text, "datetime") == when
    assert parse_data_time(text.replace("+00:00", "Z"), "datetime") == when
    assert parse_data_time(when.date().isoformat(), "date") == datetime(
        when.year, when.month, when.day, tzinfo=UTC
    )
