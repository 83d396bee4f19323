"""One event appended alone (``append_event``, a pull's page) is written by driver SQL built once
(on PostgreSQL one statement for the event and its subjects); several by SQLAlchemy inserts.

Both must store the same thing: gap-free indices, the same canonical bytes and leaf hashes (the
Merkle tree, the signed heads and the export verifier depend on them), the same columns and
subject rows.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, create_engine, delete, event, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub.audit import append_event, append_events, get_event, log_size, query_events
from hub.audit.events import event_subjects, rfc3339
from hub.audit.models import AUDIT_TABLES, AuditEvent, AuditEventSubject
from hub.audit.service import leaf_hashes
from tests.audit.audit_helpers import release_event

# A pull's event for one record: its subjects are in its decision, plus one at the top level.
PULL_EVENT: dict[str, Any] = {
    "kind": "release",
    "partner_id": "prt_lender1",
    "request_id": "req_1",
    "outcome": "released",
    "decisions": [
        {"decision_id": "dec_1", "subjects": ["psn_b", "psn_a"], "released_keys": ["LA-0000001"]}
    ],
    "subjects": ["psn_c"],
    "counts": {"records": 1},
}
FIXED_NOW = datetime(2026, 11, 26, 5, 30, 0, 123456, tzinfo=UTC)
# The bytes and leaf hash of PULL_EVENT at index 0 with FIXED_NOW and event id "evt_fixed", as
# the append path wrote them before one event had a path of its own.
GOLDEN_CANONICAL = (
    b'{"counts":{"records":1},"decisions":[{"decision_id":"dec_1","released_keys":["LA-0000001"],'
    b'"subjects":["psn_b","psn_a"]}],"event_id":"evt_fixed","index":0,"kind":"release",'
    b'"outcome":"released","partner_id":"prt_lender1","request_id":"req_1","subjects":["psn_c"],'
    b'"time":"2026-11-26T05:30:00.123456Z"}'
)
GOLDEN_LEAF = bytes.fromhex("c501486fa3cea3d9c7a6c10158b475d32b49f9c8415942ea6a6c0beed7b6c51e")

# Events naming no subject, one, and several (PostgreSQL has a statement for each case).
ONE_OF_EACH: list[dict[str, Any]] = [
    {"kind": "release.denied", "partner_id": "prt_x", "outcome": "denied", "reasons": ["r"]},
    release_event(1),
    PULL_EVENT,
    {"kind": "release", "subjects": ["psn_é中文", "psn_" + "z" * 60], "purpose": None},
    {"kind": "regulator.lookup", "subjects": [], "decisions": []},
]


def _fix_id_and_time(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = iter(["evt_fixed", "evt_fixed2"])
    monkeypatch.setattr("hub.audit.service.new_id", lambda prefix: next(ids))
    monkeypatch.setattr("hub.audit.service.utcnow", lambda: FIXED_NOW)


@pytest.mark.parametrize("alone", [True, False])
def test_the_leaf_of_an_event_is_the_same_alone_or_in_a_batch(
    session: Session, monkeypatch: pytest.MonkeyPatch, alone: bool
) -> None:
    _fix_id_and_time(monkeypatch)
    if alone:
        appended = append_event(session, PULL_EVENT)
    else:
        appended = append_events(session, [PULL_EVENT, release_event(1)])[0]
    session.commit()
    row = get_event(session, 0)
    assert row is not None
    assert row.canonical == GOLDEN_CANONICAL
    assert row.leaf_hash == appended.leaf_hash == GOLDEN_LEAF
    assert leaf_hashes(session, 0, 1) == [GOLDEN_LEAF]
    assert row.created_at == FIXED_NOW


def _stored(session: Session) -> list[dict[str, Any]]:
    """Every stored event as comparable values, with its subject rows."""
    subjects: dict[int, set[str]] = {}
    for subject, index in session.execute(
        select(AuditEventSubject.subject, AuditEventSubject.event_index)
    ):
        subjects.setdefault(index, set()).add(subject)
    out = []
    for row in session.scalars(select(AuditEvent).order_by(AuditEvent.index)):
        doc = orjson.loads(row.canonical)
        assert row.leaf_hash == hashlib.sha256(b"\x00" + row.canonical).digest()
        assert doc["index"] == row.index and doc["event_id"] == row.event_id
        assert doc["time"] == rfc3339(row.created_at)
        assert row.created_at.tzinfo is not None
        out.append(
            {
                "event": {k: v for k, v in doc.items() if k not in ("event_id", "index", "time")},
                "columns": (
                    row.kind,
                    row.partner_id,
                    row.dataset_id,
                    row.purpose,
                    row.outcome,
                    row.request_id,
                ),  # fmt: skip
                "subjects": subjects.get(row.index, set()),
            }
        )
    return out


def test_alone_and_batched_appends_store_the_same_rows(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as s:
        alone = [append_event(s, e) for e in ONE_OF_EACH]
        s.commit()
        stored_alone = _stored(s)
    assert [a.index for a in alone] == list(range(len(ONE_OF_EACH)))
    with session_factory() as s:
        s.execute(delete(AuditEventSubject))
        s.execute(delete(AuditEvent))
        batched = append_events(s, ONE_OF_EACH)
        s.commit()
        stored_batched = _stored(s)
    assert [a.index for a in batched] == list(range(len(ONE_OF_EACH)))
    assert stored_alone == stored_batched
    for stored, original in zip(stored_alone, ONE_OF_EACH, strict=True):
        assert stored["event"] == original
        assert stored["subjects"] == event_subjects(original)
        assert stored["columns"] == tuple(
            original.get(k)
            for k in ("kind", "partner_id", "dataset_id", "purpose", "outcome", "request_id")
        )


def test_indices_stay_gap_free_mixing_alone_and_batched_appends(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory() as s:
        got = [append_event(s, ONE_OF_EACH[0]).index]
        got += [a.index for a in append_events(s, ONE_OF_EACH[1:3])]
        nested = s.begin_nested()
        append_event(s, ONE_OF_EACH[2])
        nested.rollback()
        got.append(append_event(s, ONE_OF_EACH[3]).index)
        s.commit()
        got.append(append_event(s, ONE_OF_EACH[4]).index)
        s.commit()
        assert got == [0, 1, 2, 3, 4]
        assert log_size(s) == 5 and len(leaf_hashes(s, 0, 5)) == 5
        assert [e.index for e in query_events(s, subject="psn_c")] == [2]  # not the rolled back


def _statements_of_a_second_append(engine: Engine, evt: dict[str, Any]) -> list[str]:
    sent: list[str] = []

    def seen(*args: Any) -> None:
        sent.append(args[2].split()[0].upper())

    with Session(engine) as s:
        append_event(s, release_event(0))  # takes the lock and reads the highest index
        event.listen(engine, "before_cursor_execute", seen)
        try:
            append_event(s, evt)
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        s.rollback()
    return sent


@pytest.mark.parametrize("evt", ONE_OF_EACH[:4], ids=["none", "one", "several", "unicode"])
def test_one_event_is_one_statement_on_postgresql(engine: Engine, evt: dict[str, Any]) -> None:
    sent = _statements_of_a_second_append(engine, evt)
    if engine.dialect.name == "postgresql":
        assert sent == (["WITH"] if event_subjects(evt) else ["INSERT"])
    else:  # SQLite has no data-modifying WITH: the event, then its subjects
        assert sent == (["INSERT", "INSERT"] if event_subjects(evt) else ["INSERT"])


def test_a_database_error_of_one_event_is_sqlalchemys(session: Session) -> None:
    append_event(session, release_event(0))
    # a row at the next index behind the log's back: the append's INSERT must fail, wrapped
    session.execute(
        insert(AuditEvent).values(
            index=1, event_id="evt_intruder", created_at=FIXED_NOW, kind="x",
            canonical=b"{}", leaf_hash=b"\x00" * 32,
        )
    )  # fmt: skip
    with pytest.raises(IntegrityError):
        append_event(session, PULL_EVENT)
    session.rollback()
    assert log_size(session) == 0


def test_a_driver_the_statements_do_not_fit_gets_sqlalchemys_inserts(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'named.db'}", paramstyle="named")
    try:
        AuditEvent.metadata.create_all(engine, tables=AUDIT_TABLES)
        sent: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
        with Session(engine) as s:
            assert [append_event(s, e).index for e in ONE_OF_EACH] == list(range(len(ONE_OF_EACH)))
            s.commit()
            stored = _stored(s)
        assert all("?" not in statement for statement in sent)
        assert [row["event"] for row in stored] == ONE_OF_EACH
        assert [row["subjects"] for row in stored] == [event_subjects(e) for e in ONE_OF_EACH]
    finally:
        engine.dispose()


def test_an_event_alone_stores_its_time_as_a_batch_does(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stored value itself, as the database holds it (SQLite: text that range filters
    compare), not only what the ORM reads back."""
    monkeypatch.setattr("hub.audit.service.utcnow", lambda: FIXED_NOW)
    append_event(session, PULL_EVENT)
    append_events(session, [release_event(1), release_event(2)])
    session.commit()
    stored = session.execute(text('SELECT created_at FROM audit_events ORDER BY "index"'))
    alone, *batched = stored.scalars().all()
    assert batched == [alone, alone]
