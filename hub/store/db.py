"""Engine and session handling: one session per unit of work, committed on success."""

from __future__ import annotations

import json
import select
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

#: Request handlers run on anyio's thread pool (40 threads); the connection pool must cover
#: them all, or requests queue for a connection and time out under load.
POOL_SIZE = 10
MAX_OVERFLOW = 40
#: ``Connection.info`` key set on SQLite connections of :func:`make_engine`, whose every
#: transaction begins with ``BEGIN IMMEDIATE`` (holding the write lock from the start), so a
#: writer that must hold the lock before it reads (the audit append) need not take it again.
SQLITE_BEGINS_IMMEDIATE = "tollhouse.sqlite_begins_immediate"
#: A pooled PostgreSQL connection idle for longer than this is pinged (one round trip) before
#: it is handed out; one back in the pool for less is handed out as it is (see
#: :func:`_ping_idle_connections`).
PING_AFTER_IDLE_SECONDS = 1.0
_CHECKED_IN_AT = "tollhouse.checked_in_at"


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
            connection_record.info[SQLITE_BEGINS_IMMEDIATE] = True  # _sqlite_begin_immediate

        # The dialect's own begin step, not a "begin" event listener: one engine-level listener
        # makes every statement, commit and rollback of every connection walk the engine's
        # event dispatch (~120 calls per one-record pull); the dialect is this engine's own.
        engine.dialect.do_begin = _sqlite_begin_immediate  # type: ignore[method-assign,assignment]
        return engine
    engine = create_engine(url, **kwargs)
    _ping_idle_connections(engine)
    return engine


def _sqlite_begin_immediate(connection: Any) -> None:
    """Every unit of work that reads and then appends to the audit log must hold the write lock
    from the start: a deferred transaction that read before another connection committed cannot
    upgrade to a writer (SQLITE_BUSY_SNAPSHOT). Sent on the driver's connection: through
    SQLAlchemy's execution path it cost ~80 us of every request's ~1.4 ms (statement events do
    not see it)."""
    connection.driver_connection.execute("BEGIN IMMEDIATE")


def _has_input(fd: int) -> bool:
    """Whether the server has sent anything on an idle connection (no round trip): a server
    that ends a session (a restart, ``pg_terminate_backend``, an idle timeout) says so and
    closes its end, which leaves the socket readable."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def _ping_idle_connections(engine: Engine) -> None:
    """SQLAlchemy's ``pool_pre_ping``, for connections that have been idle: a request checks
    a connection out several times (its sign-in, its rate limit and its work each commit), and
    a ping on every checkout was a round trip each time. A connection used a moment ago and on
    which the server has sent nothing since is handed out as it is; one idle for longer (a
    proxy may have cut it silently) or with input waiting (the server ended the session) is
    pinged, and one the driver already knows to be closed or broken is replaced without one.
    A connection that still breaks unseen fails its statement as a disconnect, on which
    SQLAlchemy replaces every connection of the pool older than the failure."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, connection_record: Any) -> None:
        if dbapi_connection is not None:
            connection_record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, connection_record: Any, _proxy: Any) -> None:
        checked_in_at = connection_record.info.get(_CHECKED_IN_AT)
        if checked_in_at is None:  # connected for this checkout
            return
        if dbapi_connection.closed or dbapi_connection.broken:
            raise exc.InvalidatePoolError("the connection is closed")
        if time.monotonic() - checked_in_at < PING_AFTER_IDLE_SECONDS and not _has_input(
            dbapi_connection.fileno()
        ):
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.InvalidatePoolError(str(error)) from error
            raise


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
