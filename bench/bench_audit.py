"""Audit log benchmark: append rate, proofs at 1M leaves, and verification of a 1M-event export.

Prints figures only; nothing here asserts on time.

    .venv/bin/python bench/bench_audit.py                      # SQLite (+ PostgreSQL if reachable)
    .venv/bin/python bench/bench_audit.py --leaves 100000 --events 100000   # quicker

PostgreSQL: TOLLHOUSE_BENCH_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/
tollhouse_audit_bench, created if missing); the bench creates and drops its own tables there.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import rfc8785
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from hub.audit import (
    AuditEvent,
    LogSigner,
    append_event,
    append_events,
    consistency_proof,
    current_tree_head,
    export_events,
    prove_inclusion,
    sign_tree_head,
    verify_export,
)
from hub.audit.merkle import (
    MerkleTree,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from hub.audit.models import AUDIT_TABLES
from hub.store.db import make_engine, make_session_factory

if TYPE_CHECKING:  # imported lazily, so the script also runs as a file
    from bench.common import Report

ORIGIN = "tollhouse.bench/audit"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/tollhouse_audit_bench"


def event(n: int) -> dict[str, Any]:
    return {
        "kind": "release" if n % 10 else "release.denied",
        "partner_id": f"prt_lender{n % 7}",
        "agreement_id": f"agr_{n % 13}",
        "dataset_id": "ds_vehicle_master",
        "purpose": "credit_assessment",
        "request_id": f"req_{n:09d}",
        "outcome": "allowed" if n % 10 else "denied",
        "decision_ids": [f"dec_{n:09d}"],
        "policy_revision": "rev_42",
        "consent_ids": [f"cns_{n:09d}"],
        "subjects": [f"psn_{n:09d}"],
        "fields_released": ["model", "build_year", "msrp_band"],
        "fields_withheld": ["vin"],
        "transforms": {"msrp": "generalize"},
        "counts": {"records": 1, "released": 1, "withheld": 0},
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def fresh_tables(engine: Engine) -> None:
    AuditEvent.metadata.drop_all(engine, tables=AUDIT_TABLES)
    AuditEvent.metadata.create_all(engine, tables=AUDIT_TABLES)


def bench_appends(
    engine: Engine, label: str, total: int, batch: int, *, together: bool = False
) -> float:
    """Events/s appended and committed in transactions of ``batch``: one ``append_event`` call
    per event, or (``together``) one ``append_events`` call per transaction, as a page does."""
    fresh_tables(engine)
    factory = make_session_factory(engine)
    t0 = time.perf_counter()
    n = 0
    while n < total:
        with factory() as session:
            if together:
                append_events(session, [event(n + i) for i in range(batch)])
                n += batch
            else:
                for _ in range(batch):
                    append_event(session, event(n))
                    n += 1
            session.commit()
    elapsed = time.perf_counter() - t0
    canon, _ = timed(lambda: [rfc8785.dumps(event(i)) for i in range(1000)])
    how = "append_events per transaction" if together else "append_event per event"
    print(
        f"append [{label}]: {total} events in transactions of {batch} ({how}): "
        f"{total / elapsed:,.0f} events/s ({elapsed * 1e6 / total:.0f} us/event, of which "
        f"~{canon * 1e3:.0f} us RFC 8785 canonicalisation)"
    )
    AuditEvent.metadata.drop_all(engine, tables=AUDIT_TABLES)
    return total / elapsed


def pg_engine() -> Engine | None:
    url = os.environ.get("TOLLHOUSE_BENCH_PG_URL", DEFAULT_PG)
    try:
        import psycopg

        base, _, dbname = url.replace("postgresql+psycopg://", "postgresql://").rpartition("/")
        with psycopg.connect(f"{base}/postgres", autocommit=True, connect_timeout=3) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
            if exists.fetchone() is None:
                conn.execute(f'CREATE DATABASE "{dbname}"')
        engine = make_engine(url)
        with engine.connect():
            pass
        return engine
    except Exception as exc:  # noqa: BLE001 - the bench only reports that PG is unavailable
        print(f"append [postgresql]: skipped ({type(exc).__name__})")
        return None


def bench_merkle(leaves: int, probes: int) -> dict[str, float]:
    hashes = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(leaves)]
    t_root, root = timed(lambda: root_hash(hashes))
    t_build, tree = timed(lambda: MerkleTree(hashes))
    assert tree.root() == root
    rng = random.Random(7)
    size = leaves
    gen: list[float] = []
    ver: list[float] = []
    clock = time.perf_counter
    for _ in range(probes):
        index = rng.randrange(size)
        t0 = clock()
        proof = tree.inclusion_proof(index, size)
        t1 = clock()
        ok = verify_inclusion(hashes[index], index, size, proof, root)
        t2 = clock()
        assert ok
        gen.append(t1 - t0)
        ver.append(t2 - t1)
    cgen: list[float] = []
    cver: list[float] = []
    for _ in range(probes):
        old = rng.randrange(1, size)
        old_root = tree.root(old)
        t0 = clock()
        proof = tree.consistency_proof(old, size)
        t1 = clock()
        ok = verify_consistency(old, size, old_root, root, proof)
        t2 = clock()
        assert ok
        cgen.append(t1 - t0)
        cver.append(t2 - t1)

    def us(xs: list[float]) -> str:
        return f"median {statistics.median(xs) * 1e6:.0f} us, max {max(xs) * 1e6:.0f} us"

    print(f"merkle: MTH of {leaves:,} leaf hashes {t_root:.2f} s; MerkleTree build {t_build:.2f} s")
    print(f"merkle: inclusion proof at {leaves:,} leaves: generate {us(gen)}; verify {us(ver)}")
    print(f"merkle: consistency proof at {leaves:,} leaves: generate {us(cgen)}; verify {us(cver)}")
    return {
        "inclusion_generate_us": statistics.median(gen) * 1e6,
        "inclusion_verify_us": statistics.median(ver) * 1e6,
        "consistency_generate_us": statistics.median(cgen) * 1e6,
        "consistency_verify_us": statistics.median(cver) * 1e6,
        "leaf_hash_once_us": t_root / leaves * 1e6,
    }


def bench_export(events: int, workdir: Path) -> dict[str, float]:
    engine = make_engine(f"sqlite:///{workdir / 'bench-export.db'}")
    fresh_tables(engine)
    signer = LogSigner.load_or_create(workdir / "keys" / "audit.pem", ORIGIN)
    # Canonical bytes via orjson with sorted keys: identical to RFC 8785 for these events (checked
    # on a sample) and 20x faster, so the 1M-event log is quick to build.
    created_at = datetime.now(UTC)
    t_fill0 = time.perf_counter()
    chunk = 20_000
    sql = (
        'INSERT INTO audit_events ("index", event_id, created_at, kind, partner_id, dataset_id,'
        " purpose, outcome, request_id, canonical, leaf_hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    stamp = created_at.isoformat(sep=" ")
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        for lo in range(0, events, chunk):
            rows = []
            for i in range(lo, min(events, lo + chunk)):
                doc = event(i) | {
                    "event_id": f"evt_{i:016d}",
                    "index": i,
                    "time": "2026-11-25T12:00:00.000000Z",
                }
                canonical = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
                if i % 50_000 == 0:
                    assert canonical == rfc8785.dumps(doc)
                rows.append(
                    (
                        i,
                        doc["event_id"],
                        stamp,
                        doc["kind"],
                        doc["partner_id"],
                        doc["dataset_id"],
                        doc["purpose"],
                        doc["outcome"],
                        doc["request_id"],
                        canonical,
                        leaf_hash(canonical),
                    )
                )
            raw.executemany(sql, rows)
    t_fill = time.perf_counter() - t_fill0
    with Session(engine) as session:
        t_sign, head = timed(lambda: sign_tree_head(session, signer))
        session.commit()
        out = workdir / "export.jsonl"
        t_export, _ = timed(lambda: export_events(session, out, 0, events))
        # What the regulator API does per request on this log (proofs read the stored leaf
        # hashes each time), and what signing on demand costs after 1,000 new events.
        t_incl, incl = timed(lambda: prove_inclusion(session, events // 3, events))
        assert verify_inclusion(incl.leaf_hash, events // 3, events, incl.path, head.root_hash)
        t_cons, cons = timed(lambda: consistency_proof(session, events // 3 + 1, events))
        append_events(session, [event(events + i) for i in range(1000)])
        session.commit()
        t_resign, grown = timed(lambda: current_tree_head(session, signer))
        session.commit()
        assert grown.size == events + 1000
        assert verify_consistency(
            head.size,
            grown.size,
            head.root_hash,
            grown.root_hash,
            consistency_proof(session, head.size, grown.size),
        )
    size_mb = out.stat().st_size / 1e6
    cpu0 = time.process_time()
    t_verify, report = timed(lambda: verify_export(out, signer.public_key))
    cpu_verify = time.process_time() - cpu0
    assert report.ok, report.problems

    def hash_once() -> bytes:
        h = hashlib.sha256()
        with out.open("rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        return h.digest()

    def hash_lines() -> int:
        n = 0
        with out.open("rb") as f:
            for line in f:
                hashlib.sha256(b"\x00" + line).digest()
                n += 1
        return n

    t_once, _ = timed(hash_once)
    t_lines, _ = timed(hash_lines)
    print(f"export: built a {events:,}-event SQLite log in {t_fill:.1f} s (bench set-up)")
    print(f"export: sign_tree_head over {head.size:,} events (from empty) {t_sign:.2f} s")
    print(f"export: export_events {events:,} events ({size_mb:.0f} MB) {t_export:.2f} s")
    print(
        f"serve: at {events:,} events, an inclusion proof from the database {t_incl:.2f} s, "
        f"a consistency proof {t_cons:.2f} s ({len(cons)} hashes); signing on demand after "
        f"1,000 new events {t_resign * 1e3:.0f} ms"
    )
    print(
        f"export: verify_export {t_verify:.2f} s wall, {cpu_verify:.2f} s CPU (goal < 10 s); "
        f"load average {os.getloadavg()[0]:.1f}; hashing the same bytes once "
        f"{t_once:.2f} s; one SHA-256 per line {t_lines:.2f} s"
    )
    engine.dispose()
    return {
        "verify_s": t_verify,
        "verify_cpu_s": cpu_verify,
        "hash_once_s": t_once,
        "hash_lines_s": t_lines,
        "export_s": t_export,
        "db_inclusion_proof_s": t_incl,
        "db_consistency_proof_s": t_cons,
        "sign_1000_new_ms": t_resign * 1e3,
        "sign_from_empty_s": t_sign,
    }


def collect(quick: bool = False) -> Report:
    """The figures for ``python -m bench`` (quick: 100k leaves and a 50k-event export)."""
    from bench.common import Report

    leaves = 100_000 if quick else 1_000_000
    events = 50_000 if quick else 1_000_000
    appends = 500 if quick else 2000
    report = Report(details={"leaves": leaves, "events": events})
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        workdir = Path(tmp)
        sqlite = make_engine(f"sqlite:///{workdir / 'bench-append.db'}")
        engines = {"sqlite": sqlite}
        pg = None if quick else pg_engine()
        if pg is not None:
            engines["postgresql"] = pg
        for label, eng in engines.items():
            one = bench_appends(eng, label, appends, 100)
            many = bench_appends(eng, label, appends, 100, together=True)
            eng.dispose()
            report.add(
                "audit", f"appends/s, one call per event, 100 per transaction [{label}]", one,
                "events/s", None, "", "≥ 3,000/s", one >= 3000,
            )  # fmt: skip
            report.add(
                "audit", f"appends/s, append_events of 100 per transaction [{label}]", many,
                "events/s", one, "one call per event", "≥ 3,000/s", many >= 3000,
            )  # fmt: skip
        m = bench_merkle(leaves, 200 if quick else 1000)
        report.details["merkle"] = m
        report.add(
            "audit", f"inclusion proof generate at {leaves:,}", m["inclusion_generate_us"], "µs",
            m["leaf_hash_once_us"], "one leaf hash",
        )  # fmt: skip
        report.add(
            "audit", f"inclusion proof verify at {leaves:,}", m["inclusion_verify_us"], "µs",
            m["leaf_hash_once_us"], "one leaf hash",
        )  # fmt: skip
        report.add(
            "audit", f"consistency proof verify at {leaves:,}", m["consistency_verify_us"], "µs",
            m["leaf_hash_once_us"], "one leaf hash",
        )  # fmt: skip
        e = bench_export(events, workdir)
        report.details["export"] = e
        report.add(
            "audit", f"verify a {events:,}-event export", e["verify_s"], "s", e["hash_once_s"],
            "SHA-256 of the same bytes once", "< 10 s at 1M", e["verify_s"] < 10 * events / 1e6,
        )  # fmt: skip
        report.add(
            "audit", f"inclusion proof from the database at {events:,}",
            e["db_inclusion_proof_s"], "s", e["sign_from_empty_s"], "signing a head from empty",
        )  # fmt: skip
        report.add(
            "audit", "sign a head on demand after 1,000 new events", e["sign_1000_new_ms"], "ms",
            e["sign_from_empty_s"] * 1e3, "signing a head from empty",
        )  # fmt: skip
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--appends", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["append", "merkle", "export"], default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        workdir = Path(tmp)
        if args.only in (None, "append"):
            sqlite = make_engine(f"sqlite:///{workdir / 'bench-append.db'}")
            for together in (False, True):
                bench_appends(sqlite, "sqlite", args.appends, args.batch, together=together)
            sqlite.dispose()
            pg = pg_engine()
            if pg is not None:
                for together in (False, True):
                    bench_appends(pg, "postgresql", args.appends, args.batch, together=together)
                pg.dispose()
        if args.only in (None, "merkle"):
            bench_merkle(args.leaves, args.probes)
        if args.only in (None, "export"):
            bench_export(args.events, workdir)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
