"""Memory: the hub process's RSS while a recipient pages through a large pull.

The hub (one uvicorn worker, loopback) serves the whole dataset page after page, several passes
over it (the full run: ten passes over the 100k-record dataset, a 1,000,000-record stream; its
10,000 subjects keep the data-key cache at its bound); RSS is read from /proc after every page.
The baseline is the RSS at the start (after one warm-up page). Growth should stay small and
flat: nothing may accumulate per record, per page or per request.

    .venv/bin/python -m bench.bench_memory [--records 100000] [--passes 10]

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.common import RESULTS, Report, SeededHub, cached_sqlite_hub, say

PAGE = 1000


def measure(hub: SeededHub, passes: int) -> dict[str, Any]:
    samples: list[tuple[int, float]] = []
    with hub.server() as server, httpx.Client(timeout=120) as client:
        client.headers["Authorization"] = f"Bearer {hub.token(server.url)}"
        url = f"{server.url}/v1/agreements/{hub.agreement_id}/records"
        client.get(url, params={"limit": PAGE}).raise_for_status()  # warm-up page
        start = server.rss_mb()
        pulled = 0
        samples.append((0, start))
        for n in range(passes):
            cursor = None
            while True:
                params: dict[str, Any] = {"limit": PAGE}
                if cursor:
                    params["cursor"] = cursor
                response = client.get(url, params=params)
                response.raise_for_status()
                page = orjson.loads(response.content)
                pulled += page["released"] + page["withheld"]
                samples.append((pulled, server.rss_mb()))
                cursor = page["next_cursor"]
                if not cursor:
                    break
            say(f"memory: pass {n + 1}: {pulled:,} records, RSS {samples[-1][1]:.1f} MB")
    return {"start_mb": start, "samples": samples, "records": pulled}


def _chart(samples: list[tuple[int, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot([s[0] for s in samples], [s[1] for s in samples])
    ax.set_xlabel("records pulled")
    ax.set_ylabel("hub RSS (MB)")
    ax.set_title("Hub RSS while paging through a large pull")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def collect(quick: bool = False, records: int | None = None, passes: int | None = None) -> Report:
    records = records or (5_000 if quick else 100_000)
    passes = passes or (2 if quick else 10)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        os.environ.setdefault("BENCH_CACHE", str(Path(tmp) / "cache"))
        hub = cached_sqlite_hub(records, Path(tmp) / "sqlite")
        r = measure(hub, passes)
    samples = r["samples"]
    start, end = r["start_mb"], samples[-1][1]
    peak = max(s[1] for s in samples)
    half = samples[len(samples) // 2][1]
    report = Report(details={"records_per_pass": records, "passes": passes, **r})
    RESULTS.mkdir(parents=True, exist_ok=True)
    _chart(samples, RESULTS / "memory.png")
    pulled = f"{r['records']:,} records in {passes} passes of pages of {PAGE}"
    report.add(
        "memory", "RSS growth over the pull [sqlite]", end - start, "MB", start,
        "RSS at start", "< 50 MB", end - start < 50, note=pulled,
    )  # fmt: skip
    report.add(
        "memory", "RSS peak growth [sqlite]", peak - start, "MB", start, "RSS at start",
        "< 50 MB", peak - start < 50,
    )  # fmt: skip
    report.add(
        "memory", "RSS growth, second half [sqlite]", end - half, "MB", start, "RSS at start",
        "flat (< 5 MB)", end - half < 5,
    )  # fmt: skip
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=10)
    args = parser.parse_args()
    report = collect(records=args.records, passes=args.passes)
    for f in report.figures:
        print(f"{f.figure:40} {f.value:8.1f} {f.unit} (start {f.baseline:.1f} MB) {f.note}")


if __name__ == "__main__":
    main()
