"""The Alembic history builds exactly the schema the models describe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from hub.audit import query_events
from hub.audit.models import NEXT_INDEX_FUNCTION, NEXT_INDEX_FUNCTION_SQL, AuditEvent
from hub.store.db import make_engine
from hub.store.migrate import alembic_config, upgrade
from hub.store.models import metadata
from tests.support.databases import TestDatabases


def test_migrations_match_the_models(databases: TestDatabases) -> None:
    url = databases.new("migrations")
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, metadata)
            tables = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations differ; add a migration: {diff}"
    assert set(metadata.tables) <= tables


def test_upgrading_twice_is_harmless(databases: TestDatabases) -> None:
    url = databases.new("migrations_twice")
    upgrade(url)
    upgrade(url)


def test_records_occurred_at_goes_down_and_up_again(databases: TestDatabases) -> None:
    """0011 adds the nullable ``records.occurred_at`` (existing rows keep NULL) and takes it
    away again on downgrade."""
    url = databases.new("migrations_occurred_at")
    upgrade(url, "0010")
    engine = make_engine(url)

    def columns() -> set[str]:
        with engine.connect() as connection:
            return {c["name"] for c in inspect(connection).get_columns("records")}

    try:
        assert "occurred_at" not in columns()
        upgrade(url)
        assert "occurred_at" in columns()
        command.downgrade(alembic_config(url), "0010")
        assert "occurred_at" not in columns()
        upgrade(url)
        assert "occurred_at" in columns()
    finally:
        engine.dispose()


def test_old_sqlite_audit_times_are_rewritten_in_the_stored_form(databases: TestDatabases) -> None:
    """0012: events appended alone by the fourth round's code stored their time as the
    driver's datetime text (``...+00:00``), which range filters compare as text; after the
    upgrade they hold the form every other row does, and an exact ``since`` finds them."""
    if databases.is_postgres:
        pytest.skip("PostgreSQL stores a timestamp, not text: 0012 does nothing there")
    url = databases.new("migrations_audit_time")
    upgrade(url, "0011")
    engine = make_engine(url)
    stored = [
        (0, "2026-11-20 05:30:00.123456+00:00"),  # the old text, with microseconds
        (1, "2026-11-20 05:31:00+00:00"),  # the old text of a whole second
        (2, "2026-11-20 05:32:00.500000"),  # already in the stored form
    ]
    try:
        with engine.begin() as connection:
            for index, created_at in stored:
                connection.execute(
                    text(
                        'INSERT INTO audit_events ("index", event_id, created_at, kind,'
                        " canonical, leaf_hash) VALUES (:i, :e, :t, 'test', '{}', :h)"
                    ),
                    {"i": index, "e": f"evt_{index}", "t": created_at, "h": b"\0" * 32},
                )
        upgrade(url)
        with engine.connect() as connection:
            texts = connection.execute(
                text('SELECT created_at FROM audit_events ORDER BY "index"')
            ).scalars()
            assert list(texts) == [
                "2026-11-20 05:30:00.123456",
                "2026-11-20 05:31:00.000000",
                "2026-11-20 05:32:00.500000",
            ]
        with Session(engine) as session:
            exact = datetime(2026, 11, 20, 5, 31, tzinfo=UTC)
            found = query_events(session, since=exact, until=exact + timedelta(seconds=1))
            assert [e.index for e in found] == [1]
            first = session.get(AuditEvent, 0)
            assert first is not None
            assert first.created_at == datetime(2026, 11, 20, 5, 30, 0, 123456, tzinfo=UTC)
    finally:
        engine.dispose()


def test_the_audit_index_function_goes_down_and_up_again(databases: TestDatabases) -> None:
    """0013 makes the PostgreSQL function that takes the append lock and reads the next index
    (the text the models create, so a database made either way runs the same) and drops it."""
    if not databases.is_postgres:
        pytest.skip("a PostgreSQL function: 0013 does nothing on SQLite")
    url = databases.new("migrations_audit_function")
    upgrade(url, "0012")
    engine = make_engine(url)

    def definition() -> str | None:
        with engine.connect() as connection:
            return connection.execute(
                text(
                    "SELECT pg_get_functiondef(to_regprocedure(:f))"
                    " WHERE to_regprocedure(:f) IS NOT NULL"
                ),
                {"f": f"{NEXT_INDEX_FUNCTION}(bigint)"},
            ).scalar()

    try:
        assert definition() is None
        upgrade(url)
        migrated = definition()
        assert migrated is not None
        with engine.begin() as connection:
            connection.exec_driver_sql(NEXT_INDEX_FUNCTION_SQL)
        assert definition() == migrated
        command.downgrade(alembic_config(url), "0012")
        assert definition() is None
    finally:
        engine.dispose()
