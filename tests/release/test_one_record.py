"""A one-record pull reads its record, the subject's key and consents in one statement: it must
decide exactly as a page does, whatever the subject's consents and key."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import event, select

from consent.models import Consent, ConsentStatus
from consent.service import ConsentTerms
from hub.records.models import Record
from hub.store.base import utcnow
from tests.support.hub import HubEnv

LENDER = "lender-jinqiao"
DATASET = "dealer-huadong.loan-applications"
PURPOSE = "credit_assessment"


def page_items(hub: HubEnv, agreement_id: str) -> dict[str, dict[str, Any]]:
    return {item["record_key"]: item for item in hub.pull_all(LENDER, agreement_id, limit=1000)}


def one(hub: HubEnv, agreement_id: str, key: str) -> tuple[int, Any]:
    response = hub.client.get(
        f"/v1/agreements/{agreement_id}/records/{key}", headers=hub.auth(LENDER)
    )
    return response.status_code, response.json()


def test_one_record_pulls_decide_as_the_page_does(hub: HubEnv) -> None:
    agreement_id = hub.agreement(LENDER, DATASET)
    lender = str(hub.partner(LENDER)["partner_id"])
    with hub.session() as session:
        owners = dict(
            session.execute(
                select(Record.record_key, Record.subject_id).where(Record.dataset_id == DATASET)
            ).all()
        )
    released = {owners[key] for key in page_items(hub, agreement_id)}
    by_subject: dict[str, list[str]] = {}
    for key, subject in sorted(owners.items()):
        by_subject.setdefault(subject, []).append(key)
    with_consent = sorted(s for s in by_subject if s in released)
    without = sorted(s for s in by_subject if s not in released)
    assert len(with_consent) >= 8 and len(without) >= 5

    consents = hub.runtime.consents
    now = utcnow()
    terms = ConsentTerms(
        purpose=PURPOSE,
        categories=("identity", "income", "loan"),
        starts_at=now - timedelta(minutes=1),
        expires_at=now + timedelta(days=30),
    )
    with hub.session() as session:
        # several rows in the join: an older usable consent and a newer withdrawn one
        newer = consents.grant(
            session, subject_id=with_consent[0], recipient_id=lender, terms=terms,
            channel="test", now=now,
        )  # fmt: skip
        consents.withdraw(session, consent_id=newer.id, subject_id=with_consent[0], channel="t")
        # a consent for the role, naming no recipient
        consents.grant(
            session, subject_id=without[0], recipient_role="lender", terms=terms,
            channel="test", now=now,
        )  # fmt: skip
        # every consent of this subject withdrawn
        for consent in session.scalars(
            select(Consent).where(Consent.subject_id == with_consent[1])
        ).all():
            if consent.status == ConsentStatus.ACTIVE and consent.expires_at > utcnow():
                consents.withdraw(
                    session, consent_id=consent.id, subject_id=with_consent[1], channel="t"
                )
        session.commit()
        assert hub.runtime.gates.protector.shred_subject(session, with_consent[2])
        session.commit()

    items = page_items(hub, agreement_id)
    chosen = [*with_consent[:3], *without[:2], *with_consent[3:8], *without[2:5]]
    checked = {"released": 0, "withheld": 0}
    for subject in chosen:
        for key in by_subject[subject][:2]:
            status, body = one(hub, agreement_id, key)
            if key in items:
                assert status == 200, body
                assert body == items[key]
                checked["released"] += 1
            else:
                assert status == 404, body
                checked["withheld"] += 1
    assert checked["released"] >= 4 and checked["withheld"] >= 4, checked
    assert not any(k in items for k in by_subject[with_consent[2]]), "erased"
    assert not any(k in items for k in by_subject[with_consent[1]]), "withdrawn"
    assert any(k in items for k in by_subject[with_consent[0]]), "usable beats newer withdrawn"


def test_a_one_record_pull_reads_the_record_key_and_consents_in_one_statement(
    hub: HubEnv,
) -> None:
    agreement_id = hub.agreement(LENDER, DATASET)
    key = next(iter(page_items(hub, agreement_id)))
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(hub.runtime.engine, "before_cursor_execute", seen)
    try:
        assert one(hub, agreement_id, key)[0] == 200
    finally:
        event.remove(hub.runtime.engine, "before_cursor_execute", seen)
    reads = [s for s in statements if "FROM records" in s]
    assert len(reads) == 1 and "consents" in reads[0] and "subject_keys" in reads[0]
    assert not any(s.lstrip().startswith("SELECT") and "FROM consents" in s for s in statements)


def test_an_erasure_elsewhere_stops_the_next_one_record_pull(hub: HubEnv) -> None:
    """Another process erases a subject whose key this process has cached: the next one-record
    pull must see it (the key row is read with the record)."""
    from sqlalchemy import update

    from hub.crypto import SubjectKey

    agreement_id = hub.agreement(LENDER, DATASET)
    items = page_items(hub, agreement_id)
    key = sorted(items)[len(items) // 2]
    assert one(hub, agreement_id, key)[0] == 200  # its subject's key is now cached here
    with hub.session() as session:
        subject = session.scalar(select(Record.subject_id).where(Record.record_key == key))
        session.execute(  # as another hub process's erasure would
            update(SubjectKey)
            .where(SubjectKey.subject_id == subject)
            .values(wrapped_key=None, shredded_at=utcnow())
        )
        session.commit()
    assert one(hub, agreement_id, key)[0] == 404
