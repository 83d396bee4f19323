"""Throw-away databases for tests: a seeded template per test process, cheap clones of it.

SQLite clones use the backup API; PostgreSQL clones use ``CREATE DATABASE ... TEMPLATE``. The
PostgreSQL server comes from ``TOLLHOUSE_DATABASE_URL``; its own database is never touched.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def worker_tag() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


class TestDatabases:
    __test__ = False

    def __init__(self, workdir: Path, server_url: str | None = None) -> None:
        self.workdir = workdir
        self.server_url = server_url or os.environ.get("TOLLHOUSE_DATABASE_URL") or None
        self._created: list[str] = []
        self._counter = 0
        self.prefix = f"th_{os.getpid()}_{worker_tag()}"

    @property
    def is_postgres(self) -> bool:
        return bool(self.server_url and self.server_url.startswith("postgresql"))

    def _admin(self):  # type: ignore[no-untyped-def]
        assert self.server_url
        return create_engine(self.server_url, isolation_level="AUTOCOMMIT")

    def new(self, name: str) -> str:
        """An empty database."""
        if not self.is_postgres:
            return f"sqlite:///{self.workdir / (name + '.db')}"
        db = f"{self.prefix}_{name}"
        engine = self._admin()
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{db}"'))
        engine.dispose()
        self._created.append(db)
        return make_url(self.server_url).set(database=db).render_as_string(hide_password=False)

    def clone(self, template_url: str) -> str:
        """A copy of the template database (which must have no open connections)."""
        self._counter += 1
        if not self.is_postgres:
            source = make_url(template_url).database
            assert source
            target = self.workdir / f"clone{self._counter}.db"
            with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
                src.backup(dst)
            return f"sqlite:///{target}"
        template = make_url(template_url).database
        db = f"{self.prefix}_c{self._counter}"
        engine = self._admin()
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{db}" TEMPLATE "{template}"'))
        engine.dispose()
        self._created.append(db)
        return make_url(self.server_url).set(database=db).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if not self.is_postgres:
            return
        engine = self._admin()
        with engine.connect() as conn:
            for db in reversed(self._created):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        engine.dispose()
