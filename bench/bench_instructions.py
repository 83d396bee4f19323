"""Instructions per one-record GET (and per ``/healthz``), counted by callgrind: a figure that a
loaded machine does not move, for comparing two trees a few percent apart.

    .venv/bin/python -m bench.bench_instructions [--db sqlite|postgresql] [--requests 50]

The hub's ASGI app is driven directly in one process (no HTTP client, no server; the pull's
thread-pool hop runs inline), under ``valgrind --tool=callgrind`` with instrumentation off until
the app is built, a token issued and 30 requests served; it is switched on for ``--requests``
requests only (``callgrind_control``). Instructions of the hub's process only: the database
server's and the kernel's work are not counted. Run it in each tree to compare (repeat runs
agree within ~0.3%). Needs valgrind. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import RECIPIENT, ROOT, SeededHub, cached_pg_hub, cached_sqlite_hub, say

WARM_UP = 30


async def _call(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1", "method": "GET", "scheme": "http", "path": path,
        "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(scope, receive, send)
    return status


async def _serve_when_told(hub: dict[str, Any], target: str, requests: int) -> None:
    """The child: build the app, warm up, then serve ``requests`` between the parent's go and
    the child's done (both lines on stdin / stdout)."""
    import httpx

    os.environ.update(hub["env"])
    import hub.api.single_hop as single_hop
    from hub.app import create_served_app

    async def inline(function: Any, *args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    single_hop.run_in_threadpool = inline  # type: ignore[assignment]
    app = create_served_app()
    partner = hub["credentials"]["partners"][RECIPIENT]
    agreement_id = hub["agreement_id"]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=hub["issuer"]) as client:
        issued = await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(partner["client_id"], partner["client_secret"]),
        )
        token = issued.json()["access_token"]
        page = await client.get(
            f"/v1/agreements/{agreement_id}/records",
            params={"limit": 5},
            headers={"Authorization": f"Bearer {token}"},
        )
        key = page.json()["items"][0]["record_key"]
    headers = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())]
    path = "/healthz"
    if target == "record":
        path = f"/v1/agreements/{agreement_id}/records/{key}"
    for _ in range(WARM_UP):
        if await _call(app, path, headers) != 200:
            raise RuntimeError(f"{path} did not answer 200")
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(requests):
        await _call(app, path, headers)
    print("done", flush=True)
    sys.stdin.readline()


@contextlib.contextmanager
def _hub(kind: str, workdir: Path) -> Iterator[SeededHub]:
    base = cached_sqlite_hub(5_000, workdir / "sqlite")
    if kind == "sqlite":
        yield base
    else:
        with cached_pg_hub(base, "instructions") as hub:
            yield hub


def count(kind: str, target: str, requests: int) -> float:
    """Instructions per request of ``target`` ("record" or "healthz") on ``kind``."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise RuntimeError("valgrind is not installed")
    with (
        tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp,
        _hub(kind, Path(tmp)) as hub,
    ):
        # seeded (or copied) here: under valgrind it would take minutes
        described = Path(tmp) / "hub.json"
        described.write_text(
            json.dumps(
                {"env": hub.env(), "credentials": hub.credentials,
                 "agreement_id": hub.agreement_id, "issuer": hub.issuer}
            )
        )  # fmt: skip
        out = Path(tmp) / "callgrind.out"
        cmd = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no",
            f"--callgrind-out-file={out}.%p", sys.executable, "-m", "bench.bench_instructions",
            "--child", str(described), "--target", target, "--requests", str(requests),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        child = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert child.stdin is not None and child.stdout is not None
        try:
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("the measured process did not start")
            subprocess.run(["callgrind_control", "-i", "on", str(child.pid)], check=True,
                           capture_output=True)  # fmt: skip
            child.stdin.write("go\n")
            child.stdin.flush()
            if child.stdout.readline().strip() != "done":
                raise RuntimeError("the measured process did not finish")
            subprocess.run(["callgrind_control", "-d", str(child.pid)], check=True,
                           capture_output=True)  # fmt: skip
            subprocess.run(["callgrind_control", "-i", "off", str(child.pid)], check=True,
                           capture_output=True)  # fmt: skip
            child.stdin.write("exit\n")
            child.stdin.flush()
            child.wait(timeout=600)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        total = 0
        for dump in Path(tmp).glob("callgrind.out.*"):
            for line in dump.read_text().splitlines():
                if line.startswith("totals:"):
                    total += int(line.split()[1])
    return total / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--target", default="both", choices=["record", "healthz", "both"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        hub = json.loads(Path(args.child).read_text())
        asyncio.run(_serve_when_told(hub, args.target, args.requests))
        return
    targets = ["record", "healthz"] if args.target == "both" else [args.target]
    for target in targets:
        say(f"instructions: {target} [{args.db}] ...")
        per_request = count(args.db, target, args.requests)
        print(f"{target} [{args.db}]: {per_request / 1e6:.3f} M instructions/request")


if __name__ == "__main__":
    main()
