"""The hub as a person runs it: `tollhouse serve` on a loopback port, then the demo story.

Also proves a restart keeps data and keys: a second server on the same data directory serves
the same records with the same token-signing key.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.databases import TestDatabases

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, data_dir: Path, database_url: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "TOLLHOUSE_DATA_DIR": str(data_dir),
            "TOLLHOUSE_DATABASE_URL": database_url,
            "TOLLHOUSE_ISSUER": self.url,
            "TOLLHOUSE_DEMO_CONSUMERS": "40",
        }
        self.log = data_dir.parent / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hub.cli", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError("hub did not become ready:\n" + self.log.read_text())

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Not created here: a fresh clone has no var/ either, and the first run must make it.
    return tmp_path_factory.mktemp("served") / "var"


@pytest.fixture(scope="module")
def database_url(databases: TestDatabases) -> str:
    return databases.new("served")


@pytest.fixture(scope="module")
def server(data_dir: Path, database_url: str) -> Iterator[Server]:
    running = Server(data_dir, database_url)
    running.start()
    yield running
    running.stop()


def _token(server: Server, partner: dict[str, str]) -> str:
    response = httpx.post(
        server.url + "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(partner["client_id"], partner["client_secret"]),
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def test_first_run_seeds_the_demo_and_keeps_secrets_private(server: Server, data_dir: Path) -> None:
    credentials = data_dir / "demo-credentials.json"
    assert credentials.stat().st_mode & 0o777 == 0o600
    for key_file in (data_dir / "keys").rglob("*"):
        if key_file.is_file():
            assert key_file.stat().st_mode & 0o077 == 0, key_file
    partners = json.loads(credentials.read_text())["partners"]
    assert {"oem", "dealer", "lender", "insurer", "regulator"} <= {
        p["role"] for p in partners.values()
    }


def test_the_demo_story_runs_against_the_served_hub(server: Server) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hub.cli", "demo", "--hub-url", server.url],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "withheld" in result.stdout
    assert "release.denied" in result.stdout or "release" in result.stdout


def test_restart_keeps_data_and_keys(server: Server, data_dir: Path) -> None:
    partners = json.loads((data_dir / "demo-credentials.json").read_text())["partners"]
    lender = partners["lender-jinqiao"]
    agreement = lender["agreements"][0]["id"]
    token = _token(server, lender)
    before = httpx.get(
        f"{server.url}/v1/agreements/{agreement}/records",
        params={"limit": 1000},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    jwks_before = httpx.get(server.url + "/.well-known/jwks.json").json()
    server.stop()
    server.start()
    after = httpx.get(
        f"{server.url}/v1/agreements/{agreement}/records",
        params={"limit": 1000},
        headers={"Authorization": f"Bearer {token}"},  # issued before the restart
    ).json()
    assert httpx.get(server.url + "/.well-known/jwks.json").json() == jwks_before
    assert after["items"] == before["items"]
    assert after["released"] > 0
