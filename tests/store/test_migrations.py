"""The Alembic history builds exactly the schema the models describe."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

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
