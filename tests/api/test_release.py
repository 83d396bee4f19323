"""Recipients pull through the gates: agreement, consent, policy, field protection, audit."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from consent.models import Consent, ConsentStatus
from consent.service import withdraw_consent
from hub.audit.models import AuditEvent
from hub.records.models import Record
from hub.registry.models import Agreement
from hub.store.base import utcnow
from tests.support.hub import HubEnv

LENDER = "lender-jinqiao"
DATASET = "dealer-huadong.loan-applications"


def usable_consent_subjects(hub: HubEnv, recipient: str, purpose: str) -> set[str]:
    now = utcnow()
    with hub.session() as session:
        rows = session.scalars(
            select(Consent).where(
                Consent.recipient_id == hub.partner(recipient)["partner_id"],
                Consent.purpose == purpose,
                Consent.status == ConsentStatus.ACTIVE,
            )
        ).all()
    return {c.subject_id for c in rows if c.starts_at <= now < c.expires_at}


def subjects_by_key(hub: HubEnv, dataset: str) -> dict[str, str]:
    with hub.session() as session:
        rows = session.execute(
            select(Record.record_key, Record.subject_id).where(Record.dataset_id == dataset)
        ).all()
    return dict(rows)


def test_only_consented_records_and_agreed_fields_leave(hub: HubEnv) -> None:
    agreement_id = hub.agreement(LENDER, DATASET)
    items = hub.pull_all(LENDER, agreement_id)
    owners = subjects_by_key(hub, DATASET)
    consented = usable_consent_subjects(hub, LENDER, "credit_assessment")

    assert items, "the demo must release something under this agreement"
    assert all(owners[i["record_key"]] in consented for i in items)
    without_consent = [k for k, s in owners.items() if s not in consented]
    assert without_consent, "the demo must have records without consent"
    released_keys = {i["record_key"] for i in items}
    assert not released_keys & set(without_consent)

    with hub.session() as session:
        agreement = session.get(Agreement, agreement_id)
        assert agreement is not None
        agreed = set(agreement.fields)
    for item in items:
        assert set(item["fields"]) <= agreed
        assert "address" not in item["fields"] and "birth_date" not in item["fields"]


def test_pages_cover_every_record_exactly_once(hub: HubEnv) -> None:
    agreement_id = hub.agreement(LENDER, DATASET)
    small = [i["record_key"] for i in hub.pull_all(LENDER, agreement_id, limit=3)]
    large = [i["record_key"] for i in hub.pull_all(LENDER, agreement_id, limit=1000)]
    assert len(small) == len(set(small))
    assert sorted(small) == sorted(large)


def test_page_counts_add_up(hub: HubEnv) -> None:
    agreement_id = hub.agreement(LENDER, DATASET)
    response = hub.client.get(
        f"/v1/agreements/{agreement_id}/records", params={"limit": 1000}, headers=hub.auth(LENDER)
    )
    page = response.json()
    total = len(subjects_by_key(hub, DATASET))
    assert page["released"] == len(page["items"])
    assert page["released"] + page["withheld"] == total
    assert page["withheld"] > 0
    assert page["decision_revision"]


def test_subjects_are_pseudonymous_and_differ_between_recipients(hub: HubEnv) -> None:
    jinqiao = hub.pull_all(LENDER, hub.agreement(LENDER, DATASET))
    pearl = hub.pull_all("lender-pearl", hub.agreement("lender-pearl", DATASET))
    owners = subjects_by_key(hub, DATASET)
    for item in jinqiao:
        assert item["subject"] != owners[item["record_key"]]
    assert not {i["subject"] for i in jinqiao} & {i["subject"] for i in pearl}


def test_another_partners_agreement_is_404_like_a_missing_one_and_is_logged(hub: HubEnv) -> None:
    agreement_id = hub.agreement(LENDER, DATASET)
    foreign = hub.client.get(
        f"/v1/agreements/{agreement_id}/records", headers=hub.auth("lender-pearl")
    )
    missing = hub.client.get("/v1/agreements/agr_missing/records", headers=hub.auth("lender-pearl"))
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["detail"] == missing.json()["detail"]
    with hub.session() as session:
        denied = session.scalars(
            select(AuditEvent).where(
                AuditEvent.kind == "release.denied",
                AuditEvent.partner_id == hub.partner("lender-pearl")["partner_id"],
            )
        ).all()
    assert any(agreement_id.encode() in e.canonical for e in denied)


def test_a_provider_cannot_pull_its_own_dataset_through_someone_elses_agreement(
    hub: HubEnv,
) -> None:
    agreement_id = hub.agreement(LENDER, DATASET)
    response = hub.client.get(
        f"/v1/agreements/{agreement_id}/records", headers=hub.auth("dealer-huadong")
    )
    assert response.status_code == 404


def test_tampered_or_foreign_cursor_is_400(hub: HubEnv) -> None:
    agreement_id = hub.agreement(LENDER, DATASET)
    first = hub.client.get(
        f"/v1/agreements/{agreement_id}/records", params={"limit": 2}, headers=hub.auth(LENDER)
    ).json()
    cursor = first["next_cursor"]
    assert cursor
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    for bad in (tampered, "garbage", "A" * 40):
        response = hub.client.get(
            f"/v1/agreements/{agreement_id}/records",
            params={"cursor": bad},
            headers=hub.auth(LENDER),
        )
        assert response.status_code == 400, bad
        assert response.json()["type"].endswith("/invalid-cursor")
    other = hub.agreement(LENDER, "dealer-nanfang.loan-applications")
    response = hub.client.get(
        f"/v1/agreements/{other}/records", params={"cursor": cursor}, headers=hub.auth(LENDER)
    )
    assert response.status_code == 400


def test_withdrawal_takes_effect_in_the_middle_of_a_paginated_pull(hub: HubEnv) -> None:
    agreement_id = hub.agreement(LENDER, DATASET)
    everything = hub.pull_all(LENDER, agreement_id, limit=1000)
    owners = subjects_by_key(hub, DATASET)
    # A subject whose records appear late in the pull, after the first page.
    late = owners[everything[-1]["record_key"]]

    first = hub.client.get(
        f"/v1/agreements/{agreement_id}/records", params={"limit": 2}, headers=hub.auth(LENDER)
    ).json()
    assert all(owners[i["record_key"]] != late for i in first["items"])

    with hub.session() as session:
        consents = session.scalars(
            select(Consent).where(
                Consent.subject_id == late,
                Consent.recipient_id == hub.partner(LENDER)["partner_id"],
                Consent.status == ConsentStatus.ACTIVE,
            )
        ).all()
        for consent in consents:
            withdraw_consent(session, consent_id=consent.id, subject_id=late, channel="test")
        session.commit()

    rest = []
    cursor = first["next_cursor"]
    while cursor:
        page = hub.client.get(
            f"/v1/agreements/{agreement_id}/records",
            params={"limit": 2, "cursor": cursor},
            headers=hub.auth(LENDER),
        ).json()
        rest.extend(page["items"])
        cursor = page["next_cursor"]
    assert rest
    assert all(owners[i["record_key"]] != late for i in rest)


def test_expired_consent_releases_nothing(hub: HubEnv) -> None:
    agreement_id = hub.agreement(LENDER, DATASET)
    items = hub.pull_all(LENDER, agreement_id)
    owners = subjects_by_key(hub, DATASET)
    victim = owners[items[0]["record_key"]]
    with hub.session() as session:
        for consent in session.scalars(
            select(Consent).where(Consent.subject_id == victim, Consent.status == "active")
        ):
            consent.expires_at = utcnow() - timedelta(seconds=1)
        session.commit()
    after = hub.pull_all(LENDER, agreement_id)
    assert victim not in {owners[i["record_key"]] for i in after}


def test_single_record_released_or_404(hub: HubEnv) -> None:
    agreement_id = hub.agreement(LENDER, DATASET)
    items = hub.pull_all(LENDER, agreement_id)
    key = items[-1]["record_key"]
    one = hub.client.get(f"/v1/agreements/{agreement_id}/records/{key}", headers=hub.auth(LENDER))
    assert one.status_code == 200
    assert one.json()["fields"] == items[-1]["fields"]

    owners = subjects_by_key(hub, DATASET)
    released = {i["record_key"] for i in items}
    withheld_key = next(k for k in owners if k not in released)
    withheld = hub.client.get(
        f"/v1/agreements/{agreement_id}/records/{withheld_key}", headers=hub.auth(LENDER)
    )
    missing = hub.client.get(
        f"/v1/agreements/{agreement_id}/records/NO-SUCH-KEY", headers=hub.auth(LENDER)
    )
    assert withheld.status_code == missing.status_code == 404
    assert withheld.json()["detail"] == missing.json()["detail"]


def test_every_decision_of_a_pull_is_an_audit_event(hub: HubEnv) -> None:
    agreement_id = hub.agreement(LENDER, DATASET)
    response = hub.client.get(
        f"/v1/agreements/{agreement_id}/records", params={"limit": 1000}, headers=hub.auth(LENDER)
    )
    request_id = response.headers["x-request-id"]
    page = response.json()
    events = hub.client.get(
        "/v1/audit/events",
        params={"partner_id": hub.partner(LENDER)["partner_id"], "limit": 1000},
        headers=hub.auth("regulator-fsr"),
    ).json()["items"]
    ours = [e for e in events if e.get("request_id") == request_id]
    assert len(ours) == ours[0]["page_decisions"] > 1
    assert all(e["kind"] == "release" and len(e["decisions"]) == 1 for e in ours)
    assert sum(e["released"] for e in ours) == page["released"]
    assert sum(e["withheld"] for e in ours) == page["withheld"]
    assert {e["policy_revision"] for e in ours} == {page["decision_revision"]}
    indices = sorted(e["index"] for e in ours)
    assert indices == list(range(indices[0], indices[0] + len(ours))), "appended together"
    reasons = {r for e in ours for r in e["decisions"][0]["reasons"]}
    assert reasons & {"consent.missing", "consent.withdrawn", "consent.expired"}
    for event in ours:
        decision = event["decisions"][0]
        assert "address" not in decision["fields_released"]
        if decision["allow"]:
            # Every released subject is cited with its own consent and receipt.
            assert set(decision["consents"]) == set(decision["subjects"])
            assert all(c["receipt_id"] for c in decision["consents"].values())
