"""Several hub processes appending at once produce one gap-free, consistent log."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from hub.audit import AuditEvent, LogSigner, export_events, sign_tree_head, verify_export
from hub.audit.merkle import root_hash
from tests.audit.audit_helpers import append_worker


def _run_workers(url: str, workers: int, per_worker: int) -> list[list[int]]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(workers)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=append_worker, args=(url, w, per_worker, barrier, results))
        for w in range(workers)
    ]
    for proc in procs:
        proc.start()
    out = [results.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    assert all(isinstance(r, list) for r in out), out
    return out


def _check_log(session: Session, signer: LogSigner, tmp_path: Path, total: int) -> None:
    rows = session.execute(
        select(AuditEvent.index, AuditEvent.leaf_hash).order_by(AuditEvent.index)
    )
    indices, hashes = zip(*rows, strict=True)
    assert list(indices) == list(range(total))
    head = sign_tree_head(session, signer)
    session.commit()
    assert head.size == total and head.root_hash == root_hash(list(hashes))
    out = tmp_path / "audit.jsonl"
    export_events(session, out, 0, total)
    report = verify_export(out, signer.public_key)
    assert report.ok, report.problems


@pytest.mark.postgres
@pytest.mark.slow
def test_two_processes_on_postgresql(
    engine: Engine, session: Session, signer: LogSigner, tmp_path: Path
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip(
            "needs PostgreSQL (the advisory-lock sequencer): set TOLLHOUSE_DATABASE_URL="
            "postgresql+psycopg://postgres@127.0.0.1:5432/<a database of your own>"
        )
    url = engine.url.render_as_string(hide_password=False)
    results = _run_workers(url, 2, 200)
    for indices in results:
        assert len(indices) == 200 and indices == sorted(indices)
    assert sorted(results[0] + results[1]) == list(range(400))
    _check_log(session, signer, tmp_path, 400)


@pytest.mark.slow
def test_two_processes_on_sqlite(
    engine: Engine, session: Session, signer: LogSigner, tmp_path: Path
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("the SQLite variant of the concurrency test")
    url = engine.url.render_as_string(hide_password=False)
    results = _run_workers(url, 2, 20)
    assert sorted(results[0] + results[1]) == list(range(40))
    _check_log(session, signer, tmp_path, 40)
