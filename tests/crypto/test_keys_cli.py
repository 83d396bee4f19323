"""`tollhouse keys rotate | rewrap | retire` on a real data directory and database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from hub.cli import app
from hub.crypto import LocalKeyring, SubjectKey
from hub.settings import get_settings
from hub.store.db import make_engine
from tests.support.databases import TestDatabases


@pytest.fixture()
def served(
    tmp_path: Path, databases: TestDatabases, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, str]]:
    data_dir = tmp_path / "var"
    url = databases.new(f"keys_cli_{tmp_path.name[-12:]}".replace("-", "_"))
    monkeypatch.setenv("TOLLHOUSE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("TOLLHOUSE_DATABASE_URL", url)
    monkeypatch.setenv("TOLLHOUSE_DEMO_CONSUMERS", "20")
    get_settings.cache_clear()
    yield data_dir, url
    get_settings.cache_clear()


def test_rotate_rewrap_retire_leaves_every_key_under_the_new_version(
    served: tuple[Path, str],
) -> None:
    data_dir, url = served
    runner = CliRunner()
    assert runner.invoke(app, ["seed"]).exit_code == 0
    rotated = runner.invoke(app, ["keys", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    rewrapped = runner.invoke(app, ["keys", "rewrap", "--batch-size", "7"])
    assert rewrapped.exit_code == 0, rewrapped.output
    retired = runner.invoke(app, ["keys", "retire"])
    assert retired.exit_code == 0, retired.output
    assert "1" in retired.output

    keyring = LocalKeyring(data_dir)
    assert keyring.versions() == [2] and keyring.current_version() == 2
    engine = make_engine(url)
    with engine.connect() as connection:
        old = connection.scalar(
            select(func.count()).select_from(SubjectKey).where(SubjectKey.kek_version != 2)
        )
    engine.dispose()
    assert old == 0
