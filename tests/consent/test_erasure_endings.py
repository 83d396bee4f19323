"""Erasing a subject ends their live consents in the same transaction: active and paused ones
are revoked by the hub (each recipient partner is told through the webhook outbox, by the
pseudonym its records carry, with a reason that says the data was erased), pending requests are
denied; a second erasure ends nothing twice; nothing of it survives a failed erasure; no raw
identifier reaches an audit event or a webhook."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from consent.erasure import (
    ERASURE_ACTOR,
    ERASURE_CHANNEL,
    ERASURE_REASON,
    end_consents_of_erased,
)
from consent.models import (
    Consent,
    ConsentEvent,
    ConsentNotification,
    ConsentStatus,
    WebhookDelivery,
)
from consent.service import ConsentTerms, effective_status
from consent.webhooks import SIGNATURE_HEADER, verify_signature
from hub.audit.models import AuditEvent
from hub.crypto import SubjectKey
from hub.demo.population import Consumer
from hub.records import erasure as records_erasure
from hub.records.erasure import Erasure, erase_subject, erase_subject_id
from hub.store.base import utcnow
from tests.consent.receiver import Receiver, receiver
from tests.consent.support import (
    DATASET,
    LENDER,
    consumer_auth,
    owners,
    person_without_consent,
    request_body,
)
from tests.support.consents import grant_to_role
from tests.support.hub import HubEnv

INSURER = "insurer-anxin"
TAKEN: set[str] = set()
LIVE = (ConsentStatus.REQUESTED, ConsentStatus.ACTIVE, ConsentStatus.PAUSED)


def _granted_to_lender(hub: HubEnv, person: Consumer, subject_id: str) -> str:
    asked = hub.client.post(
        "/v1/consent-requests", json=request_body(person), headers=hub.auth(LENDER)
    )
    assert asked.status_code == 201, asked.text
    consent_id = str(asked.json()["id"])
    granted = hub.client.post(
        f"/v1/me/consent-requests/{consent_id}/grant",
        json={"sensitive": True},
        headers=consumer_auth(hub, subject_id),
    )
    assert granted.status_code == 200, granted.text
    return consent_id


def _insurer_request(hub: HubEnv, person: Consumer) -> str:
    asked = hub.client.post(
        "/v1/consent-requests",
        headers=hub.auth(INSURER),
        json={
            "subject": {"id_number": person.id_number},
            "purpose": "claims_handling",
            "categories": ["vehicle", "service_history"],
            "duration_days": 30,
            "reason": "To settle your claim quickly.",
        },
    )
    assert asked.status_code == 201, asked.text
    return str(asked.json()["id"])


def _paused_for_insurer(hub: HubEnv, subject_id: str) -> str:
    now = utcnow()
    consents = hub.runtime.consents
    with hub.session() as session:
        consent = consents.grant(
            session,
            subject_id=subject_id,
            recipient_id=hub.partner(INSURER)["partner_id"],
            terms=ConsentTerms(
                purpose="claims_handling",
                categories=("service_history", "vehicle"),
                starts_at=now,
                expires_at=now + timedelta(days=20),
            ),
            channel="portal",
        )
        consents.pause(session, consent_id=consent.id, subject_id=subject_id, channel="portal")
        session.commit()
        return consent.id


def _for_any_lender(hub: HubEnv, subject_id: str) -> str:
    """A consent naming a role, not a partner: revoked too; no partner received records under
    it (its purpose has no agreement here), so nobody is told."""
    return grant_to_role(
        hub,
        role="lender",
        subject_id=subject_id,
        purpose="fraud_prevention",
        categories=("identity",),
        days=20,
        channel="portal",
    )


def _erase(hub: HubEnv, subject_id: str) -> Erasure:
    with hub.session() as session:
        erasure = erase_subject_id(
            session,
            protector=hub.runtime.protector,
            consents=hub.runtime.consents,
            subject_id=subject_id,
            actor="operator:test",
            reason="test erasure",
        )
        session.commit()
    return erasure


def _statuses(hub: HubEnv, ids: list[str]) -> dict[str, str]:
    with hub.session() as session:
        rows = session.execute(select(Consent.id, Consent.status).where(Consent.id.in_(ids)))
        return {str(i): str(s) for i, s in rows}


def _notifications(hub: HubEnv, ids: list[str]) -> list[ConsentNotification]:
    with hub.session() as session:
        return list(
            session.scalars(
                select(ConsentNotification)
                .where(ConsentNotification.consent_id.in_(ids))
                .order_by(ConsentNotification.created_at)
            )
        )


def _audit_after(hub: HubEnv, index: int) -> list[dict[str, Any]]:
    with hub.session() as session:
        rows = session.scalars(
            select(AuditEvent.canonical).where(AuditEvent.index > index).order_by(AuditEvent.index)
        ).all()
    return [json.loads(r) for r in rows]


def _last_index(hub: HubEnv) -> int:
    with hub.session() as session:
        return int(session.scalar(select(AuditEvent.index).order_by(AuditEvent.index.desc())) or 0)


def _raw_identifiers(person: Consumer) -> list[str]:
    return [v for v in (person.mobile, person.id_number, person.email) if v]


def test_erasure_revokes_live_consents_and_tells_each_recipient(
    hub: HubEnv, people: list[Consumer]
) -> None:
    person, subject_id = person_without_consent(hub, people, TAKEN)
    lender_consent = _granted_to_lender(hub, person, subject_id)
    pending = _insurer_request(hub, person)
    paused = _paused_for_insurer(hub, subject_id)
    by_role = _for_any_lender(hub, subject_id)
    mine = [lender_consent, pending, paused, by_role]
    # The demo gave this consumer consents of their own too: every live one ends.
    now = utcnow()
    with hub.session() as session:
        live = {
            c.id: (effective_status(c, now), c.recipient_id)
            for c in hub.runtime.consents.consents_of_subject(session, subject_id=subject_id)
            if effective_status(c, now) in LIVE
        }
    assert set(mine) <= set(live)
    everything = sorted(live)
    to_revoke = {i for i, (status, _r) in live.items() if status != ConsentStatus.REQUESTED}
    to_deny = set(live) - to_revoke
    to_notify = {i for i in to_revoke if live[i][1] is not None}
    # What the lender holds of this consumer, by the pseudonym its records carry.
    released = hub.pull_all(LENDER, hub.agreement(LENDER, DATASET))
    keys = {key for key, owner in owners(hub).items() if owner == subject_id}
    held = {r["subject"] for r in released if r["record_key"] in keys}
    assert len(held) == 1
    before = _last_index(hub)

    with receiver() as rx:
        created = hub.client.post(
            "/v1/webhooks", json={"url": rx.url + "/hook"}, headers=hub.auth(LENDER)
        )
        assert created.status_code == 201, created.text
        try:
            erasure = _erase(hub, subject_id)
            report = hub.runtime.webhooks.deliver_due()
        finally:
            hub.client.delete(f"/v1/webhooks/{created.json()['id']}", headers=hub.auth(LENDER))
        got = _delivered(rx, lender_consent)

    assert erasure.erased_now
    assert (erasure.consents_revoked, erasure.requests_denied) == (len(to_revoke), len(to_deny))
    statuses = _statuses(hub, everything)
    assert statuses == {
        **dict.fromkeys(to_revoke, ConsentStatus.REVOKED),
        **dict.fromkeys(to_deny, ConsentStatus.DENIED),
    }
    assert statuses[pending] == ConsentStatus.DENIED
    assert statuses[paused] == statuses[by_role] == ConsentStatus.REVOKED
    with hub.session() as session:
        last = {
            e.consent_id: e
            for e in session.scalars(
                select(ConsentEvent)
                .where(ConsentEvent.consent_id.in_(everything))
                .order_by(ConsentEvent.seq)
            )
        }
    assert {e.channel for e in last.values()} == {ERASURE_CHANNEL}
    assert {e.reason for e in last.values()} == {ERASURE_REASON}
    assert {e.actor for e in last.values()} == {ERASURE_ACTOR}  # the hub, never the subject
    assert all(e.receipt_id for e in last.values())
    with hub.session() as session:
        events_after = session.scalar(
            select(func.count())
            .select_from(ConsentEvent)
            .where(ConsentEvent.consent_id.in_(everything))
        )

    # Each recipient partner is told, by the pseudonym its records carry; the role consent
    # names no partner and the pending request gave nothing away, so neither notifies.
    notes = {n.consent_id: n for n in _notifications(hub, everything)}
    assert set(notes) == to_notify and {lender_consent, paused} <= to_notify
    for note in notes.values():
        assert note.event_type == "consent.revoked"
        assert note.payload["data"]["reason"] == ERASURE_REASON
        assert note.payload["data"]["status"] == ConsentStatus.REVOKED
    insurer_id = hub.partner(INSURER)["partner_id"]
    assert notes[paused].payload["data"]["subject"] == hub.runtime.protector.pseudonym(
        insurer_id, subject_id
    )
    assert report.delivered >= 1
    payload = json.loads(got["body"])
    assert payload["type"] == "consent.revoked"
    assert held == {payload["data"]["subject"]}
    assert payload["data"]["reason"] == ERASURE_REASON
    jwks = hub.client.get("/.well-known/jwks.json").json()
    assert verify_signature(got["body"], got["signature"], jwks)

    # The audit log: one consent.changed per ending, then the erasure with its counts and the
    # endings' receipts; no raw identifier anywhere, in the log or the webhooks.
    events = _audit_after(hub, before)
    changed = [e for e in events if e["kind"] == "consent.changed"]
    assert sorted(e["consent_id"] for e in changed) == sorted(everything)
    assert {e["channel"] for e in changed} == {ERASURE_CHANNEL}
    [erased] = [e for e in events if e["kind"] == "subject.erased"]
    assert erased["outcome"] == "erased"
    assert erased["counts"] == {"consents_revoked": len(to_revoke), "requests_denied": len(to_deny)}
    assert sorted(erased["consent_ids"]) == sorted(str(e.receipt_id) for e in last.values())
    assert erased["subjects"] == [hub.runtime.protector.pseudonym("audit", subject_id)]
    written = json.dumps(events, ensure_ascii=False) + json.dumps(
        [n.payload for n in notes.values()], ensure_ascii=False
    )
    for raw in _raw_identifiers(person):
        assert raw not in written

    # Again: already erased, nothing ended twice, nobody told twice.
    again = _erase(hub, subject_id)
    assert not again.erased_now
    assert (again.consents_revoked, again.requests_denied) == (0, 0)
    assert len(_notifications(hub, everything)) == len(to_notify)
    with hub.session() as session:
        events_now = session.scalar(
            select(func.count())
            .select_from(ConsentEvent)
            .where(ConsentEvent.consent_id.in_(everything))
        )
    assert events_now == events_after
    [repeat] = [e for e in _audit_after(hub, before) if e["kind"] == "subject.erased"][1:]
    assert repeat["outcome"] == "already_erased"
    assert repeat["counts"] == {"consents_revoked": 0, "requests_denied": 0}


def _delivered(rx: Receiver, consent_id: str) -> dict[str, Any]:
    with rx.lock:
        received = list(rx.received)
    for hit in received:
        body = json.loads(hit.body)
        if body["data"].get("consent_id") == consent_id:
            return {"body": hit.body, "signature": hit.headers[SIGNATURE_HEADER.lower()]}
    raise AssertionError(f"no delivery for {consent_id}")


def test_a_failed_erasure_leaves_the_consents_live_and_tells_nobody(
    hub: HubEnv, people: list[Consumer], monkeypatch: pytest.MonkeyPatch
) -> None:
    person, subject_id = person_without_consent(hub, people, TAKEN)
    consent_id = _granted_to_lender(hub, person, subject_id)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the audit log is unavailable")

    # The erasure's last step fails after the key was shredded and the consent revoked (in the
    # session): the rollback undoes all of it.
    monkeypatch.setattr(records_erasure, "append_event", broken)
    with hub.session() as session, pytest.raises(RuntimeError):
        erase_subject(
            session,
            protector=hub.runtime.protector,
            consents=hub.runtime.consents,
            identifiers={"mobile": person.mobile},
            actor="operator:test",
            reason="test erasure",
        )
    monkeypatch.undo()
    assert _statuses(hub, [consent_id]) == {consent_id: ConsentStatus.ACTIVE}
    assert _notifications(hub, [consent_id]) == []
    with hub.session() as session:
        key = session.get(SubjectKey, subject_id)
        assert key is None or key.shredded_at is None
        delivery = session.scalar(
            select(WebhookDelivery.id)
            .join(ConsentNotification, WebhookDelivery.notification_id == ConsentNotification.id)
            .where(ConsentNotification.consent_id == consent_id)
        )
        assert delivery is None

    erasure = _erase(hub, subject_id)
    assert erasure.erased_now and erasure.consents_revoked >= 1
    assert _statuses(hub, [consent_id]) == {consent_id: ConsentStatus.REVOKED}


def test_erasing_again_ends_what_an_earlier_erasure_left_live(
    hub: HubEnv, people: list[Consumer]
) -> None:
    """A subject shredded before erasure ended consents (or granted one since): erasing again
    ends it, once."""
    person, subject_id = person_without_consent(hub, people, TAKEN)
    consent_id = _granted_to_lender(hub, person, subject_id)
    with hub.session() as session:
        assert hub.runtime.protector.shred_subject(session, subject_id)
        session.commit()
    erasure = _erase(hub, subject_id)
    assert not erasure.erased_now and erasure.consents_revoked >= 1
    assert _statuses(hub, [consent_id]) == {consent_id: ConsentStatus.REVOKED}
    assert [n.event_type for n in _notifications(hub, [consent_id])] == ["consent.revoked"]
    assert _erase(hub, subject_id).consents_revoked == 0
    assert len(_notifications(hub, [consent_id])) == 1


def test_a_consent_past_its_end_is_left_to_the_expiry_sweep(
    hub: HubEnv, people: list[Consumer]
) -> None:
    _person, subject_id = person_without_consent(hub, people, TAKEN)
    consent_id = _paused_for_insurer(hub, subject_id)
    later = utcnow() + timedelta(days=21)
    with hub.session() as session:
        endings = end_consents_of_erased(
            session, consents=hub.runtime.consents, subject_id=subject_id, now=later
        )
        session.commit()
    assert consent_id not in endings.revoked
    assert _statuses(hub, [consent_id]) == {consent_id: ConsentStatus.PAUSED}
    assert _notifications(hub, [consent_id]) == []
