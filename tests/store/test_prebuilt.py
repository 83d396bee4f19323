"""``PrebuiltSelect`` runs a statement on the driver's cursor: its rows must be what
``Session.execute`` returns for the same statement (values and their types: UTC datetimes, JSON
documents, booleans), and its failures SQLAlchemy's, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    Select,
    String,
    Table,
    bindparam,
    create_engine,
    event,
    exc,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.orm import Session, sessionmaker

from hub.audit.service import _MAX_INDEX
from hub.auth.tokens import _PARTNER_BY_CLIENT_ID
from hub.records.models import Record
from hub.registry.agreements import _RELEASE_TERMS
from hub.registry.models import Agreement
from hub.release.pipeline import _ONE_RECORD
from hub.store.base import JSONType, OpaqueJSONDocument, UTCDateTime
from hub.store.db import make_engine
from hub.store.prebuilt import PrebuiltSelect, execute_driver_sql
from tests.support.databases import TestDatabases
from tests.support.hub import HubEnv

LENDER = "lender-jinqiao"
DATASET = "dealer-huadong.loan-applications"

_metadata = MetaData()
PROBES = Table(
    "prebuilt_probes",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    Column("at", UTCDateTime(), nullable=True),
    Column("document", JSONType, nullable=True),
    Column("opaque", OpaqueJSONDocument(), nullable=True),
    Column("flag", Boolean, nullable=True),
    Column("big", BigInteger, nullable=True),
    Column("ratio", Float, nullable=True),
    Column("blob", LargeBinary, nullable=True),
)
EAST_8 = timezone(timedelta(hours=8))
ROWS: list[dict[str, Any]] = [
    {
        "id": 1,
        "name": "零售 é",
        "status": "active",
        "at": datetime(2026, 11, 26, 5, 30, 0, 123456, tzinfo=UTC),
        "document": {"a": [1, 2.5, None, True], "b": {"c": "中文"}},
        "opaque": {"field": "djE6AAAA"},
        "flag": True,
        "big": 2**62,
        "ratio": 0.1,
        "blob": b"\x00\xff",
    },
    {  # stored as 2026-11-26 00:00:00 UTC, exactly on the second
        "id": 2,
        "name": None,
        "status": "denied",
        "at": datetime(2026, 11, 26, 8, 0, 0, tzinfo=EAST_8),
        "document": [],
        "opaque": None,
        "flag": False,
        "big": -1,
        "ratio": None,
        "blob": None,
    },
    {
        "id": 3,
        "name": "",
        "status": "requested",
        "at": None,
        "document": None,
        "opaque": {},
        "flag": None,
        "big": None,
        "ratio": -2.5,
        "blob": b"",
    },
]
STATEMENTS: dict[str, tuple[Select[Any], dict[str, Any]]] = {
    "every column": (select(PROBES).order_by(PROBES.c.id), {}),
    "by id": (select(PROBES).where(PROBES.c.id == bindparam("id")), {"id": 1}),
    "no row": (select(PROBES).where(PROBES.c.id == bindparam("id")), {"id": 99}),
    # a datetime parameter goes through the column's bind processor (UTC, SQLite's text form)
    "since": (
        select(PROBES.c.id, PROBES.c.at)
        .where(PROBES.c.at >= bindparam("since", type_=UTCDateTime()))
        .order_by(PROBES.c.id),
        {"since": datetime(2026, 11, 26, 8, 0, 0, tzinfo=EAST_8)},
    ),
    # an IN list fixed in the statement is expanded as SQLAlchemy expands it
    "fixed IN list": (
        select(PROBES.c.id, PROBES.c.status)
        .where(PROBES.c.status.not_in(["requested", "denied"]), PROBES.c.id > bindparam("after"))
        .order_by(PROBES.c.id),
        {"after": 0},
    ),
    "aggregate": (select(func.max(PROBES.c.id), func.count()).select_from(PROBES), {}),
    "labelled": (
        select(PROBES.c.id.label("x"), PROBES.c.document["b"].label("b")).where(
            PROBES.c.id == bindparam("id")
        ),
        {"id": 1},
    ),
}


@pytest.fixture(scope="module")
def engine(databases: TestDatabases) -> Iterator[Engine]:
    made = make_engine(databases.new("prebuilt"))
    _metadata.create_all(made)
    with made.begin() as connection:
        connection.execute(insert(PROBES), ROWS)
    yield made
    made.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with sessionmaker(bind=engine)() as made:
        yield made
        made.rollback()


def _typed(rows: list[tuple[Any, ...]]) -> list[list[tuple[type, Any]]]:
    return [[(type(value), value) for value in row] for row in rows]


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_rows_are_what_the_session_returns(session: Session, name: str) -> None:
    statement, params = STATEMENTS[name]
    expected = [tuple(row) for row in session.execute(statement, params)]
    prebuilt = PrebuiltSelect(statement)
    for _ in range(2):  # the first run sets the result processors up, the second reuses them
        assert _typed(prebuilt.rows(session, params)) == _typed(expected)
        assert _typed(prebuilt.rows(session.connection(), params)) == _typed(expected)


def test_datetimes_are_utc_and_aware(session: Session) -> None:
    rows = PrebuiltSelect(select(PROBES.c.at).order_by(PROBES.c.id)).rows(session, {})
    assert rows == [
        (datetime(2026, 11, 26, 5, 30, 0, 123456, tzinfo=UTC),),
        (datetime(2026, 11, 26, 0, 0, 0, tzinfo=UTC),),
        (None,),
    ]
    assert rows[0][0].tzinfo is UTC


def test_first_and_one(session: Session) -> None:
    by_id = PrebuiltSelect(select(PROBES.c.id).where(PROBES.c.id == bindparam("id")))
    assert by_id.first(session, {"id": 2}) == (2,)
    assert by_id.first(session, {"id": 99}) is None
    assert by_id.one(session, {"id": 2}) == (2,)
    with pytest.raises(exc.NoResultFound):
        by_id.one(session, {"id": 99})
    with pytest.raises(exc.MultipleResultsFound):
        PrebuiltSelect(select(PROBES.c.id)).one(session, {})


def test_pending_changes_are_flushed_first_as_by_execute(session: Session) -> None:
    session.execute(insert(PROBES).values(id=10, status="active"))
    probe = PrebuiltSelect(select(func.count()).select_from(PROBES))
    assert probe.one(session, {}) == (len(ROWS) + 1,)


def test_a_missing_parameter_fails_as_it_does_through_sqlalchemy(session: Session) -> None:
    statement = select(PROBES.c.id).where(PROBES.c.id == bindparam("id"))
    with pytest.raises(exc.StatementError) as through_sqlalchemy:
        session.execute(statement, {})
    session.rollback()
    with pytest.raises(exc.StatementError) as prebuilt:
        PrebuiltSelect(statement).rows(session, {})
    assert type(prebuilt.value) is type(through_sqlalchemy.value)


def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(
    engine: Engine, databases: TestDatabases
) -> None:
    gone = Table("prebuilt_gone", MetaData(), Column("id", Integer, primary_key=True))
    statement = select(gone.c.id)
    errors: list[BaseException] = []
    for run in (
        lambda s: s.execute(statement).all(),
        lambda s: PrebuiltSelect(statement).rows(s, {}),
    ):
        with sessionmaker(bind=engine)() as session, pytest.raises(exc.DBAPIError) as raised:
            run(session)
        errors.append(raised.value)
    through_sqlalchemy, prebuilt = errors
    assert type(prebuilt) is type(through_sqlalchemy)  # OperationalError (a 503) on SQLite
    assert type(prebuilt.orig) is type(through_sqlalchemy.orig)
    assert prebuilt.connection_invalidated is False


def test_cursor_listeners_see_every_statement(engine: Engine, session: Session) -> None:
    seen: list[str] = []

    def listener(*args: Any) -> None:
        seen.append(args[2])

    prebuilt = PrebuiltSelect(select(PROBES.c.id).where(PROBES.c.id == bindparam("id")))
    assert prebuilt.rows(session, {"id": 1}) == [(1,)]
    assert seen == []
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert prebuilt.rows(session, {"id": 1}) == [(1,)]
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(seen) == 1 and "prebuilt_probes" in seen[0]


def test_an_expanding_parameter_given_per_run_is_refused(session: Session) -> None:
    statement = select(PROBES.c.id).where(PROBES.c.id.in_(bindparam("ids", expanding=True)))
    with pytest.raises(ValueError, match="expanding"):
        PrebuiltSelect(statement).rows(session, {"ids": [1]})


def test_a_lost_connection_is_invalidated_as_by_sqlalchemy(
    engine: Engine, databases: TestDatabases
) -> None:
    if not databases.is_postgres:
        pytest.skip("PostgreSQL connections only (SQLite has no server to lose)")
    assert databases.server_url
    prebuilt = PrebuiltSelect(select(PROBES.c.id).where(PROBES.c.id == bindparam("id")))
    admin = create_engine(databases.server_url, isolation_level="AUTOCOMMIT")
    try:
        with sessionmaker(bind=engine)() as session:
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with admin.connect() as connection:
                connection.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
            with pytest.raises(exc.OperationalError) as raised:
                prebuilt.rows(session, {"id": 1})
            assert raised.value.connection_invalidated
        with sessionmaker(bind=engine)() as session:  # the pool hands out a working one
            assert prebuilt.rows(session, {"id": 1}) == [(1,)]
    finally:
        admin.dispose()


def test_the_hubs_prebuilt_statements_return_what_the_session_does(hub: HubEnv) -> None:
    agreement_id = hub.agreement(LENDER, DATASET)
    partner = hub.partner(LENDER)
    with hub.session() as session:
        record_key, purpose = session.execute(
            select(Record.record_key, Agreement.purpose)
            .join(Agreement, Agreement.dataset_id == Record.dataset_id)
            .where(Agreement.id == agreement_id)
            .order_by(Record.record_key)
            .limit(1)
        ).one()
        runs: list[tuple[PrebuiltSelect, dict[str, Any]]] = [
            (_PARTNER_BY_CLIENT_ID, {"client_id": partner["client_id"]}),
            (_RELEASE_TERMS, {"agreement_id": agreement_id}),
            (_MAX_INDEX, {}),
            (
                _ONE_RECORD,
                {
                    "dataset_id": DATASET,
                    "record_key": record_key,
                    "recipient_id": partner["partner_id"],
                    "recipient_role": "lender",
                    "purpose": purpose,
                },
            ),
        ]
        for prebuilt, params in runs:
            expected = [tuple(row) for row in session.execute(prebuilt.statement, params)]
            assert expected and _typed(prebuilt.rows(session, params)) == _typed(expected)


def _insert_sql(engine: Engine) -> str:
    placeholder = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    return f"INSERT INTO prebuilt_probes (id, status) VALUES ({placeholder}, {placeholder})"


def test_driver_sql_writes_as_exec_driver_sql_does(engine: Engine, session: Session) -> None:
    sql = _insert_sql(engine)
    execute_driver_sql(session.connection(), sql, (20, "active"))
    execute_driver_sql(session.connection(), sql, [(21, "denied"), (22, "denied")], many=True)
    count = select(func.count()).select_from(PROBES).where(PROBES.c.id >= 20)
    assert session.execute(count).scalar_one() == 3


def test_a_failed_driver_sql_write_raises_as_exec_driver_sql_does(engine: Engine) -> None:
    sql = _insert_sql(engine)
    errors: list[BaseException] = []
    for run in (
        lambda c: c.exec_driver_sql(sql, (1, "active")),
        lambda c: execute_driver_sql(c, sql, (1, "active")),
    ):
        with engine.connect() as connection, pytest.raises(exc.DBAPIError) as raised:
            run(connection)
        errors.append(raised.value)
    through_sqlalchemy, direct = errors
    assert type(direct) is type(through_sqlalchemy) is exc.IntegrityError
    assert type(direct.orig) is type(through_sqlalchemy.orig)


def test_cursor_listeners_see_driver_sql_writes(engine: Engine, session: Session) -> None:
    seen: list[str] = []

    def listener(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", listener)
    try:
        execute_driver_sql(session.connection(), _insert_sql(engine), (30, "active"))
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert seen == [_insert_sql(engine)]
