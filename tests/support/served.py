"""Real hubs on loopback for the tests: an app served by uvicorn in a thread
(:func:`served_in_thread`, for browser and connector tests), and `tollhouse serve` processes over
a copy of the seeded test database, which can be killed (SIGKILL) and restarted on the same data
(:class:`ServedHub`, for the hardening tests)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from hub.settings import PROJECT_ROOT
from tests.support.databases import TestDatabases


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served_in_thread(app: Any) -> Iterator[str]:
    """``app`` served by a real uvicorn on a loopback port, in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def private_copy(data_dir: Path, target: Path) -> Path:
    """A copy of a data directory (keys keep their modes), so that a key rotation in one test
    never reaches another."""
    shutil.copytree(data_dir, target)
    return target


class ServedHub:
    """One `tollhouse serve` process (``--no-demo``: the database is seeded already)."""

    def __init__(
        self,
        data_dir: Path,
        database_url: str,
        *,
        workers: int = 1,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.workers = workers
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "TOLLHOUSE_DATA_DIR": str(data_dir),
            "TOLLHOUSE_DATABASE_URL": database_url,
            "TOLLHOUSE_ISSUER": self.url,
            "TOLLHOUSE_POLICY_WATCH_SECONDS": "0",
            "TOLLHOUSE_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.log = data_dir.parent / f"served-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hub.cli", "serve", "--port", str(self.port),
                 "--workers", str(self.workers), "--no-demo"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("the hub exited:\n" + self.log.read_text()[-4000:])
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("the hub did not become ready:\n" + self.log.read_text()[-4000:])

    def kill9(self) -> None:
        """SIGKILL the server and its workers (its own process group): no shutdown at all."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()
        self.process = None

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a `tollhouse` command on this hub's data directory and database."""
        return subprocess.run(
            [sys.executable, "-m", "hub.cli", *args], env=self.env, capture_output=True,
            text=True, timeout=timeout, cwd=PROJECT_ROOT,
        )  # fmt: skip

    def token(self, partner: dict[str, Any]) -> str:
        response = httpx.post(
            self.url + "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(partner["client_id"], partner["client_secret"]),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token


def served_copy(
    seeded_template: tuple[Path, str, dict[str, Any]],
    databases: TestDatabases,
    workdir: Path,
    **kwargs: Any,
) -> ServedHub:
    """A (not yet started) hub over a clone of the seeded template, on a private data dir."""
    data_dir, template_url, _credentials = seeded_template
    return ServedHub(
        private_copy(data_dir, workdir / "var"), databases.clone(template_url), **kwargs
    )
