"""SQLite: an append holds the write lock before it reads the highest index.

The hub's engines (``make_engine``) begin every transaction with ``BEGIN IMMEDIATE``, so the
append takes no lock of its own there; any other SQLite engine gets the append's own lock
statement (an UPDATE matching no row). Concurrent appenders are covered by
``test_audit_concurrency.py``; this checks which of the two a connection gets.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session

from hub.audit.models import AUDIT_TABLES, AuditEvent
from hub.audit.service import append_event
from hub.store.db import make_engine
from tests.audit.audit_helpers import release_event


def _statements_of_one_append(engine: Engine) -> list[str]:
    AuditEvent.metadata.create_all(engine, tables=AUDIT_TABLES)
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: sent.append(a[2].split()[0]))
    with Session(engine) as session:
        append_event(session, release_event(1))
        session.commit()
    return sent


def _in_transaction(engine: Engine) -> bool:
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
        return bool(conn.connection.driver_connection.in_transaction)


@pytest.mark.parametrize("hub_engine", [True, False])
def test_the_write_lock_is_taken_once(tmp_path: Path, hub_engine: bool) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    engine = make_engine(url) if hub_engine else create_engine(url)
    try:
        statements = _statements_of_one_append(engine)
        # the hub's engine: already inside BEGIN IMMEDIATE when the append reads MAX(index)
        assert ("UPDATE" in statements) is not hub_engine
        assert statements.index("SELECT") < statements.index("INSERT")
        if hub_engine:
            assert _in_transaction(engine)
    finally:
        engine.dispose()


def test_a_hub_transaction_holds_the_write_lock_from_its_start(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    try:
        AuditEvent.metadata.create_all(engine, tables=AUDIT_TABLES)
        with engine.connect() as first, engine.connect() as second:
            second.connection.driver_connection.execute("PRAGMA busy_timeout = 0")  # no waiting
            first.exec_driver_sql("SELECT 1")  # begins: takes the write lock at once
            with pytest.raises(Exception, match="locked"):
                second.exec_driver_sql("SELECT 1")
    finally:
        engine.dispose()
