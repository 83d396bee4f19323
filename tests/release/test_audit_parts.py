"""A decision over many records is audited in several events, each under the log's size cap."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from hub.audit.errors import InvalidEventError
from hub.audit.models import AuditEvent
from hub.auth.tokens import AuthenticatedPartner
from hub.policy import Decision
from hub.registry import service as registry
from hub.release import pipeline
from hub.release.pipeline import PullRequest, _audit_page, _DecisionGroup
from hub.store.base import utcnow
from tests.support.hub import HubEnv

LENDER = "lender-jinqiao"
DATASET = "dealer-huadong.loan-applications"
SUBJECTS = 1000


def _page_of_distinct_subjects(revision: str) -> _DecisionGroup:
    """One allowing decision over 1,000 records of 1,000 subjects, with 128-character keys."""
    decision = Decision(
        allow=True,
        obligations={"vin": "keep", "mobile": "mask"},
        reasons=(),
        decision_id="dec_parts",
        policy_revision=revision,
    )
    group = _DecisionGroup(decision=decision, input_digest="0" * 64)
    for i in range(SUBJECTS):
        subject = f"psn_{i:022d}"
        key = f"{i:06d}-".ljust(128, "k")
        group.consents[subject] = (f"cns_{i:016d}", f"rcp_{i:016d}")
        group.key_subject[key] = subject
        (group.withheld_keys if i % 10 == 0 else group.released_keys).append(key)
    group.erased_keys.extend(group.withheld_keys[:5])
    return group


def _audit(hub: HubEnv, request_id: str) -> None:
    agreement_id = hub.agreement(LENDER, DATASET)
    partner = hub.partner(LENDER)
    caller = AuthenticatedPartner(
        partner_id=str(partner["partner_id"]),
        client_id="client",
        role="lender",
        jurisdiction="CN",
        name="lender",
        scopes=frozenset({"records:pull"}),
        token_id="tok",
    )
    gates = hub.runtime.gates
    with hub.session() as session:
        terms = registry.release_terms(
            session, agreement_id=agreement_id, partner_id=caller.partner_id
        )
        request = PullRequest(
            caller=caller, agreement_id=agreement_id, request_id=request_id, now=utcnow()
        )
        group = _page_of_distinct_subjects(gates.policy.revision)
        _audit_page(session, gates, request, terms.agreement, {"dec_parts": group})
        session.commit()


def test_a_large_decision_is_split_by_subject(hub: HubEnv) -> None:
    _audit(hub, "req_parts")
    with hub.session() as session:
        rows = session.scalars(
            select(AuditEvent.canonical)
            .where(AuditEvent.request_id == "req_parts")
            .order_by(AuditEvent.index)
        ).all()
    events = [json.loads(row) for row in rows]
    n = SUBJECTS // pipeline.MAX_RECORDS_PER_EVENT
    assert [e["part"] for e in events] == [[i, n] for i in range(1, n + 1)]
    assert all(len(row) < 256 * 1024 for row in rows)
    seen: list[str] = []
    released = withheld = erased = 0
    for event in events:
        (record,) = event["decisions"]
        subjects = set(record["subjects"])
        seen += record["subjects"]
        assert set(record["consents"]) == subjects
        keys = record["released_keys"] + record["withheld_keys"]
        assert {f"psn_{int(k[:6]):022d}" for k in keys} == subjects  # whole subjects per event
        assert event["released"] == len(record["released_keys"])
        assert event["withheld"] == len(record["withheld_keys"])
        released += event["released"]
        withheld += event["withheld"]
        erased += len(record["erased_keys"])
    assert sorted(seen) == sorted(f"psn_{i:022d}" for i in range(SUBJECTS))
    assert (released, withheld, erased) == (900, 100, 5)


def test_one_event_would_not_fit(hub: HubEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "MAX_RECORDS_PER_EVENT", 10 * SUBJECTS)
    with pytest.raises(InvalidEventError, match="exceeds"):
        _audit(hub, "req_whole")
