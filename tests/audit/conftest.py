"""Database fixtures for the audit tests: a temporary SQLite file, or PostgreSQL.

When TOLLHOUSE_DATABASE_URL names a PostgreSQL server, each test process gets a database of its
own there (created once, dropped at the end); the audit tables are created in it for each test
and dropped afterwards. ``fresh_hub`` is a whole seeded hub per test, for tests that damage it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from hub.audit.checkpoint import LogSigner
from hub.audit.models import AUDIT_TABLES, AuditEvent
from hub.store.db import make_engine, make_session_factory
from tests.audit.audit_helpers import ORIGIN
from tests.conftest import make_settings
from tests.support.databases import TestDatabases
from tests.support.hub import HubEnv, build_env


@pytest.fixture(scope="session")
def audit_pg_url(databases: TestDatabases) -> str | None:
    """A PostgreSQL database of this test process's own, or None on SQLite."""
    return databases.new("audit") if databases.is_postgres else None


@pytest.fixture
def engine(tmp_path: Path, audit_pg_url: str | None) -> Iterator[Engine]:
    eng = make_engine(audit_pg_url or f"sqlite:///{tmp_path / 'audit.db'}")
    AuditEvent.metadata.drop_all(eng, tables=AUDIT_TABLES)
    AuditEvent.metadata.create_all(eng, tables=AUDIT_TABLES)
    try:
        yield eng
    finally:
        AuditEvent.metadata.drop_all(eng, tables=AUDIT_TABLES)
        eng.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as s:
        yield s


@pytest.fixture
def signer(tmp_path: Path) -> LogSigner:
    return LogSigner.load_or_create(tmp_path / "keys" / "audit-log.pem", ORIGIN)


@pytest.fixture
def fresh_hub(
    seeded_template: tuple[Path, str, dict[str, Any]], databases: TestDatabases
) -> Iterator[HubEnv]:
    """A seeded hub of this test's own, for tests that damage the log on purpose."""
    data_dir, template_url, credentials = seeded_template
    env = build_env(make_settings(data_dir, databases.clone(template_url)), credentials)
    with env.client:
        yield env
    env.runtime.engine.dispose()
