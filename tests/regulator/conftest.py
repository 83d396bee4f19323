"""Fixtures for the regulator tests: a hub of the module's own (``hub``, from tests/conftest.py)
and a fresh seeded hub per test for the tests that damage the log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_settings
from tests.support.databases import TestDatabases
from tests.support.hub import HubEnv, build_env


@pytest.fixture
def fresh_hub(
    seeded_template: tuple[Path, str, dict[str, Any]], databases: TestDatabases
) -> Iterator[HubEnv]:
    data_dir, template_url, credentials = seeded_template
    env = build_env(make_settings(data_dir, databases.clone(template_url)), credentials)
    with env.client:
        yield env
    env.runtime.engine.dispose()
