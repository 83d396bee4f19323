"""PostgreSQL: an append that waits for another transaction's append lock reads the next index
only once the lock is granted, so it continues after the holder's events (one round trip:
``hub.audit.models.NEXT_INDEX_FUNCTION``)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from hub.audit import AuditEvent, append_event, append_events
from tests.audit.audit_helpers import release_event
from tests.support.locks import waits_for_a_lock


@pytest.mark.postgres
def test_a_waiting_append_continues_after_the_lock_holders_events(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: its appends never wait on each other's lock")
    with session_factory() as first:
        append_event(first, release_event(0))
        first.commit()
    holder = session_factory()
    held = append_events(holder, [release_event(1), release_event(2)])  # indexes 1, 2
    assert [e.index for e in held] == [1, 2]
    got: list[int] = []
    done = threading.Event()

    def waiting_append() -> None:
        try:
            with session_factory() as second:
                got.append(append_event(second, release_event(3)).index)
                second.commit()
        finally:
            done.set()

    thread = threading.Thread(target=waiting_append)
    thread.start()
    try:
        assert waits_for_a_lock(engine, done), "the second append waits for the holder's lock"
        holder.commit()
    finally:
        holder.close()
        thread.join(timeout=60)
    assert got == [3], "read after the lock: it sees the holder's two events"
    with session_factory() as check:
        indexes = check.scalars(select(AuditEvent.index).order_by(AuditEvent.index)).all()
    assert indexes == [0, 1, 2, 3]
