from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors import HubClient, _client
from tests.connectors.fakehub import FakeHub
from tests.connectors.realhub import MAPPING, Served, serving
from tests.support.databases import TestDatabases

BASE = "http://hub.test"


@pytest.fixture
def hub() -> FakeHub:
    return FakeHub()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the retry waits instead of sleeping them."""
    waits: list[float] = []

    async def async_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(_client, "_sleep", waits.append)
    monkeypatch.setattr(_client, "_async_sleep", async_sleep)
    return waits


@pytest.fixture
def client(hub: FakeHub, sleeps: list[float]) -> Iterator[HubClient]:
    with HubClient(
        BASE, hub.client_id, client_secret=hub.client_secret, transport=httpx.MockTransport(hub)
    ) as c:
        yield c


# -- the real hub (end-to-end tests): one per test module -------------------------------------


@pytest.fixture(scope="module")
def served(
    seeded_template: tuple[Path, str, dict[str, Any]], databases: TestDatabases
) -> Iterator[Served]:
    with serving(seeded_template, databases) as running:
        yield running


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    """The TOML mapping of the generated loan applications (``realhub.rows``)."""
    path = tmp_path / "mapping.toml"
    path.write_text(MAPPING)
    return path


@pytest.fixture
def sink_db(databases: TestDatabases, request: pytest.FixtureRequest) -> str:
    """A database for a source or a sink, on the hub's kind of server."""
    return databases.new(f"conn_{request.node.name[:30].replace('[', '_').strip(']')}")
