from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from connectors import HubClient, _client
from tests.connectors.fakehub import FakeHub

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
