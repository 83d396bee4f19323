"""The Alembic history builds exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from hub.store.db import make_engine
from hub.store.migrate import upgrade
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
