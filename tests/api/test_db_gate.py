"""The database gate admits at most its permits past it at once (one on SQLite, the setting on
PostgreSQL); the paths that never touch the database pass freely."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hub.api.db_gate import DatabaseGate
from tests.support.hub import HubEnv


class _Counting:
    """An ASGI app that notes how many calls are inside it at once."""

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0
        self.served: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.inside += 1
        self.most = max(self.most, self.inside)
        try:
            for _ in range(3):  # let every other waiting call run meanwhile
                await asyncio.sleep(0)
            await asyncio.sleep(0.01)
        finally:
            self.inside -= 1
        self.served.append(scope["path"])


async def _call_all(gate: DatabaseGate, paths: list[str]) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        return None

    await asyncio.gather(*(gate({"type": "http", "path": path}, receive, send) for path in paths))


@pytest.mark.parametrize("permits", [1, 3])
def test_at_most_its_permits_are_inside_at_once(permits: int) -> None:
    app = _Counting()
    paths = [f"/v1/agreements/agr_{i}/records" for i in range(12)]
    asyncio.run(_call_all(DatabaseGate(app, permits=permits), paths))
    assert app.most == permits
    assert sorted(app.served) == sorted(paths)


def test_paths_that_never_touch_the_database_pass_freely() -> None:
    app = _Counting()
    asyncio.run(_call_all(DatabaseGate(app, permits=1), ["/healthz"] * 5))
    assert app.most == 5


def test_a_gate_needs_a_permit() -> None:
    with pytest.raises(ValueError):
        DatabaseGate(_Counting(), permits=0)


def test_the_hub_admits_one_request_on_sqlite_and_the_setting_on_postgresql(hub: HubEnv) -> None:
    (gate,) = [m for m in hub.client.app.user_middleware if m.cls is DatabaseGate]
    sqlite = hub.runtime.engine.dialect.name == "sqlite"
    assert gate.kwargs == {"permits": 1 if sqlite else hub.settings.db_concurrency}
    assert hub.settings.db_concurrency == 8  # the default
