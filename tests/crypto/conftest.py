"""Fixtures for field-protection tests: a keyring in a temp dir and a database with subject_keys.

The database is a temporary SQLite file, or a throw-away PostgreSQL database on the server of
``TOLLHOUSE_DATABASE_URL`` when it is set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from joserfc import jwe
from joserfc.jwk import ECKey, OKPKey
from sqlalchemy import Engine, create_engine, delete, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from hub.crypto import FieldProtector, LocalKeyring, SubjectKey
from hub.crypto.recipient import JWE_ALGORITHMS
from hub.store.base import Base
from hub.store.db import make_engine as hub_engine

TABLES = [SubjectKey.__table__]


@pytest.fixture(scope="session")
def crypto_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Two throw-away databases per test process (xdist-safe): one for function-scoped tests,
    one for the module-scoped hypothesis environment. PostgreSQL if TOLLHOUSE_DATABASE_URL is
    set (its own database is never touched), else SQLite files."""
    server = os.environ.get("TOLLHOUSE_DATABASE_URL", "")
    if not server.startswith("postgresql"):
        tmp = tmp_path_factory.mktemp("crypto-db")
        yield {name: f"sqlite:///{tmp / (name + '.db')}" for name in ("fn", "prop")}
        return
    tag = f"th_crypto_{os.getpid()}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    names = {"fn": f"{tag}_fn", "prop": f"{tag}_prop"}
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for db in names.values():
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{db}"'))
    try:
        yield {
            k: make_url(server).set(database=db).render_as_string(hide_password=False)
            for k, db in names.items()
        }
    finally:
        with admin.connect() as conn:
            for db in names.values():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


def make_engine(url: str) -> Engine:
    """The hub's own engine set-up (SQLite: WAL, explicit BEGIN) with an empty subject_keys."""
    engine = hub_engine(url)
    Base.metadata.create_all(engine, tables=TABLES)  # type: ignore[arg-type]
    with engine.begin() as conn:
        conn.execute(delete(SubjectKey))
    return engine


def drop_engine(engine: Engine) -> None:
    Base.metadata.drop_all(engine, tables=TABLES)  # type: ignore[arg-type]
    engine.dispose()


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def keyring(data_dir: Path) -> LocalKeyring:
    return LocalKeyring(data_dir)


@pytest.fixture
def engine(crypto_databases: dict[str, str]) -> Iterator[Engine]:
    engine = make_engine(crypto_databases["fn"])
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@pytest.fixture
def protector(keyring: LocalKeyring) -> FieldProtector:
    return FieldProtector(keyring)


class PropertyEnv:
    """Module-scoped state for hypothesis tests (@given does not mix with function fixtures)."""

    def __init__(self, tmp_dir: Path, url: str) -> None:
        self.keyring = LocalKeyring(tmp_dir / "data")
        self.protector = FieldProtector(self.keyring)
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def reset(self) -> None:
        with self.sessions.begin() as s:
            s.execute(delete(SubjectKey))


@pytest.fixture(scope="module")
def prop_env(
    tmp_path_factory: pytest.TempPathFactory, crypto_databases: dict[str, str]
) -> Iterator[PropertyEnv]:
    env = PropertyEnv(tmp_path_factory.mktemp("crypto-prop"), crypto_databases["prop"])
    yield env
    drop_engine(env.engine)


def _decrypt_jwe(token: str, private_key: ECKey | OKPKey) -> Any:
    """What the connector SDK does: decrypt the compact JWE, parse the JSON payload."""
    result = jwe.decrypt_compact(token, private_key, algorithms=list(JWE_ALGORITHMS))
    assert result.plaintext is not None
    return orjson.loads(result.plaintext)


@pytest.fixture
def decrypt_jwe() -> Callable[[str, ECKey | OKPKey], Any]:
    return _decrypt_jwe
