"""``make bench ARGS=--quick`` (the development run) completes: every quick bench runs and
reports figures, none ends in an error. It asserts nothing about the figures themselves (these
machines are shared; the numbers are for people), only that the harness works."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    bool(os.environ.get("TOLLHOUSE_DATABASE_URL")),
    reason="the quick benches seed SQLite hubs of their own: once per suite run is enough",
)
def test_the_quick_benches_run_to_the_end(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--fresh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    written = re.search(r"wrote (\S+latest\.json)", done.stdout)
    assert written, done.stdout[-2000:]
    results = Path(written.group(1))
    # a partial run never replaces the committed results
    assert not results.is_relative_to(ROOT)
    report = json.loads(results.read_text())
    shutil.rmtree(results.parent)  # the run's logs and seeded hubs
    assert report["mode"] == "quick"
    for name, bench in report["benches"].items():
        assert "error" not in bench, f"{name}: {bench['error']}"
        assert bench["figures"], f"{name} reported no figure"
