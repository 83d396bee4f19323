"""How many requests a PostgreSQL worker should let use the database at once
(``TOLLHOUSE_DB_CONCURRENCY``): ``wrk`` on one-record GET at 10 and 50 connections, one uvicorn
worker, for each number of permits in turn, the variants alternated over several rounds so
that they share the machine's load.

    .venv/bin/python -m bench.bench_gate [--permits 1000,4,8,16] [--rounds 3] [--seconds 3]

1000 permits is "unbounded": more than the thread pool's 40 threads. A tool for choosing the
default, not part of ``make bench``. Needs ``wrk`` and PostgreSQL; prints figures, asserts
nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from pathlib import Path

import httpx

from bench.bench_http import _releasable_key, wrk
from bench.common import SeededHub, cached_pg_hub, cached_sqlite_hub, cpu_seconds, say


def measure(hub: SeededHub, permits: int, connections: list[int], seconds: int) -> str:
    os.environ["TOLLHOUSE_DB_CONCURRENCY"] = str(permits)
    with hub.server() as server, httpx.Client(timeout=30) as client:
        headers = {"Authorization": f"Bearer {hub.token(server.url)}"}
        client.headers.update(headers)
        key = _releasable_key(client, server.url, hub.agreement_id)
        url = f"{server.url}/v1/agreements/{hub.agreement_id}/records/{key}"
        client.get(url).raise_for_status()
        wrk(url, 10, 1, headers)  # warm-up
        figures = []
        for c in connections:
            cpu = cpu_seconds(server.pid)
            r = wrk(url, c, seconds, headers)
            spent = 1000 * (cpu_seconds(server.pid) - cpu) / max(r["requests"], 1)
            figures.append(
                f"{c} conn: {r['rps']:.0f} req/s, p99 {r['p99_ms']:.0f} ms, "
                f"hub CPU {spent:.2f} ms a request, non-2xx {r['non2xx']}"
            )
    return " | ".join(figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--permits", default="1000,4,8,16")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", default="10,50")
    args = parser.parse_args()
    permits = [int(p) for p in args.permits.split(",")]
    connections = [int(c) for c in args.connections.split(",")]
    with (
        tempfile.TemporaryDirectory(prefix="bench-gate-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        base = cached_sqlite_hub(5_000, Path(tmp) / "sqlite")
        hub = stack.enter_context(cached_pg_hub(base, "gate"))
        for round_ in range(args.rounds):
            for p in permits:
                say(f"gate: round {round_ + 1}, {p} permits ...")
                print(
                    f"round {round_ + 1}, {p:>4} permits: "
                    + measure(hub, p, connections, args.seconds),
                    flush=True,
                )


if __name__ == "__main__":
    main()
