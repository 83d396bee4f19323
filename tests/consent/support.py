"""Helpers shared by the consent tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from consent.models import Consent, ConsentStatus
from hub.demo.population import Consumer
from hub.records.models import Record, SubjectIdentifier
from hub.store.base import utcnow
from tests.support.hub import HubEnv

LENDER = "lender-jinqiao"
DATASET = "dealer-huadong.loan-applications"
PURPOSE = "credit_assessment"


def subject_of(hub: HubEnv, person: Consumer) -> str:
    digest = hub.runtime.protector.blind_index("mobile", person.mobile)
    with hub.session() as session:
        subject_id = session.scalars(
            select(SubjectIdentifier.subject_id).where(
                SubjectIdentifier.kind == "mobile", SubjectIdentifier.digest == digest
            )
        ).one()
    return subject_id


def consumer_auth(hub: HubEnv, subject_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {hub.runtime.consumer_tokens.issue(subject_id)}"}


def owners(hub: HubEnv, dataset: str = DATASET) -> dict[str, str]:
    with hub.session() as session:
        rows = session.execute(
            select(Record.record_key, Record.subject_id).where(Record.dataset_id == dataset)
        ).all()
    return {str(key): str(subject) for key, subject in rows}


def usable(hub: HubEnv, subject_id: str, recipient: str = LENDER, purpose: str = PURPOSE) -> bool:
    now = utcnow()
    with hub.session() as session:
        rows = session.scalars(
            select(Consent).where(
                Consent.subject_id == subject_id,
                Consent.recipient_id == hub.partner(recipient)["partner_id"],
                Consent.purpose == purpose,
                Consent.status == ConsentStatus.ACTIVE,
            )
        ).all()
    return any(c.starts_at <= now < c.expires_at for c in rows)


def person_without_consent(
    hub: HubEnv, people: list[Consumer], taken: set[str]
) -> tuple[Consumer, str]:
    """A consumer with records in the lender's dataset and no usable consent for it."""
    in_dataset = set(owners(hub).values())
    for person in people:
        if person.id_type != "prc_id":
            continue
        subject_id = subject_of(hub, person)
        if subject_id in in_dataset and subject_id not in taken and not usable(hub, subject_id):
            taken.add(subject_id)
            return person, subject_id
    raise AssertionError("the demo must have subjects without consent")


def request_body(person: Consumer, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": {"id_number": person.id_number},
        "purpose": PURPOSE,
        "categories": ["identity", "identity_document", "contact", "income", "loan",
                       "vehicle_identifier"],
        "duration_days": 60,
        "reason": "To assess your car loan application.",
        "sensitive": True,
    }  # fmt: skip
    body.update(overrides)
    return body
