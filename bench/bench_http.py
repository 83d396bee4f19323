"""HTTP latency and throughput: ``wrk`` against one-record GET (the whole pipeline for one
record, with its durable audit append) and ``/healthz`` (the baseline: the same uvicorn, no
work), at 1, 10 and 50 connections, one uvicorn worker on loopback.

    .venv/bin/python -m bench.bench_http [--seconds 8] [--db sqlite,postgresql]

Needs ``wrk`` (``make system-deps``). Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    Report,
    SeededHub,
    cached_pg_hub,
    cached_sqlite_hub,
    cpu_seconds,
    pg_available,
    say,
)

CONNECTIONS = (1, 10, 50)
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(url: str, connections: int, seconds: int, headers: dict[str, str]) -> dict[str, Any]:
    """One wrk run (one thread): req/s, p50/p99 in ms, errors and non-2xx responses."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run(
        [*cmd, url], capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    latency = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.M))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"^\s*(\d+) requests in", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)$", out, re.M)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "requests": int(total.group(1)) if total else 0,
        "p50_ms": _ms(latency["50"]) if "50" in latency else float("nan"),
        "p99_ms": _ms(latency["99"]) if "99" in latency else float("nan"),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def _releasable_key(client: httpx.Client, base: str, agreement_id: str) -> str:
    page = client.get(f"{base}/v1/agreements/{agreement_id}/records", params={"limit": 5})
    page.raise_for_status()
    key: str = page.json()["items"][0]["record_key"]
    return key


def measure(hub: SeededHub, seconds: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with hub.server() as server, httpx.Client(timeout=30) as client:
        token = hub.token(server.url)
        headers = {"Authorization": f"Bearer {token}"}
        client.headers.update(headers)
        key = _releasable_key(client, server.url, hub.agreement_id)
        record_url = f"{server.url}/v1/agreements/{hub.agreement_id}/records/{key}"
        client.get(record_url).raise_for_status()
        for connections in CONNECTIONS:
            for target, url in (("healthz", f"{server.url}/healthz"), ("record", record_url)):
                cpu = cpu_seconds(server.pid)
                results[f"{target}@{connections}"] = r = wrk(url, connections, seconds, headers)
                # the hub process's own CPU per request: steadier than req/s on shared cores
                spent = cpu_seconds(server.pid) - cpu
                r["server_cpu_ms"] = 1000 * spent / r["requests"] if r["requests"] else float("nan")
                say(f"http: {target} at {connections} connections: {r}")
                time.sleep(0.5)
    return results


def collect(quick: bool = False, kinds: list[str] | None = None) -> Report:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: run `make system-deps`")
    seconds = 2 if quick else 6
    records = 5_000 if quick else 100_000
    if kinds is None:
        kinds = ["sqlite"] + ([] if quick or not pg_available() else ["postgresql"])
    report = Report(details={"seconds_per_run": seconds, "records": records})
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        os.environ.setdefault("BENCH_CACHE", str(Path(tmp) / "cache"))
        base = cached_sqlite_hub(records, Path(tmp) / "sqlite")
        for kind in kinds:
            with contextlib.ExitStack() as stack:
                hub = base
                if kind == "postgresql":
                    hub = stack.enter_context(cached_pg_hub(base, "http"))
                r = measure(hub, seconds)
            report.details[kind] = r
            for c in CONNECTIONS:
                rec, health = r[f"record@{c}"], r[f"healthz@{c}"]
                bad = rec["non2xx"] + health["non2xx"]
                note = f"{bad} non-2xx" if bad else ""
                if rec["socket_errors"]:
                    note += f" socket errors: {rec['socket_errors']}"
                report.add(
                    "http", f"record GET req/s, {c} conn [{kind}]", rec["rps"], "req/s",
                    health["rps"], "/healthz req/s", "≥ 1,500 req/s" if c > 1 else "",
                    rec["rps"] >= 1500 if c > 1 else None, note=note.strip(),
                )  # fmt: skip
                report.add(
                    "http", f"record GET p50, {c} conn [{kind}]", rec["p50_ms"], "ms",
                    health["p50_ms"], "/healthz p50",
                )  # fmt: skip
                # Little's law: c requests always in flight at R req/s wait c/R s on average,
                # so p99 <= 20 ms at 50 connections needs more than 50 / 0.020 = 2,500 req/s.
                report.add(
                    "http", f"record GET p99, {c} conn [{kind}]", rec["p99_ms"], "ms",
                    health["p99_ms"], "/healthz p99", "≤ 20 ms" if c == 50 else "",
                    rec["p99_ms"] <= 20 if c == 50 else None,
                    note=f"mean wait by Little's law {1000 * c / rec['rps']:.0f} ms"
                    if rec["rps"] else "",
                )  # fmt: skip
                report.add(
                    "http", f"record GET server CPU/request, {c} conn [{kind}]",
                    rec["server_cpu_ms"], "ms", health["server_cpu_ms"], "/healthz CPU/request",
                )  # fmt: skip
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    kinds = [k for k in args.db.split(",") if k != "postgresql" or pg_available()]
    report = collect(quick=args.quick, kinds=kinds)
    for f in report.figures:
        print(
            f"{f.figure:40} {f.value:10,.2f} {f.unit:6} baseline {f.baseline or 0:10,.2f} {f.note}"
        )


if __name__ == "__main__":
    main()
