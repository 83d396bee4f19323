"""Policy decision latency: regorus alone, the embedded engine (uncached, cached) and OPA REST.

Run: ``.venv/bin/python bench/bench_decision.py [--n 2000]`` (prints figures; no assertions).
Each case is timed call by call; p50/p99 in µs. Other processes share the cores, so compare
rows of one run rather than runs.
"""

from __future__ import annotations

import argparse
import copy
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from hub.policy import (
    CachedPolicyEngine,
    DecisionCache,
    EmbeddedPolicyEngine,
    OpaPolicyEngine,
    load_bundle,
)
from hub.policy.rego import DECISION_RULE, new_engine

if TYPE_CHECKING:  # imported lazily, so the script also runs as a file
    from bench.common import Report

POLICIES = Path(__file__).resolve().parents[1] / "policies"
REGORUS = "regorus alone, reused engine"
UNCACHED = "EmbeddedPolicyEngine.decide, uncached"
CACHED = "CachedPolicyEngine.decide, warm"
REST = "OpaPolicyEngine.decide, REST (loopback)"
Row = tuple[str, int, float, float]
CATEGORIES = [
    "identity",
    "contact",
    "identity_document",
    "vehicle",
    "vehicle_identifier",
    "credit",
    "income",
    "loan",
    "sales",
    "financial_account",
]


def policy_input(fields: int) -> dict[str, Any]:
    """A credit-assessment request over ``fields`` fields: most released, some dropped."""
    names = [f"field_{i:02d}" for i in range(fields)]
    return {
        "partner": {"id": "ptn_lender", "role": "lender", "jurisdiction": "CN"},
        "purpose": "credit_assessment",
        "agreement": {
            "id": "agr_1",
            "status": "active",
            "recipient": "ptn_lender",
            "purpose": "credit_assessment",
            "valid_from": "2026-01-01T00:00:00Z",
            "valid_until": "2026-03-01T00:00:00Z",
            "fields": names[: max(1, fields - fields // 6)],
            "cross_border": False,
        },
        "dataset": {
            "id": "ds_deals",
            "provider": "ptn_dealer",
            "fields": {name: CATEGORIES[i % len(CATEGORIES)] for i, name in enumerate(names)},
        },
        "consent": {
            "status": "active",
            "categories": CATEGORIES[:8],
            "expires_at": "2026-12-31T00:00:00Z",
            "sensitive": True,
            "cross_border": False,
        },
        "subject": {"jurisdiction": "CN"},
        "now": "2026-02-01T00:00:00Z",
    }


def percentiles(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    for _ in range(min(200, n)):
        fn()
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    samples.sort()
    return samples[len(samples) // 2] / 1000, samples[int(len(samples) * 0.99)] / 1000


class Server:
    """``tollhouse policy serve`` as a sidecar: the regorus-backed OPA-compatible server in its
    own process (as in production: no GIL shared with the caller) on a loopback port."""

    def __enter__(self) -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        code = (
            "from pathlib import Path; from hub.policy.opa_server import serve; "
            f"serve(Path({str(POLICIES)!r}), port={port})"
        )
        self.process = subprocess.Popen([sys.executable, "-c", code])
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    return url
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("policy server did not start")

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def measure(n: int, field_counts: tuple[int, ...] = (5, 30)) -> tuple[list[Row], str, Any]:
    """Time every case for each input size: ``(label, fields, p50 µs, p99 µs)`` rows."""
    bundle = load_bundle(POLICIES)
    embedded = EmbeddedPolicyEngine(POLICIES)
    cached = CachedPolicyEngine(embedded, DecisionCache(4096))
    rows: list[Row] = []
    with Server() as url:
        opa = OpaPolicyEngine(url)
        for fields in field_counts:
            inp = policy_input(fields)
            text = json.dumps(inp)
            # The engine EmbeddedPolicyEngine.decide uses: the modules the decision can reach.
            engine = new_engine(bundle, rule=DECISION_RULE)

            def regorus_alone(engine: Any = engine, text: str = text) -> Any:
                engine.set_input_json(text)
                return engine.eval_rule(DECISION_RULE)

            def regorus_new_engine(text: str = text) -> Any:
                fresh = new_engine(bundle, rule=DECISION_RULE)
                fresh.set_input_json(text)
                return fresh.eval_rule(DECISION_RULE)

            # A different `now` every call (as in production): hits by the time-bucketed key.
            moments = [
                f"2026-02-{day:02d}T{hour:02d}:00:00Z" for day in range(1, 28) for hour in range(24)
            ]
            inputs = [dict(copy.deepcopy(inp), now=moment) for moment in moments]

            def cached_hit(
                inputs: list[dict[str, Any]] = inputs, counter: Any = iter(range(10**9))
            ) -> Any:
                return cached.decide(inputs[next(counter) % len(inputs)])

            def embedded_uncached(inp: dict[str, Any] = inp) -> Any:
                return embedded.decide(inp)

            def opa_rest(inp: dict[str, Any] = inp) -> Any:
                return opa.decide(inp)

            cases: list[tuple[str, Callable[[], Any], int]] = [
                (REGORUS, regorus_alone, n),
                ("regorus, new engine per decision", regorus_new_engine, max(200, n // 10)),
                (UNCACHED, embedded_uncached, n),
                (CACHED, cached_hit, n),
                (REST, opa_rest, n // 2),
            ]
            for label, fn, count in cases:
                p50, p99 = percentiles(fn, count)
                rows.append((label, fields, p50, p99))
        opa.close()
    return rows, bundle.revision, cached.cache


def collect(quick: bool = False) -> Report:
    """The figures for ``python -m bench``: 30-field decisions (the pipeline's size)."""
    from bench.common import Report

    rows, revision, cache = measure(300 if quick else 2000, (30,))
    by = {label: (p50, p99) for label, _, p50, p99 in rows}
    report = Report(details={"revision": revision, "rows": rows})
    regorus, uncached, cached, rest = by[REGORUS], by[UNCACHED], by[CACHED], by[REST]
    report.add(
        "decision", "uncached p50 (30 fields)", uncached[0], "µs", regorus[0],
        "regorus alone p50", "≤ 1.2× regorus", uncached[0] <= 1.2 * regorus[0],
    )  # fmt: skip
    report.add(
        "decision", "uncached p99 (30 fields)", uncached[1], "µs", regorus[1],
        "regorus alone p99", "≤ 1.2× regorus", uncached[1] <= 1.2 * regorus[1],
    )  # fmt: skip
    report.add(
        "decision", "uncached p50 vs OPA REST", uncached[0], "µs", rest[0],
        "OPA REST client p50", "≤ 0.2× REST", uncached[0] <= 0.2 * rest[0],
    )  # fmt: skip
    report.add(
        "decision", "cached p50", cached[0], "µs", uncached[0], "uncached p50",
        "≤ 5 µs", cached[0] <= 5.0,
    )  # fmt: skip
    report.add("decision", "cached p99", cached[1], "µs", uncached[1], "uncached p99")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000, help="decisions per case")
    args = parser.parse_args()
    n: int = args.n
    rows, revision, cache = measure(n)
    print(f"policy revision {revision[:12]}; {n} decisions per case")
    print(f"{'case':44} {'fields':>6} {'p50 µs':>9} {'p99 µs':>9}")
    for label, fields, p50, p99 in rows:
        print(f"{label:44} {fields:>6} {p50:>9.1f} {p99:>9.1f}")
    print(f"cache: {cache.hits} hits, {cache.misses} misses")


if __name__ == "__main__":
    main()
