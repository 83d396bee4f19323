"""Free text passes the egress guard: identifiers the decision did not release never leave."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from consent.service import grant_consent
from hub.records.models import SubjectIdentifier
from hub.store.base import utcnow
from tests.support.hub import HubEnv

INSURER = "insurer-anxin"
DATASET = "dealer-huadong.service-records"
ID_NUMBER = "11010519491231002X"
MOBILE = "+8613912345678"
VIN = "1M8GDM9AXKP042788"


def _publish_remark(hub: HubEnv, key: str, remarks: str) -> None:
    response = hub.client.post(
        f"/v1/datasets/{DATASET}/records",
        json={
            "records": [
                {
                    "record_key": key,
                    "subject": {"id_number": ID_NUMBER, "mobile": MOBILE},
                    "fields": {
                        "vin": VIN,
                        "service_date": "2026-11-20",
                        "odometer_km": 42000,
                        "service_type": "repair",
                        "cost_cny": 3800,
                        "remarks": remarks,
                    },
                }
            ]
        },
        headers=hub.auth("dealer-huadong"),
    )
    assert response.status_code == 200, response.text


def _consent_for_insurer(hub: HubEnv) -> None:
    digest = hub.runtime.protector.blind_index("id_number", ID_NUMBER)
    with hub.session() as session:
        subject_id = session.scalars(
            select(SubjectIdentifier.subject_id).where(SubjectIdentifier.digest == digest)
        ).one()
        grant_consent(
            session,
            subject_id=subject_id,
            recipient_id=hub.partner(INSURER)["partner_id"],
            purpose="claims_handling",
            categories=["vehicle", "vehicle_identifier", "service_history", "free_text"],
            expires_at=utcnow() + timedelta(days=30),
            actor=f"subject:{subject_id}",
            channel="test",
        )
        session.commit()


def _pull_one(hub: HubEnv, key: str) -> dict[str, Any]:
    agreement_id = hub.agreement(INSURER, DATASET)
    response = hub.client.get(
        f"/v1/agreements/{agreement_id}/records/{key}", headers=hub.auth(INSURER)
    )
    assert response.status_code == 200, response.text
    item: dict[str, Any] = response.json()
    return item


def test_identifiers_in_free_text_are_redacted_unless_released(hub: HubEnv) -> None:
    remarks = (
        f"Customer (ID {ID_NUMBER}, phone 139 1234 5678) reported a noise; "
        f"VIN {VIN} checked, brake pads replaced."
    )
    _publish_remark(hub, "SVC-EGRESS-1", remarks)
    _consent_for_insurer(hub)
    released = _pull_one(hub, "SVC-EGRESS-1")["fields"]["remarks"]
    assert ID_NUMBER not in released
    assert "139 1234 5678" not in released and "13912345678" not in released
    # The agreement releases the VIN in clear (claims handling needs it), so the text may too.
    assert VIN in released
    assert "brake pads replaced" in released


def test_guard_findings_are_counted_in_the_audit_event(hub: HubEnv) -> None:
    _publish_remark(hub, "SVC-EGRESS-2", f"Owner ID {ID_NUMBER} waited in the lounge.")
    _consent_for_insurer(hub)
    agreement_id = hub.agreement(INSURER, DATASET)
    response = hub.client.get(
        f"/v1/agreements/{agreement_id}/records/SVC-EGRESS-2", headers=hub.auth(INSURER)
    )
    request_id = response.headers["x-request-id"]
    events = hub.client.get(
        "/v1/audit/events",
        params={"partner_id": hub.partner(INSURER)["partner_id"], "limit": 1000},
        headers=hub.auth("regulator-fsr"),
    ).json()["items"]
    event = next(e for e in events if e.get("request_id") == request_id)
    findings = event["decisions"][0]["guard_findings"]
    assert findings.get("PRC_ID") == 1
    assert ID_NUMBER not in str(event)
