"""``connect pull``: sinks, checkpoints, and resuming after a crash with no loss or duplicates."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from joserfc.jwk import ECKey
from typer.testing import CliRunner

from connectors import Page, Record
from connectors._checkpoint import Checkpoint
from connectors._sinks import CsvSink, JsonlSink, SinkError, SqlSink, open_sink
from connectors.cli import app
from tests.connectors.fakehub import FakeHub, make_records, serve

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def rec(key: str, version: int = 1, **fields: Any) -> Record:
    return Record(key, version, f"p-{key}", fields)


@pytest.fixture
def url(hub: FakeHub) -> Iterator[str]:
    hub.records = make_records(250)
    hub.withheld_every = 10
    with serve(hub) as base:
        yield base


def pull_args(url: str, sink: str, state: Path, *extra: str) -> list[str]:
    return [
        "pull", "--hub", url, "--client-id", "dealer-1", "--client-secret", "s3cret:with spaces",
        "--agreement", "agr-1", "--sink", sink, "--state", str(state), "--page-size", "40", *extra,
    ]  # fmt: skip


def sink_keys(kind: str, path: Path) -> list[str]:
    if kind == "jsonl":
        return [json.loads(line)["record_key"] for line in path.read_text().splitlines()]
    if kind == "csv":
        with open(path, newline="") as f:
            return [row["record_key"] for row in csv.DictReader(f)]
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        keys = [r[0] for r in conn.execute(sa.text("select record_key from tollhouse_records"))]
    engine.dispose()
    return keys


def sink_spec(kind: str, path: Path) -> str:
    return f"sqlite:///{path}" if kind == "sqlite" else f"{kind}:{path}"


EXPECTED = [f"r{i:05d}" for i in range(250) if i % 10]


# -- sinks -----------------------------------------------------------------------------------


def test_jsonl_sink_restore_truncates_to_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    sink = JsonlSink(path)
    sink.restore(None)
    first = sink.write([rec("a", note="x")])
    sink.write([rec("b")])  # written, but never checkpointed
    sink.close()
    sink = JsonlSink(path)
    sink.restore(first)
    sink.write([rec("c")])
    sink.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["record_key"] for x in lines] == ["a", "c"]
    assert lines[0] == {"record_key": "a", "version": 1, "subject": "p-a", "fields": {"note": "x"}}


def test_file_sink_refuses_existing_data_without_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"x": 1}\n')
    with pytest.raises(SinkError, match="--restart"):
        JsonlSink(path).restore(None)
    sink = JsonlSink(path)
    sink.restore(0)  # --restart
    sink.close()
    assert path.read_text() == ""


def test_csv_sink_header_and_cells(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    sink = CsvSink(path, ["make", "income", "tags"])
    sink.restore(None)
    pos = sink.write([rec("a", make="BYD", income=1.5, tags=["x", "y"]), rec("b", make="a,b")])
    sink.close()
    sink = CsvSink(path, ["ignored-on-resume"])
    sink.restore(pos)
    sink.write([rec("c", income=True)])
    with pytest.raises(SinkError):
        sink.write([rec("d", unknown=1)])
    sink.close()
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [
        ["record_key", "version", "subject", "make", "income", "tags"],
        ["a", "1", "p-a", "BYD", "1.5", '["x","y"]'],
        ["b", "1", "p-b", "a,b", "", ""],
        ["c", "1", "p-c", "", "true", ""],
    ]


def test_sqlite_sink_upserts_by_record_key(tmp_path: Path) -> None:
    db = tmp_path / "out.db"
    sink = SqlSink(f"sqlite:///{db}", "agr-1")
    sink.restore(None)
    sink.write([rec("a", income=1), rec("b", income=2)])
    sink.write([rec("a", 2, income=10)])  # a replayed or updated record replaces the row
    sink.close()
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select record_key, version, fields from tollhouse_records order by 1")
        ).all()
    engine.dispose()
    assert [(k, v, json.loads(f)) for k, v, f in rows] == [
        ("a", 2, {"income": 10}),
        ("b", 1, {"income": 2}),
    ]


def test_open_sink_specs(tmp_path: Path) -> None:
    assert isinstance(open_sink(f"jsonl:{tmp_path}/a", "x"), JsonlSink)
    assert isinstance(open_sink(f"csv:{tmp_path}/a", "x"), CsvSink)
    sql = open_sink(f"sqlite:///{tmp_path}/a.db", "x")
    assert isinstance(sql, SqlSink)
    sql.close()
    with pytest.raises(SinkError):
        open_sink("parquet:/x", "x")


def test_checkpoint_is_replaced_atomically(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    cp = Checkpoint("agr-1", "jsonl:x")
    page = Page((rec("a"),), released=1, withheld=2, next_cursor="c1", decision_revision="r")
    cp.advance(page, 10).save(state)
    assert Checkpoint.load(state) == Checkpoint(
        "agr-1", "jsonl:x", cursor="c1", position=10, pages=1, records=1, released=1, withheld=2
    )
    assert os.listdir(tmp_path) == ["state.json"]  # no temp file left behind


# -- the command -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["jsonl", "csv", "sqlite"])
def test_pull_into_sink(url: str, tmp_path: Path, kind: str) -> None:
    out = tmp_path / f"out.{kind}"
    result = runner.invoke(app, pull_args(url, sink_spec(kind, out), tmp_path / "state.json"))
    assert result.exit_code == 0, result.output
    assert sorted(sink_keys(kind, out)) == EXPECTED
    assert "released 225, withheld 25" in result.stdout
    again = runner.invoke(app, pull_args(url, sink_spec(kind, out), tmp_path / "state.json"))
    assert again.exit_code == 0 and "Already complete" in again.stdout
    assert sorted(sink_keys(kind, out)) == EXPECTED


class Crash(Exception):
    pass


@pytest.mark.parametrize("kind", ["jsonl", "csv", "sqlite"])
@pytest.mark.parametrize("crash_page", [1, 3])
def test_resume_after_crash_between_sink_write_and_checkpoint(
    url: str, tmp_path: Path, kind: str, crash_page: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, state = tmp_path / f"out.{kind}", tmp_path / "state.json"
    real_save = Checkpoint.save
    calls = 0

    def crashing_save(self: Checkpoint, path: Path) -> None:
        nonlocal calls
        calls += 1
        if calls == 1 + crash_page:  # the page is in the sink; its checkpoint never happens
            raise Crash
        real_save(self, path)

    monkeypatch.setattr(Checkpoint, "save", crashing_save)
    result = runner.invoke(app, pull_args(url, sink_spec(kind, out), state))
    assert isinstance(result.exception, Crash)
    saved = Checkpoint.load(state)
    assert saved is not None and saved.pages == crash_page - 1
    assert saved.cursor == (f"c{40 * (crash_page - 1)}" if crash_page > 1 else None)
    in_sink = [k for k in EXPECTED if k < f"r{40 * crash_page:05d}"]  # the crashed page included
    assert sorted(sink_keys(kind, out)) == in_sink

    monkeypatch.setattr(Checkpoint, "save", real_save)
    result = runner.invoke(app, pull_args(url, sink_spec(kind, out), state))
    assert result.exit_code == 0, result.output
    keys = sink_keys(kind, out)
    assert sorted(keys) == EXPECTED  # nothing lost, nothing twice
    assert "Pulled 250 records" not in result.stdout  # records counts released ones
    assert "released 225, withheld 25" in result.stdout


def test_restart_pulls_again_from_scratch(url: str, tmp_path: Path) -> None:
    out, state = tmp_path / "out.jsonl", tmp_path / "state.json"
    assert runner.invoke(app, pull_args(url, f"jsonl:{out}", state)).exit_code == 0
    result = runner.invoke(app, pull_args(url, f"jsonl:{out}", state, "--restart"))
    assert result.exit_code == 0, result.output
    assert sorted(sink_keys("jsonl", out)) == EXPECTED


def test_state_of_another_pull_is_refused(url: str, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    Checkpoint("agr-2", "jsonl:x").save(state)
    result = runner.invoke(app, pull_args(url, f"jsonl:{tmp_path}/o", state))
    assert result.exit_code == 2
    assert "another pull" in result.output


def test_hub_error_is_reported_not_raised(url: str, tmp_path: Path) -> None:
    args = pull_args(url, f"jsonl:{tmp_path}/o", tmp_path / "s.json")
    args[args.index("--agreement") + 1] = "agr-404"
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "404 Not Found" in result.output
    assert "s3cret" not in result.output


def test_pull_decrypts_with_private_key_jwt(hub: FakeHub, tmp_path: Path) -> None:
    signing, recipient = ECKey.generate_key("P-256"), ECKey.generate_key("P-256")
    hub.client_secret, hub.public_key, hub.recipient_key = None, signing, recipient
    (tmp_path / "sign.pem").write_bytes(signing.as_pem(private=True))
    (tmp_path / "dec.jwk").write_text(json.dumps(recipient.as_dict(private=True)))
    out = tmp_path / "out.jsonl"
    with serve(hub) as base:
        args = pull_args(base, f"jsonl:{out}", tmp_path / "s.json")
        i = args.index("--client-secret")
        args[i : i + 2] = ["--private-key", str(tmp_path / "sign.pem")]
        args += ["--decryption-key", str(tmp_path / "dec.jwk")]
        result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    incomes = [json.loads(x)["fields"]["income"] for x in out.read_text().splitlines()]
    assert incomes == [1000 + i for i in range(25)]


@pytest.mark.slow
def test_kill_9_mid_pull_resumes_exactly(hub: FakeHub, tmp_path: Path) -> None:
    hub.records = make_records(400)
    reached, release = threading.Event(), threading.Event()

    def hold_page(offset: int) -> None:
        if offset == 200 and not release.is_set():
            reached.set()
            release.wait(timeout=60)

    hub.on_page = hold_page
    out, state = tmp_path / "out.jsonl", tmp_path / "state.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with serve(hub) as base:
        cmd = [sys.executable, "-m", "connectors.cli", *pull_args(base, f"jsonl:{out}", state)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert reached.wait(timeout=60), proc.communicate(timeout=5)
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)
        finally:
            release.set()
        assert proc.returncode == -signal.SIGKILL
        saved = Checkpoint.load(state)
        assert saved is not None and saved.cursor == "c200"
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sink_keys("jsonl", out) == [f"r{i:05d}" for i in range(400)]
