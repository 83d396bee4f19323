"""PostgreSQL connections are checked on checkout without a round trip when they were just used,
and replaced when the server has ended them (``hub.store.db._ping_idle_connections``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from hub.store import db
from hub.store.db import make_engine
from tests.support.databases import TestDatabases


@pytest.fixture
def engine(databases: TestDatabases) -> Iterator[Engine]:
    if not databases.is_postgres:
        pytest.skip("PostgreSQL connections only (SQLite has no server to lose)")
    made = make_engine(databases.new("connection_checks"), pool_size=1, max_overflow=0)
    yield made
    made.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        pid: int = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return pid


def _count_pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    pings: list[Any] = []
    do_ping = engine.dialect.do_ping

    def counting_ping(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return do_ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counting_ping)
    return pings


def test_a_connection_just_used_is_handed_out_without_a_ping(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _backend_pid(engine)
    pings = _count_pings(engine, monkeypatch)
    assert _backend_pid(engine) == first
    assert pings == []


def test_an_idle_connection_is_pinged(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _backend_pid(engine)
    pings = _count_pings(engine, monkeypatch)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert _backend_pid(engine) == first
    assert len(pings) == 1


def test_a_connection_the_server_ended_is_replaced_before_use(
    engine: Engine, databases: TestDatabases
) -> None:
    ended = _backend_pid(engine)
    assert databases.server_url
    admin = create_engine(databases.server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            assert connection.execute(
                text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": ended}
            ).scalar_one()
    finally:
        admin.dispose()
    # within the idle window: no ping is due, but the server's goodbye is waiting on the socket
    assert _backend_pid(engine) != ended
