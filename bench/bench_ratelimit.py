"""What the per-partner rate limiter costs: ``wrk`` against a cheap authenticated GET
(``/v1/agreements``: token check, one query) with the limiter off (the baseline), on with one
database statement per request (no lease), and on as shipped (local leases of up to 10
tokens), at 1 and 10 connections, one uvicorn worker on loopback. Limits are set high enough
that nothing is refused: the figure is the bookkeeping, not the 429s.

    .venv/bin/python -m bench.bench_ratelimit [--quick] [--db sqlite,postgresql]

Needs ``wrk`` (``make system-deps``). Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_http import wrk
from bench.common import (
    Report,
    SeededHub,
    Uvicorn,
    cached_sqlite_hub,
    copy_to_postgres,
    pg_available,
    pg_database,
    say,
)

CONNECTIONS = (1, 10)
#: The settings' maxima: a bucket that never empties during the run.
HIGH = json.dumps({"api": {"per_minute": 1_000_000, "burst": 100_000}})
VARIANTS: dict[str, dict[str, str]] = {
    "off": {"TOLLHOUSE_RATE_LIMITS_ENABLED": "false"},
    "no lease": {"TOLLHOUSE_RATE_LIMITS": HIGH, "TOLLHOUSE_RATE_LIMIT_LEASE": "1"},
    "lease 10": {"TOLLHOUSE_RATE_LIMITS": HIGH, "TOLLHOUSE_RATE_LIMIT_LEASE": "10"},
}


def _server(hub: SeededHub, extra: dict[str, str]) -> Uvicorn:
    server = Uvicorn("hub.app:create_served_app", {**hub.env(), **extra})
    server.port = hub.port
    server.url = hub.issuer
    return server


def measure(hub: SeededHub, seconds: int, rounds: int) -> dict[str, Any]:
    """Best of ``rounds`` interleaved rounds per variant (the machine is shared: the best run
    is the one least disturbed by others)."""
    results: dict[str, Any] = {}
    for round_ in range(rounds):
        for variant, extra in VARIANTS.items():
            with _server(hub, extra) as server:
                headers = {"Authorization": f"Bearer {hub.token(server.url)}"}
                url = f"{server.url}/v1/agreements"
                wrk(url, 1, 1, headers)  # warm up
                for connections in CONNECTIONS:
                    r = wrk(url, connections, seconds, headers)
                    say(f"ratelimit: round {round_}, {variant} at {connections} conn: {r}")
                    best = results.get(f"{variant}@{connections}")
                    if best is None or r["rps"] > best["rps"]:
                        results[f"{variant}@{connections}"] = r
                    time.sleep(0.3)
    return results


def check_cost(url: str, checks: int) -> dict[str, float]:
    """Microseconds per limiter check in process, on a request-like session, beside one
    ``SELECT 1`` round trip on the same connection pool."""
    from sqlalchemy import text

    from hub.ratelimit import RateLimit, RateLimiter
    from hub.store.db import make_engine, make_session_factory

    engine = make_engine(url)
    factory = make_session_factory(engine)
    limit = RateLimit(per_minute=1_000_000, burst=100_000)
    out: dict[str, float] = {}
    try:
        for name, lease in (("no lease", 1), ("lease 10", 10)):
            limiter = RateLimiter(engine, lease=lease)
            started = time.perf_counter()
            for _ in range(checks):
                with factory() as session:
                    limiter.check(f"bench-{lease}", "api", limit, session=session)
            out[name] = (time.perf_counter() - started) / checks * 1e6
            out[f"{name} statements"] = limiter.statements / checks
        started = time.perf_counter()
        for _ in range(checks):
            with factory() as session:
                session.execute(text("SELECT 1"))
                session.commit()
        out["select 1"] = (time.perf_counter() - started) / checks * 1e6
    finally:
        engine.dispose()
    return out


def collect(quick: bool = False, kinds: list[str] | None = None) -> Report:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: run `make system-deps`")
    seconds = 2 if quick else 4
    records = 1_000
    if kinds is None:
        kinds = ["sqlite"] + ([] if quick or not pg_available() else ["postgresql"])
    report = Report(details={"seconds_per_run": seconds, "route": "GET /v1/agreements"})
    with tempfile.TemporaryDirectory(prefix="bench-ratelimit-") as tmp:
        os.environ.setdefault("BENCH_CACHE", str(Path(tmp) / "cache"))
        base = cached_sqlite_hub(records, Path(tmp) / "sqlite")
        for kind in kinds:
            with contextlib.ExitStack() as stack:
                hub = base
                if kind == "postgresql":
                    hub = copy_to_postgres(base, stack.enter_context(pg_database("ratelimit")))
                r = measure(hub, seconds, rounds=1)
                cost = check_cost(hub.database_url, 500 if quick else 2000)
            report.details[kind] = {**r, "check_us": cost}
            for variant in ("no lease", "lease 10"):
                report.add(
                    "ratelimit", f"limiter check, {variant} [{kind}]", cost[variant], "µs",
                    cost["select 1"], "SELECT 1 + commit",
                    note=f"{cost[variant + ' statements']:.2f} statements/check",
                )  # fmt: skip
            for c in CONNECTIONS:
                off = r[f"off@{c}"]
                for variant in ("no lease", "lease 10"):
                    on = r[f"{variant}@{c}"]
                    bad = on["non2xx"] + off["non2xx"]
                    report.add(
                        "ratelimit", f"GET /v1/agreements req/s, limiter {variant}, {c} conn "
                        f"[{kind}]", on["rps"], "req/s", off["rps"], "limiter off",
                        "≥ 0.8× off" if variant == "lease 10" else "",
                        on["rps"] >= 0.8 * off["rps"] if variant == "lease 10" else None,
                        note=f"{bad} non-2xx" if bad else "",
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
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else "-"
        print(f"{f.figure:62} {f.value:10,.0f} {f.unit:6} off {f.baseline or 0:10,.0f} {ratio}")


if __name__ == "__main__":
    main()
