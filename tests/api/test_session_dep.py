"""The request's session (``hub.api.deps.get_session``): committed before the response, rolled
back on any error (a failed commit too), closed either way."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hub.api.deps import SessionDep


class _Session:
    def __init__(self, calls: list[str], fail_commit: bool) -> None:
        self.calls = calls
        self.fail_commit = fail_commit

    def commit(self) -> None:
        self.calls.append("commit")
        if self.fail_commit:
            raise RuntimeError("commit failed")

    def rollback(self) -> None:
        self.calls.append("rollback")

    def close(self) -> None:
        self.calls.append("close")


def _app(calls: list[str], *, fail_commit: bool = False) -> FastAPI:
    app = FastAPI()
    app.state.runtime = SimpleNamespace(session_factory=lambda: _Session(calls, fail_commit))

    @app.get("/ok")
    def ok(session: SessionDep) -> dict[str, Any]:
        calls.append("handler")
        return {}

    @app.get("/fails")
    def fails(session: SessionDep) -> dict[str, Any]:
        calls.append("handler")
        raise ValueError("boom")

    return app


@pytest.mark.parametrize(
    ("path", "fail_commit", "expected"),
    [
        ("/ok", False, ["handler", "commit", "close"]),
        ("/fails", False, ["handler", "rollback", "close"]),
        ("/ok", True, ["handler", "commit", "rollback", "close"]),
    ],
)
def test_session_lifecycle(path: str, fail_commit: bool, expected: list[str]) -> None:
    calls: list[str] = []
    with TestClient(_app(calls, fail_commit=fail_commit), raise_server_exceptions=False) as client:
        response = client.get(path)
    assert calls == expected
    assert response.status_code == (200 if expected[-2] == "commit" else 500)
