from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import rfc8785
from sqlalchemy.orm import Session, sessionmaker

from hub.audit import (
    InvalidAuditQueryError,
    InvalidEventError,
    append_event,
    append_events,
    get_event,
    log_size,
    query_events,
)
from tests.audit.audit_helpers import release_event


def test_append_assigns_gap_free_indices_and_stores_canonical_bytes(session: Session) -> None:
    first = append_event(session, release_event(0))
    second = append_event(session, release_event(1))
    session.commit()

    assert (first.index, second.index) == (0, 1)
    assert first.event_id.startswith("evt_") and first.event_id != second.event_id
    row = get_event(session, 1)
    assert row is not None
    doc = orjson.loads(row.canonical)
    assert doc["index"] == 1 and doc["event_id"] == second.event_id
    assert doc["time"].endswith("Z") and datetime.fromisoformat(doc["time"]) == row.created_at
    assert row.canonical == rfc8785.dumps(doc)
    assert row.leaf_hash == hashlib.sha256(b"\x00" + row.canonical).digest() == second.leaf_hash
    assert row.kind == "release" and row.partner_id == "prt_lender1"
    assert query_events(session, subject="psn_000001") == [row]
    assert row.event() == doc


def test_append_does_not_commit(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as s:
        append_event(s, release_event(0))
        s.rollback()
    with session_factory() as s:
        assert log_size(s) == 0
        assert append_event(s, release_event(1)).index == 0  # the rolled-back index is reused


def test_append_events_batch_is_consecutive(session: Session) -> None:
    append_event(session, release_event(0))
    batch = append_events(session, [release_event(n) for n in range(1, 6)])
    session.commit()
    assert [a.index for a in batch] == [1, 2, 3, 4, 5]
    assert append_events(session, []) == []


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"kind": ""},
        {"kind": 3},
        {"kind": "release", "index": 7},
        {"kind": "release", "event_id": "evt_x"},
        {"kind": "release", "time": "now"},
        {"kind": "release", "partner_id": 5},
        {"kind": "release", "subjects": "psn_1"},
        {"kind": "release", "subjects": [1]},
        {"kind": "release", "subjects": ["x" * 65]},
        {"kind": "release", "decisions": {"subjects": ["psn_1"]}},
        {"kind": "release", "decisions": [{"subjects": "psn_1"}]},
        {"kind": "release", "decisions": ["psn_1"]},
        {"kind": "release", "count": 2**60},
        {"kind": "release", "blob": object()},
        {"kind": "release", "nan": float("nan")},
    ],
)
def test_invalid_events_are_refused(session: Session, event: dict[str, object]) -> None:
    with pytest.raises(InvalidEventError):
        append_event(session, event)
    assert log_size(session) == 0


def test_query_filters_and_pages(session: Session) -> None:
    for n in range(10):
        append_event(session, release_event(n))
    append_event(session, release_event(10, kind="release.denied", outcome="denied"))
    session.commit()

    lender0 = query_events(session, partner_id="prt_lender0")
    assert [e.index for e in lender0] == [0, 3, 6, 9]
    denied = query_events(session, kind="release.denied")
    assert [e.index for e in denied] == [10]
    assert [e.index for e in query_events(session, outcome="denied")] == [10]
    page1 = query_events(session, limit=4)
    page2 = query_events(session, limit=4, after_index=page1[-1].index)
    assert [e.index for e in page1 + page2] == list(range(8))

    now = datetime.now(UTC)
    assert len(query_events(session, since=now - timedelta(minutes=5))) == 11
    assert query_events(session, since=now + timedelta(minutes=5)) == []
    assert query_events(session, until=now - timedelta(minutes=5)) == []


def test_subjects_are_indexed_from_events_and_their_decisions(session: Session) -> None:
    append_event(session, release_event(0))  # top-level subjects: psn_000000
    pipeline_event = {
        "kind": "release",
        "decisions": [
            {"decision_id": "d1", "subjects": ["psn_a", "psn_b"]},
            {"decision_id": "d2", "subjects": ["psn_b", "psn_c"]},
            {"decision_id": "d3"},
        ],
    }
    append_event(session, pipeline_event)
    append_event(session, {"kind": "release", "subjects": ["psn_c"], "decisions": []})
    append_event(session, release_event(3, kind="release.denied", outcome="denied"))
    session.commit()

    def found(subject: str, **kwargs: object) -> list[int]:
        return [e.index for e in query_events(session, subject=subject, **kwargs)]  # type: ignore[arg-type]

    assert found("psn_000000") == [0]
    assert found("psn_a") == [1]
    assert found("psn_b") == [1]  # named by two decisions, indexed once
    assert found("psn_c") == [1, 2]
    assert found("psn_c", after_index=1) == [2]
    assert found("psn_c", limit=1) == [1]
    assert found("psn_000003", outcome="denied") == [3]
    assert found("psn_000003", outcome="allowed") == []
    assert found("psn_nobody") == []


@pytest.mark.parametrize("kwargs", [{"limit": 0}, {"limit": 1001}, {"since": datetime(2026, 1, 1)}])
def test_query_rejects_bad_arguments(session: Session, kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidAuditQueryError):
        query_events(session, **kwargs)  # type: ignore[arg-type]
