"""Providers publish batches: validated whole, stored encrypted, idempotent."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from hub.records.models import Record, SubjectIdentifier
from tests.support.hub import HubEnv

DATASET = "dealer-huadong.loan-applications"
ID_NUMBER = "11010519491231002X"


def application(key: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "applicant_name": "测试 申请人",
        "birth_date": "1949-12-31",
        "id_number": ID_NUMBER,
        "mobile": "+8613800138000",
        "address": "北京市东城区测试路1号",
        "monthly_income_cny": 18000,
        "vin": "1M8GDM9AXKP042788",
        "amount_cny": 120000,
        "term_months": 36,
        "down_payment_cny": 30000,
        "applied_on": "2026-11-20",
        "lender": "lender-jinqiao",
    }
    body.update(fields)
    return {
        "record_key": key,
        "version": 1,
        "subject": {"id_number": ID_NUMBER, "mobile": "+8613800138000"},
        "fields": body,
    }


def record_count(hub: HubEnv) -> int:
    with hub.session() as session:
        return session.scalar(select(func.count()).select_from(Record)) or 0


def publish(hub: HubEnv, records: list[dict[str, Any]], ref: str = "dealer-huadong",
            dataset: str = DATASET) -> Any:  # fmt: skip
    return hub.client.post(
        f"/v1/datasets/{dataset}/records",
        json={"records": records},
        headers=hub.auth(ref, "records:publish"),
    )


def test_publish_stores_records_encrypted_and_is_idempotent(hub: HubEnv) -> None:
    before = record_count(hub)
    response = publish(hub, [application("T-PUB-1"), application("T-PUB-2")])
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 2, "created": 2, "updated": 0, "unchanged": 0}
    assert record_count(hub) == before + 2

    again = publish(hub, [application("T-PUB-1")])
    assert again.json()["unchanged"] == 1
    assert record_count(hub) == before + 2

    with hub.session() as session:
        stored = session.scalars(select(Record).where(Record.record_key == "T-PUB-1")).one()
        raw = repr(stored.sealed) + stored.content_digest
        digests = session.scalars(select(SubjectIdentifier.digest)).all()
    assert ID_NUMBER not in raw and "测试" not in raw and "13800138000" not in raw
    assert ID_NUMBER not in " ".join(digests)


def test_newer_version_replaces_and_stale_or_different_version_conflicts(hub: HubEnv) -> None:
    assert publish(hub, [application("T-VER-1")]).status_code == 200
    newer = application("T-VER-1", amount_cny=99000)
    newer["version"] = 2
    assert publish(hub, [newer]).json()["updated"] == 1

    stale = application("T-VER-1")
    response = publish(hub, [stale])
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")

    different = application("T-VER-1", amount_cny=1)
    different["version"] = 2
    assert publish(hub, [different]).status_code == 409


def test_bad_batch_lists_every_problem_and_stores_nothing(hub: HubEnv) -> None:
    before = record_count(hub)
    bad_type = application("T-BAD-1", monthly_income_cny="lots")
    unknown_field = application("T-BAD-2", favourite_colour="red")
    missing = application("T-BAD-3")
    del missing["fields"]["vin"]
    bad_id = application("T-BAD-4")
    bad_id["subject"] = {"id_number": "110105194912310021"}  # wrong check character
    bad_date = application("T-BAD-5", applied_on="20/11/2026")
    good = application("T-BAD-OK")
    response = publish(hub, [good, bad_type, unknown_field, missing, bad_id, bad_date])
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"].endswith("/validation-failed")
    fields = {e["field"] for e in problem["errors"]}
    assert {
        "records[1].fields.monthly_income_cny",
        "records[2].fields.favourite_colour",
        "records[3].fields.vin",
        "records[4].subject.id_number",
        "records[5].fields.applied_on",
    } <= fields
    assert record_count(hub) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"records": []},
        {"records": [{"record_key": "x"}]},
        {"records": "nope"},
        {"records": [], "status": "active"},
    ],
)
def test_malformed_bodies_are_422(hub: HubEnv, body: dict[str, Any]) -> None:
    response = hub.client.post(
        f"/v1/datasets/{DATASET}/records", json=body, headers=hub.auth("dealer-huadong")
    )
    assert response.status_code == 422
    assert response.json()["errors"]


def test_publishing_into_another_providers_dataset_is_404(hub: HubEnv) -> None:
    response = publish(hub, [application("T-OTHER-1")], ref="dealer-nanfang")
    assert response.status_code == 404
    missing = publish(hub, [application("T-OTHER-2")], ref="dealer-nanfang", dataset="nope")
    assert missing.status_code == 404
    assert response.json()["detail"] == missing.json()["detail"]


def test_a_recipient_without_publish_scope_cannot_publish(hub: HubEnv) -> None:
    response = hub.client.post(
        f"/v1/datasets/{DATASET}/records",
        json={"records": [application("T-SCOPE-1")]},
        headers=hub.auth("regulator-fsr"),
    )
    assert response.status_code == 403


def test_oversized_body_is_413(hub: HubEnv) -> None:
    huge = "x" * (hub.settings.max_body_bytes + 1)
    response = hub.client.post(
        f"/v1/datasets/{DATASET}/records",
        content=huge,
        headers={**hub.auth("dealer-huadong"), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["type"].endswith("/payload-too-large")
