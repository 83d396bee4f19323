"""Engine and session handling: one session per unit of work, committed on success."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

#: Request handlers run on anyio's thread pool (40 threads); the connection pool must cover
#: them all, or requests queue for a connection and time out under load.
POOL_SIZE = 10
MAX_OVERFLOW = 40
#: ``Connection.info`` key set on SQLite connections of :func:`make_engine`, whose every
#: transaction begins with ``BEGIN IMMEDIATE`` (holding the write lock from the start), so a
#: writer that must hold the lock before it reads (the audit append) need not take it again.
SQLITE_BEGINS_IMMEDIATE = "tollhouse.sqlite_begins_immediate"


def json_loads(text: str | bytes) -> Any:
    """JSON columns are read with orjson (several times faster than ``json.loads``; the records'
    ``sealed`` column is read on every pull). What orjson refuses but the standard library
    reads (integers beyond 64 bits, ``NaN``) falls back to ``json.loads``."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout for concurrent use."""
    kwargs.setdefault("json_deserializer", json_loads)
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", POOL_SIZE)
        kwargs.setdefault("max_overflow", MAX_OVERFLOW)
    if url.startswith("sqlite"):
        connect_args = {"check_same_thread": False, "timeout": 30}
        engine = create_engine(url, connect_args=connect_args, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, decide when a transaction begins, so BEGIN IMMEDIATE
            # can take the write lock up front where ordering matters.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
            connection_record.info[SQLITE_BEGINS_IMMEDIATE] = True  # see _sqlite_begin

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Every unit of work that reads and then appends to the audit log must hold the
            # write lock from the start: a deferred transaction that read before another
            # connection committed cannot upgrade to a writer (SQLITE_BUSY_SNAPSHOT).
            # Sent on the driver's connection: through SQLAlchemy's execution path it cost
            # ~80 us of every request's ~1.4 ms (statement events do not see it).
            conn.connection.driver_connection.execute("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits when the block succeeds and rolls back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
