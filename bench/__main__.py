"""``python -m bench`` (``make bench``): run every bench, print one table, write
``bench/results/latest.json`` and ``bench/results/latest.png``.

Each bench runs in a process of its own (so one bench's memory, threads and crashes never touch
another's figures) and hands back :class:`bench.common.Figure` rows; its own printout goes to a
log file named in the table's caption. Figures are compared with baselines measured in the same
run, never with constants; nothing asserts on time.

    python -m bench                 # everything, SQLite and PostgreSQL (< 10 minutes)
    python -m bench --quick         # small sizes, SQLite only (results beside the logs)
    python -m bench --only pipeline,http
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import inspect
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.common import ROOT, Figure, Report

RESULTS = ROOT / "bench" / "results"

#: name -> (module, timeout in seconds: quick, full)
BENCHES: dict[str, tuple[str, int, int]] = {
    "decision": ("bench.bench_decision", 60, 120),
    "crypto": ("bench.bench_crypto", 60, 90),
    "audit": ("bench.bench_audit", 60, 300),
    "deid": ("bench.bench_deid", 90, 240),
    "pipeline": ("bench.bench_pipeline", 120, 480),
    "http": ("bench.bench_http", 90, 180),
    "memory": ("bench.bench_memory", 90, 300),
    "ratelimit": ("bench.bench_ratelimit", 180, 600),
    "sdk": ("bench.bench_sdk", 60, 90),
}
#: Left out of --quick unless named with --only: Presidio and spaCy take ~15 s to load, and
#: every hub server process ~10 s to import. The pipeline bench reports RSS growth during its
#: pull, so --quick still has a memory figure.
QUICK_SKIP = {"deid", "http", "memory", "ratelimit"}


def _child(name: str, quick: bool, out: Path) -> int:
    """Run one bench in this process and write its report as JSON."""
    module = importlib.import_module(BENCHES[name][0])
    try:
        report: Report = module.collect(quick=quick)
    except Exception:  # noqa: BLE001 - a failed bench is reported, not raised
        traceback.print_exc()
        out.write_text(json.dumps({"error": traceback.format_exc(limit=3)}))
        return 1
    out.write_text(
        json.dumps(
            {"figures": [f.as_dict() for f in report.figures], "details": report.details},
            default=str,
        )
    )
    return 0


def seed_cache_dir() -> Path:
    """Where seeded hubs are kept between runs (under the git-ignored ``var/``), named by a
    digest of what shapes the seeded data: migrations, the records' models and publish service,
    crypto, the demo, and the bench's seeding functions. Any change to those seeds afresh;
    ``--fresh`` always does."""
    digest = hashlib.sha256()
    paths = [ROOT / f"hub/records/{name}.py" for name in ("models", "schemas", "service")]
    for folder in ("hub/store/migrations", "hub/crypto", "hub/demo"):
        paths.extend(sorted((ROOT / folder).rglob("*.py")))
    for path in paths:
        digest.update(path.relative_to(ROOT).as_posix().encode() + path.read_bytes())
    from bench import common  # the seeding code only: other edits to common.py keep the cache

    for part in (
        common.seed_hub, common.bulk_loans, common.publish_loans, common._loan_fields,
        common._mobile,
    ):  # fmt: skip
        digest.update(inspect.getsource(part).encode())
    digest.update(repr((common.DATASET, common.RECIPIENT, common.DEMO_CONSUMERS)).encode())
    return ROOT / "var" / "bench-cache" / digest.hexdigest()[:16]


def _run(
    name: str, quick: bool, logdir: Path, cache: Path, verbose: bool, results: Path
) -> tuple[dict[str, Any], float]:
    out = logdir / f"{name}.json"
    log = logdir / f"{name}.log"
    timeout = BENCHES[name][1] if quick else BENCHES[name][2]
    cmd = [sys.executable, "-m", "bench", "--child", name, "--out", str(out)]
    if quick:
        cmd.append("--quick")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "BENCH_CACHE": str(cache),  # seeded hubs shared by the benches (and by later runs)
        "BENCH_RESULTS": str(results),  # profiles and charts: committed only from a full run
    }
    t0 = time.perf_counter()
    with log.open("wb") as sink:
        target = None if verbose else sink
        # its own process group, so a timeout also ends the servers the bench started
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=target, stderr=target, start_new_session=True
        )
        try:
            code: int | str = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            code = f"timed out after {timeout} s"
    elapsed = time.perf_counter() - t0
    if out.exists():
        result: dict[str, Any] = json.loads(out.read_text())
    else:
        result = {"error": f"exit {code}; see {log}"}
    if code != 0 and "error" not in result:
        result["error"] = f"exit {code}; see {log}"
    return result, elapsed


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "" and abs(value) <= 1.0:
        text = f"{value:.3f}"
    elif abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def _verdict(ok: bool | None) -> str:
    return {True: "[green]met[/green]", False: "[red]missed[/red]", None: "[dim]-[/dim]"}[ok]


def _table(figures: list[Figure], errors: dict[str, str], caption: str) -> Table:
    table = Table(title="Tollhouse benchmarks", caption=caption, show_lines=False)
    for column, justify in (
        ("bench", "left"), ("figure", "left"), ("value", "right"), ("baseline", "right"),
        ("ratio", "right"), ("goal", "left"), ("verdict", "left"),
    ):  # fmt: skip
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for f in figures:
        baseline = _fmt(f.baseline, f.unit)
        if f.baseline_label:
            baseline = f"{baseline} [dim]({escape(f.baseline_label)})[/dim]"
        ratio = "-" if f.ratio is None else f"{f.ratio:.2f}×"
        figure = escape(f.figure) + (f" [dim]{escape(f.note)}[/dim]" if f.note else "")
        table.add_row(f.bench, figure, _fmt(f.value, f.unit), baseline, ratio, escape(f.goal),
                      _verdict(f.ok))  # fmt: skip
    for name, error in errors.items():
        table.add_row(name, f"[red]{escape(error.splitlines()[-1][:90])}[/red]", "", "", "", "",
                      "[red]error[/red]")  # fmt: skip
    return table


def _chart(figures: list[Figure], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [f for f in figures if f.ratio is not None and f.ratio > 0]
    if not rows:
        return
    height = max(3.0, 0.32 * len(rows) + 1.2)
    fig, ax = plt.subplots(figsize=(10, height))
    labels = [f"{f.bench}: {f.figure}"[:70] for f in rows]
    colours = [{True: "#2e7d32", False: "#c62828", None: "#78909c"}[f.ok] for f in rows]
    ax.barh(range(len(rows)), [f.ratio or 0 for f in rows], color=colours)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("value / baseline measured in the same run (log scale)")
    ax.set_title("Tollhouse benchmarks: green met, red missed, grey no goal")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, SQLite only")
    parser.add_argument("--only", default="", help="comma-separated bench names")
    parser.add_argument("--verbose", action="store_true", help="show each bench's printout")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="seed the hubs again instead of reusing var/bench-cache",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child, args.quick, args.out)

    console = Console(width=None if sys.stdout.isatty() else 180)
    names = [n for n in args.only.split(",") if n] or list(BENCHES)
    unknown = set(names) - set(BENCHES)
    if unknown:
        parser.error(
            f"unknown bench(es): {', '.join(sorted(unknown))}; known: {', '.join(BENCHES)}"
        )
    if args.quick and not args.only:
        names = [n for n in names if n not in QUICK_SKIP]
    logdir = Path(tempfile.mkdtemp(prefix="tollhouse-bench-"))
    cache = logdir / "cache" if args.fresh else seed_cache_dir()
    if not args.fresh and cache.parent.exists():
        for stale in cache.parent.iterdir():
            if stale != cache:
                shutil.rmtree(stale, ignore_errors=True)
    # Only a complete full run replaces the committed results; --quick and --only runs write
    # beside their logs, so a partial run never passes for the whole picture.
    out_dir = RESULTS if not args.quick and not args.only else logdir
    figures: list[Figure] = []
    errors: dict[str, str] = {}
    benches: dict[str, Any] = {}
    started = time.perf_counter()
    for name in names:
        console.print(f"[bold]{name}[/bold] ...", end=" ")
        result, elapsed = _run(name, args.quick, logdir, cache, args.verbose, out_dir)
        console.print(f"{elapsed:.0f} s" + (" [red]error[/red]" if "error" in result else ""))
        benches[name] = {"seconds": round(elapsed, 1), **result}
        if "error" in result:
            errors[name] = result["error"]
        for row in result.get("figures", []):
            row.pop("ratio", None)
            figures.append(Figure(**row))
    total = time.perf_counter() - started
    caption = (
        f"{'quick' if args.quick else 'full'} run, {total:.0f} s on {os.cpu_count()} cores; "
        f"each bench's printout in {logdir}"
    )
    console.print(_table(figures, errors, caption))

    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "seconds": round(total, 1),
        "seed_cache": str(cache),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average": os.getloadavg(),
        },
        "figures": [f.as_dict() for f in figures],
        "benches": benches,
    }
    (out_dir / "latest.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    _chart(figures, out_dir / "latest.png")
    console.print(f"wrote {out_dir / 'latest.json'} and {out_dir / 'latest.png'}")
    slowest = ", ".join(
        f"{n} {b['seconds']:.0f} s"
        for n, b in sorted(benches.items(), key=lambda kv: -kv[1]["seconds"])
    )
    goal = 60 if args.quick else 600
    console.print(f"run time {total:.0f} s (goal < {goal} s): {slowest}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
