"""Erasing a subject (crypto-shredding): their records stop leaving, everyone else's still do."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from consent.models import ConsentNotification, ConsentStatus
from hub.audit.models import AuditEvent
from hub.cli import app
from hub.records.models import Record
from hub.settings import get_settings
from tests.support.hub import HubEnv

LENDER = "lender-jinqiao"
DATASET = "dealer-huadong.loan-applications"


def test_a_page_with_an_erased_subject_withholds_only_their_records(hub: HubEnv) -> None:
    agreement_id = hub.agreement(LENDER, DATASET)
    before = hub.pull_all(LENDER, agreement_id, limit=1000)
    assert len(before) >= 2
    victim_key = before[0]["record_key"]
    with hub.session() as session:
        victim = session.scalars(
            select(Record.subject_id).where(Record.record_key == victim_key)
        ).one()
        assert hub.runtime.protector.shred_subject(session, victim)
        session.commit()
    response = hub.client.get(
        f"/v1/agreements/{agreement_id}/records", params={"limit": 1000}, headers=hub.auth(LENDER)
    )
    assert response.status_code == 200, response.text
    after = response.json()
    keys = {i["record_key"] for i in after["items"]}
    assert victim_key not in keys
    assert keys == {i["record_key"] for i in before} - {victim_key} - {
        i["record_key"] for i in before if i["subject"] == before[0]["subject"]
    }
    single = hub.client.get(
        f"/v1/agreements/{agreement_id}/records/{victim_key}", headers=hub.auth(LENDER)
    )
    assert single.status_code == 404


def test_erasure_through_the_cli_is_audited_and_names_no_identifier(
    hub: HubEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    agreement_id = hub.agreement(LENDER, DATASET)
    before = hub.pull_all(LENDER, agreement_id, limit=1000)
    target = before[-1]
    mobile = target["fields"]["mobile"]
    with hub.session() as session:
        subject_id = session.scalars(
            select(Record.subject_id).where(Record.record_key == target["record_key"])
        ).one()
        # The lender's consent that released this record, and every other live one.
        live = [
            item.consent.id
            for item in hub.runtime.consents.overview(session, subject_id=subject_id)
            if item.status in (ConsentStatus.ACTIVE, ConsentStatus.PAUSED)
        ]
    assert live
    monkeypatch.setenv("TOLLHOUSE_DATA_DIR", str(hub.settings.data_dir))
    monkeypatch.setenv("TOLLHOUSE_DATABASE_URL", hub.settings.resolved_database_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app, ["subjects", "erase", "--mobile", mobile, "--reason", "consumer request #42"]
        )
        again = CliRunner().invoke(
            app, ["subjects", "erase", "--mobile", mobile, "--reason", "duplicate request"]
        )
        unknown = CliRunner().invoke(
            app, ["subjects", "erase", "--mobile", "+8613000000000", "--reason", "x"]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "already erased" in again.output
    assert f"{len(live)} consent(s) revoked" in result.output
    assert "revoked" not in again.output  # nothing left to end
    assert unknown.exit_code == 1

    after = {i["record_key"] for i in hub.pull_all(LENDER, agreement_id, limit=1000)}
    assert target["record_key"] not in after and after

    with hub.session() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.kind == "subject.erased")
        ).all()
        statuses = {
            c.id: c.status
            for c in hub.runtime.consents.consents_of_subject(session, subject_id=subject_id)
            if c.id in live
        }
        notifications = session.scalars(
            select(ConsentNotification).where(ConsentNotification.consent_id.in_(live))
        ).all()
    assert [json.loads(e.canonical)["outcome"] for e in events] == ["erased", "already_erased"]
    assert [json.loads(e.canonical)["counts"]["consents_revoked"] for e in events] == [
        len(live),
        0,
    ]
    assert all(mobile.encode() not in e.canonical for e in events)
    # The consents ended with the erasure; each recipient partner is told once, by pseudonym.
    assert set(statuses.values()) == {ConsentStatus.REVOKED}
    assert notifications and {n.event_type for n in notifications} == {"consent.revoked"}
    assert len({n.consent_id for n in notifications}) == len(notifications)
    for note in notifications:
        assert note.payload["data"]["subject"].startswith("psn_")
        assert mobile not in json.dumps(note.payload)


def test_statistics_skip_erased_subjects(hub: HubEnv) -> None:
    with hub.session() as session:
        subject_id = session.scalars(
            select(Record.subject_id).where(Record.dataset_id == DATASET)
        ).first()
        assert subject_id is not None
        hub.runtime.protector.shred_subject(session, subject_id)
        session.commit()
    response = hub.client.get(
        f"/v1/statistics/datasets/{DATASET}/counts",
        params={"by": "applied_on"},
        headers=hub.auth("regulator-fsr"),
    )
    assert response.status_code == 200, response.text
