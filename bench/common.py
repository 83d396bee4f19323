"""What the benches share: the figure type, loopback servers, PostgreSQL scratch databases and a
seeded hub with many records.

Nothing here asserts on time; benches return :class:`Figure` rows and the harness
(``python -m bench``) prints them beside their baselines and goals.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
#: Where a complete full run's files go (committed). ``python -m bench`` points a partial or
#: quick run's benches elsewhere (``BENCH_RESULTS``), so that they never replace these.
RESULTS = Path(os.environ.get("BENCH_RESULTS") or ROOT / "bench" / "results")
PG_SERVER = os.environ.get("TOLLHOUSE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")


@dataclass
class Figure:
    """One measured figure, with its baseline measured in the same run and its goal.

    ``ratio`` is value / baseline. ``ok`` is the verdict against the goal (None: no goal, or
    nothing to compare with).
    """

    bench: str
    figure: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    goal: str = ""
    ok: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        assert self.baseline is not None
        return self.value / self.baseline

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ratio": self.ratio}


@dataclass
class Report:
    """What one bench hands back: figures, plus free-form details for latest.json."""

    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, *args: Any, **kwargs: Any) -> Figure:
        fig = Figure(*args, **kwargs)
        self.figures.append(fig)
        return fig


def say(*parts: object) -> None:
    """Progress on stderr (stdout is the bench's own printout)."""
    print(*parts, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ servers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Uvicorn:
    """``uvicorn <factory> --factory`` in its own process on a loopback port (one worker)."""

    def __init__(self, factory: str, env: Mapping[str, str], ready_path: str = "/healthz"):
        self.factory = factory
        self.env = dict(env)
        self.ready_path = ready_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Uvicorn:
        cmd = [
            sys.executable, "-m", "uvicorn", self.factory, "--factory",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", "1", "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        env = {**os.environ, **self.env, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(cmd, env=env, cwd=ROOT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.factory} exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.factory} did not start")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (from /proc), in seconds."""
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(parts[11]) + int(parts[12])) / ticks


# ------------------------------------------------------------------------------- databases


def pg_available() -> bool:
    try:
        import psycopg

        url = PG_SERVER.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(f"{url}/postgres", connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001 - only tells whether PostgreSQL is there
        return False


@contextmanager
def pg_database(name: str) -> Iterator[str]:
    """A scratch PostgreSQL database of the bench's own, dropped afterwards."""
    import psycopg

    admin = PG_SERVER.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    db = f"tollhouse_bench_{name}_{os.getpid()}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        yield f"{PG_SERVER}/{db}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@contextmanager
def scratch_database(kind: str, workdir: Path, name: str) -> Iterator[str]:
    if kind == "postgresql":
        with pg_database(name) as url:
            yield url
    else:
        yield f"sqlite:///{workdir / (name + '.db')}"


# --------------------------------------------------------------------------- a seeded hub

#: The settings' maxima for every route class: a bucket no bench empties.
UNREACHED_RATE_LIMITS = (
    '{"pull": {"per_minute": 1000000, "burst": 100000}, '
    '"api": {"per_minute": 1000000, "burst": 100000}, '
    '"token": {"per_minute": 1000000, "burst": 100000}}'
)
DATASET = "dealer-huadong.loan-applications"
RECIPIENT = "lender-jinqiao"
DEMO_CONSUMERS = 40


@dataclass
class SeededHub:
    data_dir: Path
    database_url: str
    issuer: str
    port: int
    credentials: dict[str, Any]
    agreement_id: str
    records: int
    timings: dict[str, float]

    def env(self) -> dict[str, str]:
        return {
            "TOLLHOUSE_DATA_DIR": str(self.data_dir),
            "TOLLHOUSE_DATABASE_URL": self.database_url,
            "TOLLHOUSE_ISSUER": self.issuer,
            # the per-partner limiter runs as shipped, with limits no bench reaches: the figures
            # are the hub's work, not 429s (bench_ratelimit measures the limiter itself)
            "TOLLHOUSE_RATE_LIMITS": UNREACHED_RATE_LIMITS,
        }

    def server(self) -> Uvicorn:
        server = Uvicorn("hub.app:create_served_app", self.env())
        server.port = self.port
        server.url = self.issuer
        return server

    def token(self, base_url: str, ref: str = RECIPIENT) -> str:
        partner = self.credentials["partners"][ref]
        response = httpx.post(
            f"{base_url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(partner["client_id"], partner["client_secret"]),
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token


def _loan_fields(n: int, rng: Any) -> dict[str, Any]:
    return {
        "applicant_name": rng.choice("王李张刘陈杨黄赵吴周") + rng.choice("伟芳娜敏静磊"),
        "birth_date": f"19{rng.randrange(60, 99)}-0{rng.randrange(1, 9)}-1{rng.randrange(0, 9)}",
        "id_number": "",  # set to the subject's
        "mobile": "",
        "address": f"上海市浦东新区世纪大道{n % 2000}号",
        "monthly_income_cny": rng.randrange(5_000, 80_000),
        "vin": "",
        "amount_cny": rng.randrange(50_000, 400_000),
        "term_months": rng.choice((12, 24, 36, 48, 60)),
        "down_payment_cny": rng.randrange(10_000, 100_000),
        "applied_on": f"2026-{rng.randrange(1, 10):02d}-{rng.randrange(10, 28)}",
        "lender": "lender-jinqiao",
    }


def _mobile(prefix: str, i: int) -> str:
    """The ``i``-th synthetic subject's mobile (distinct for every i < 10**9)."""
    return f"13{(sum(map(ord, prefix)) * 100_003 + i * 7919) % 10**9:09d}"


def bulk_loans(
    runtime: Any,
    dataset_id: str,
    start: int,
    records: int,
    *,
    per_subject: int = 10,
    batch: int = 2000,
    key_prefix: str = "BENCH",
) -> tuple[float, list[str]]:
    """Records ``start`` .. ``start + records - 1`` written in bulk, for speed: new subjects and
    their blind-indexed mobiles, fields sealed by the hub's FieldProtector (a data key per
    subject, as publish does), content digests as publish computes them, and one multi-row
    INSERT per batch. Skips only the publish service's per-record validation and ORM objects.
    """
    import random

    from sqlalchemy import insert

    from hub.demo.population import generate_population
    from hub.records.models import DataSubject, Record, SubjectIdentifier
    from hub.records.service import _content_digest, parse_data_time
    from hub.store.base import new_id, utcnow
    from hub.store.db import unit_of_work

    rng = random.Random(f"{dataset_id}{key_prefix}{start}")
    people = generate_population(seed=23, consumers=500).consumers
    protector = runtime.protector
    subject_ids: dict[int, str] = {}
    mobiles: list[str] = []
    t0 = time.perf_counter()
    now = utcnow()
    for lo in range(start, start + records, batch):
        hi = min(start + records, lo + batch)
        with unit_of_work(runtime.session_factory) as session:
            fresh = sorted({n // per_subject for n in range(lo, hi)} - set(subject_ids))
            if fresh:
                for s in fresh:
                    subject_ids[s] = new_id("sub")
                    mobiles.append(_mobile(key_prefix, s))
                session.execute(
                    insert(DataSubject),
                    [
                        {"id": subject_ids[s], "jurisdiction": "CN", "created_at": now}
                        for s in fresh
                    ],
                )
                session.execute(
                    insert(SubjectIdentifier),
                    [
                        {"subject_id": subject_ids[s], "kind": "mobile",
                         "digest": protector.blind_index("mobile", _mobile(key_prefix, s))}
                        for s in fresh
                    ],
                )  # fmt: skip
            rows = []
            for n in range(lo, hi):
                s = n // per_subject
                subject_id = subject_ids[s]
                fields = _loan_fields(n, rng)
                fields["id_number"] = people[s % len(people)].id_number
                fields["mobile"] = _mobile(key_prefix, s)
                fields["vin"] = f"LSVAA4182E2{n % 10**6:06d}"
                key = f"{key_prefix}-{n:08d}"
                digest = _content_digest(protector, dataset_id, subject_id, fields)
                rows.append(
                    {
                        "dataset_id": dataset_id, "record_key": key, "version": 1,
                        "schema_version": 1, "subject_id": subject_id, "content_digest": digest,
                        "sealed": protector.seal_fields(
                            session, subject_id=subject_id, dataset_id=dataset_id,
                            record_key=key, fields=fields,
                        ),
                        "occurred_at": parse_data_time(fields["applied_on"], "date"),
                        "created_at": now, "updated_at": now,
                    }
                )  # fmt: skip
            session.execute(insert(Record), rows)
    return time.perf_counter() - t0, mobiles


def publish_loans(
    runtime: Any,
    dataset_id: str,
    records: int,
    *,
    per_subject: int = 10,
    batch: int = 1000,
    key_prefix: str = "BENCH",
) -> tuple[float, list[str]]:
    """Publish ``records`` synthetic loan applications through the publish service, one
    transaction per batch; return the seconds it took and the subjects' mobiles."""
    import random

    from hub.demo.population import generate_population
    from hub.records.schemas import PublishedRecord, SubjectRef
    from hub.records.service import publish_records
    from hub.registry.models import Dataset
    from hub.store.db import unit_of_work

    rng = random.Random(f"{dataset_id}{key_prefix}")
    subjects = max(1, records // per_subject)
    people = generate_population(seed=23, consumers=min(subjects, 500)).consumers
    mobiles = [_mobile(key_prefix, i) for i in range(subjects)]
    with unit_of_work(runtime.session_factory) as session:
        dataset = session.get(Dataset, dataset_id)
        assert dataset is not None
        session.expunge(dataset)
    t0 = time.perf_counter()
    published = 0
    while published < records:
        chunk = []
        for n in range(published, min(records, published + batch)):
            s = min(n // per_subject, subjects - 1)  # a subject's records are adjacent
            fields = _loan_fields(n, rng)
            fields["id_number"] = people[s % len(people)].id_number
            fields["mobile"] = mobiles[s]
            fields["vin"] = f"LSVAA4182E2{n % 10**6:06d}"
            chunk.append(
                PublishedRecord(
                    record_key=f"{key_prefix}-{n:08d}",
                    subject=SubjectRef(mobile=mobiles[s], jurisdiction="CN"),
                    fields=fields,
                )
            )
        with unit_of_work(runtime.session_factory) as session:
            publish_records(session, dataset=dataset, records=chunk, protector=runtime.protector)
        published += len(chunk)
    return time.perf_counter() - t0, mobiles


def measure_publish(hub: SeededHub, records: int) -> float:
    """Records/s published through the publish service into another dataset of the hub."""
    from hub.runtime import Runtime
    from hub.settings import Settings

    settings = Settings(
        data_dir=hub.data_dir, database_url=hub.database_url, issuer=hub.issuer,
        policies_dir=ROOT / "policies",
    )  # fmt: skip
    runtime = Runtime.build(settings)
    seconds, _ = publish_loans(
        runtime, "dealer-nanfang.loan-applications", records, key_prefix="PUBRATE"
    )
    runtime.engine.dispose()
    return records / seconds


def seed_hub(
    data_dir: Path,
    database_url: str,
    *,
    records: int,
    per_subject: int = 10,
    no_consent_share: float = 0.05,
    batch: int = 1000,
    publish: int = 10_000,
) -> SeededHub:
    """Migrate, seed the demo ecosystem (small), then add ``records`` loan applications to
    :data:`DATASET`: the first ``publish`` through the publish service in batches (its rate is
    reported), the rest in bulk (:func:`bulk_loans`); then grant the recipient's consent to
    most of their subjects through the consent service."""
    import random

    from sqlalchemy import select

    from consent.service import ConsentService, ConsentTerms
    from consent.taxonomy import Taxonomy
    from hub.demo.ecosystem import seed_demo
    from hub.records.models import SubjectIdentifier
    from hub.registry.models import Dataset
    from hub.runtime import Runtime
    from hub.settings import Settings
    from hub.store.base import utcnow
    from hub.store.db import unit_of_work
    from hub.store.migrate import upgrade

    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        issuer=issuer,
        policies_dir=ROOT / "policies",
        demo_consumers=DEMO_CONSUMERS,
    )
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    upgrade(database_url)
    runtime = Runtime.build(settings)
    with unit_of_work(runtime.session_factory) as session:
        summary = seed_demo(
            session,
            protector=runtime.protector,
            policies_dir=settings.policies_dir,
            seed=7,
            consumers=DEMO_CONSUMERS,
        )
    timings["migrate_and_demo_s"] = time.perf_counter() - t0
    credentials = summary.credentials
    agreement_id = next(
        a["id"] for a in credentials["partners"][RECIPIENT]["agreements"] if a["dataset"] == DATASET
    )

    rng = random.Random(11)
    published = min(records, publish)
    seconds, mobiles = publish_loans(
        runtime, DATASET, published, per_subject=per_subject, batch=batch, key_prefix="BENCH"
    )
    timings["published"] = published
    timings["publish_s"] = seconds
    timings["publish_records_per_s"] = published / seconds
    if records > published:
        seconds, more = bulk_loans(
            runtime, DATASET, published, records - published, per_subject=per_subject
        )
        mobiles = sorted(set(mobiles) | set(more))
        timings["bulk_records"] = records - published
        timings["bulk_s"] = seconds
    with unit_of_work(runtime.session_factory) as session:
        dataset = session.get(Dataset, DATASET)
        assert dataset is not None
        session.expunge(dataset)
    protector = runtime.protector

    t0 = time.perf_counter()
    consents = ConsentService(taxonomy=Taxonomy.load(settings.policies_dir))
    categories = tuple(sorted({dataset.field_categories[f] for f in dataset.field_categories}))
    now = utcnow()
    terms = ConsentTerms(
        purpose="credit_assessment",
        categories=categories,
        sensitive=True,
        starts_at=now - timedelta(days=1),
        expires_at=now + timedelta(days=80),
    )
    recipient_id = credentials["partners"][RECIPIENT]["partner_id"]
    digests = {protector.blind_index("mobile", m): i for i, m in enumerate(mobiles)}
    digest_list = list(digests)
    granted = 0
    for lo in range(0, len(digest_list), 1000):
        with unit_of_work(runtime.session_factory) as session:
            rows = session.execute(
                select(SubjectIdentifier.digest, SubjectIdentifier.subject_id).where(
                    SubjectIdentifier.kind == "mobile",
                    SubjectIdentifier.digest.in_(digest_list[lo : lo + 1000]),
                )
            ).all()
            for _digest, subject_id in rows:
                if rng.random() < no_consent_share:
                    continue
                consents.grant(
                    session, subject_id=subject_id, recipient_id=recipient_id, terms=terms,
                    channel="bench", now=terms.starts_at,
                )  # fmt: skip
                granted += 1
    timings["consents_s"] = time.perf_counter() - t0
    timings["consents_granted"] = granted
    runtime.engine.dispose()
    return SeededHub(
        data_dir=data_dir,
        database_url=database_url,
        issuer=issuer,
        port=port,
        credentials=credentials,
        agreement_id=agreement_id,
        records=records,
        timings=timings,
    )


def copy_sqlite_hub(hub: SeededHub, target_dir: Path) -> SeededHub:
    """A copy of a seeded SQLite hub (database and keys) under ``target_dir``."""
    import sqlite3

    shutil.copytree(hub.data_dir, target_dir, dirs_exist_ok=True)
    source = hub.database_url.removeprefix("sqlite:///")
    target = target_dir.parent / f"{target_dir.name}-copy.db"
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    port = free_port()
    return SeededHub(
        data_dir=target_dir,
        database_url=f"sqlite:///{target}",
        issuer=f"http://127.0.0.1:{port}",
        port=port,
        credentials=hub.credentials,
        agreement_id=hub.agreement_id,
        records=hub.records,
        timings=hub.timings,
    )


def copy_to_postgres(seeded: SeededHub, pg_url: str) -> SeededHub:
    """The same hub on PostgreSQL: migrate an empty database, then copy every table's rows from
    the seeded SQLite file (SQLAlchemy Core, batches of 5,000). The data dir (keys) is shared,
    so the copied ciphertexts open as they do on SQLite; sequences are moved past the copied ids.
    """
    from sqlalchemy import inspect, select, text

    import hub.runtime  # noqa: F401 - imports every model, so the metadata is complete
    from hub.store.base import Base
    from hub.store.db import make_engine
    from hub.store.migrate import upgrade

    upgrade(pg_url)
    source = make_engine(seeded.database_url)
    target = make_engine(pg_url)
    with source.connect() as src, target.begin() as dst:
        dst.execute(text("SET session_replication_role = replica"))  # no FK checks while copying
        present = set(inspect(src).get_table_names()) & set(inspect(dst).get_table_names())
        for table in Base.metadata.sorted_tables:
            if table.name not in present:  # a model newer than the seeded file: nothing to copy
                continue
            result = src.execute(select(table)).mappings()
            while rows := result.fetchmany(5000):
                dst.execute(table.insert(), [dict(r) for r in rows])
        dst.execute(text("SET session_replication_role = DEFAULT"))
        dst.execute(text("ANALYZE"))  # as autovacuum would have: fresh tables have no statistics
        serials = dst.execute(
            text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' "
                "AND (column_default LIKE 'nextval%' OR is_identity = 'YES')"
            )
        ).all()
        for table_name, column in serials:
            dst.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table_name}', '{column}'), "
                    f'COALESCE((SELECT MAX("{column}") FROM "{table_name}"), 0) + 1, false)'
                )
            )
    source.dispose()
    target.dispose()
    port = free_port()
    return SeededHub(
        data_dir=seeded.data_dir,
        database_url=pg_url,
        issuer=f"http://127.0.0.1:{port}",
        port=port,
        credentials=seeded.credentials,
        agreement_id=seeded.agreement_id,
        records=seeded.records,
        timings=dict(seeded.timings),
    )


def _drop_unused_template(conn: Any, name: str) -> None:
    """Drop another seeded cache's template unless it is in use: one still being built by a
    live process (named ``<template>_<pid>``), or one a concurrent bench (another tree, another
    cache) is copying or connected to. Either is left for a later run to drop."""
    import psycopg

    building = re.search(r"_(\d+)$", name)
    if building is not None and Path(f"/proc/{building.group(1)}").exists():
        return
    try:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    except psycopg.errors.ObjectInUse:
        return


@contextmanager
def cached_pg_hub(seeded: SeededHub, name: str) -> Iterator[SeededHub]:
    """The seeded hub on a scratch PostgreSQL database of its own, dropped afterwards.

    The rows are copied from SQLite (:func:`copy_to_postgres`, ~40 s for 100k records) once
    into a template database named after the seeded cache; each bench then gets
    ``CREATE DATABASE ... TEMPLATE`` (a file copy, a second or two), in this run and later ones.
    ``timings["copy_to_postgres_s"]`` is the copy's time (0 when the template was reused).
    """
    import hashlib

    import psycopg

    admin = PG_SERVER.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    cache_root = os.environ.get("BENCH_CACHE")
    origin = f"{Path(cache_root).resolve()}" if cache_root else f"{seeded.data_dir}{os.getpid()}"
    key = hashlib.sha256(f"{origin}|{seeded.records}".encode()).hexdigest()
    template = f"tollhouse_bench_tpl_{key[:16]}"
    copy_s = 0.0
    with psycopg.connect(admin, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (template,))
        exists = found.fetchone() is not None
    if not exists or not cache_root:
        building = f"{template}_{os.getpid()}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{building}"')
        t0 = time.perf_counter()
        try:
            copy_to_postgres(seeded, f"{PG_SERVER}/{building}")
        except BaseException:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
            raise
        copy_s = time.perf_counter() - t0
        with psycopg.connect(admin, autocommit=True) as conn:
            stale = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'tollhouse_bench_tpl_%%' "
                "AND datname <> %s AND datname NOT LIKE %s",
                (building, f"{template}_%"),
            ).fetchall()
            for (old,) in stale:  # templates of older seeded caches
                _drop_unused_template(conn, old)
            conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{template}"')
    db = f"tollhouse_bench_{name}_{os.getpid()}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}" TEMPLATE "{template}"')
    port = free_port()
    hub = SeededHub(
        data_dir=seeded.data_dir,
        database_url=f"{PG_SERVER}/{db}",
        issuer=f"http://127.0.0.1:{port}",
        port=port,
        credentials=seeded.credentials,
        agreement_id=seeded.agreement_id,
        records=seeded.records,
        timings={**seeded.timings, "copy_to_postgres_s": copy_s},
    )
    try:
        yield hub
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            if not cache_root:
                conn.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')


def cached_sqlite_hub(records: int, workdir: Path) -> SeededHub:
    """A seeded SQLite hub with ``records`` loan applications, copied into ``workdir``.

    Under ``python -m bench`` (``BENCH_CACHE`` set, under ``var/bench-cache``) the first bench
    that asks seeds it and the later ones (and later runs) copy it.
    """
    import json

    cache_root = os.environ.get("BENCH_CACHE")
    if not cache_root:
        return seed_hub(workdir / "data", f"sqlite:///{workdir / 'hub.db'}", records=records)
    cache = Path(cache_root) / f"sqlite-{records}"
    cache.parent.mkdir(parents=True, exist_ok=True)
    meta = cache / "hub.json"
    if not meta.exists():
        # seed beside the cache and rename when complete: an interrupted seed leaves no cache
        building = Path(tempfile.mkdtemp(prefix=f".sqlite-{records}-", dir=cache.parent))
        seeded = seed_hub(building / "data", f"sqlite:///{building / 'hub.db'}", records=records)
        (building / "hub.json").write_text(
            json.dumps(
                {"credentials": seeded.credentials, "agreement_id": seeded.agreement_id,
                 "timings": seeded.timings},
            )
        )  # fmt: skip
        shutil.rmtree(cache, ignore_errors=True)
        building.rename(cache)
    doc = json.loads(meta.read_text())
    port = free_port()
    template = SeededHub(
        data_dir=cache / "data",
        database_url=f"sqlite:///{cache / 'hub.db'}",
        issuer=f"http://127.0.0.1:{port}",
        port=port,
        credentials=doc["credentials"],
        agreement_id=doc["agreement_id"],
        records=records,
        timings=doc["timings"],
    )
    return copy_sqlite_hub(template, workdir / "data")
