"""Release pipeline throughput: records/s through consent, policy, decryption of ~10 fields,
transforms, audit and JSON over HTTP (the hub on uvicorn, loopback), against a bare endpoint on
the same rows (SQLAlchemy Core SELECT + orjson, ``bench/bare.py``) measured in the same run, on
SQLite and PostgreSQL. Also: seeding through the publish service, and a cProfile of the pipeline
in-process whose top costs go into ``bench/README.md``.

    .venv/bin/python -m bench.bench_pipeline [--records 100000] [--db sqlite,postgresql]

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.common import (
    DATASET,
    RESULTS,
    ROOT,
    Report,
    SeededHub,
    Uvicorn,
    cached_pg_hub,
    cached_sqlite_hub,
    cpu_seconds,
    measure_publish,
    pg_available,
    rss_mb,
    say,
)

PAGE = 1000


def pull_all(
    client: httpx.Client, url: str, *, cursor_param: str, next_key: str, pid: int
) -> dict[str, Any]:
    """Page through a whole pull; count items and bytes; the server's RSS after each page."""
    items = pages = size = withheld = 0
    rss = [rss_mb(pid)]
    cursor: Any = None
    while True:
        params: dict[str, Any] = {"limit": PAGE}
        if cursor is not None:
            params[cursor_param] = cursor
        response = client.get(url, params=params)
        response.raise_for_status()
        size += len(response.content)
        page = orjson.loads(response.content)
        items += len(page["items"])
        withheld += page.get("withheld", 0)
        pages += 1
        rss.append(rss_mb(pid))
        cursor = page[next_key]
        if cursor is None:
            return {
                "items": items, "pages": pages, "bytes": size, "withheld": withheld,
                "rss_start_mb": rss[0], "rss_end_mb": rss[-1], "rss_peak_mb": max(rss),
            }  # fmt: skip


def measure_hub(hub: SeededHub) -> dict[str, Any]:
    with hub.server() as server, httpx.Client(timeout=120) as client:
        client.headers["Authorization"] = f"Bearer {hub.token(server.url)}"
        url = f"{server.url}/v1/agreements/{hub.agreement_id}/records"
        client.get(url, params={"limit": 10}).raise_for_status()  # warm-up
        cpu0, t0 = cpu_seconds(server.pid), time.perf_counter()
        result = pull_all(
            client, url, cursor_param="cursor", next_key="next_cursor", pid=server.pid
        )
        result["seconds"] = time.perf_counter() - t0
        result["server_cpu_s"] = cpu_seconds(server.pid) - cpu0
        result["token"] = client.headers["Authorization"].split()[1]
    return result


def measure_bare(hub: SeededHub) -> dict[str, Any]:
    env = {"BENCH_BARE_DATABASE_URL": hub.database_url, "BENCH_BARE_DATASET": DATASET}
    with Uvicorn("bench.bare:create_app", env) as server, httpx.Client(timeout=120) as client:
        url = f"{server.url}/records"
        client.get(url, params={"limit": 10}).raise_for_status()
        cpu0, t0 = cpu_seconds(server.pid), time.perf_counter()
        result = pull_all(client, url, cursor_param="after", next_key="next", pid=server.pid)
        result["seconds"] = time.perf_counter() - t0
        result["server_cpu_s"] = cpu_seconds(server.pid) - cpu0
    return result


AREAS = (
    ("hub/crypto", "field crypto (hub.crypto)"),
    ("cryptography", "field crypto (hub.crypto)"),
    ("AESGCM", "field crypto (hub.crypto)"),
    ("hub/release/obligations", "obligations/transforms"),
    ("hub/deid", "obligations/transforms"),
    ("hub/release", "pipeline loop (hub.release)"),
    ("hub/policy", "policy (hub.policy, regorus)"),
    ("regorus", "policy (hub.policy, regorus)"),
    ("eval_rule", "policy (hub.policy, regorus)"),
    ("hub/audit", "audit (hub.audit)"),
    ("rfc8785", "audit (hub.audit)"),
    ("consent/", "consent"),
    ("sqlalchemy", "SQLAlchemy"),
    ("sqlite3", "database driver"),
    ("psycopg", "database driver"),
    ("pydantic", "pydantic (response model)"),
    ("orjson", "JSON (orjson)"),
    ("hmac", "keyed hashes (hmac)"),
    ("_hashlib", "keyed hashes (hmac)"),
    ("hashlib", "keyed hashes (hmac)"),
    ("json", "JSON (stdlib)"),
)


def _area(key: tuple[str, int, str]) -> str:
    text = f"{key[0]}:{key[2]}"
    for marker, area in AREAS:
        if marker in text:
            return area
    return "other"


class InProcessPuller:
    """The pipeline without HTTP: a runtime like the server's, the recipient's verified token,
    and ``pull_page`` + ``to_json`` page after page (what the profile and the crypto share
    measure)."""

    def __init__(self, hub: SeededHub, token: str) -> None:
        from hub.runtime import Runtime
        from hub.settings import Settings

        self.hub = hub
        self.settings = Settings(
            data_dir=hub.data_dir,
            database_url=hub.database_url,
            issuer=hub.issuer,
            policies_dir=ROOT / "policies",
        )
        self.runtime = Runtime.build(self.settings)
        with self.runtime.session_factory() as session:
            self.caller = self.runtime.token_verifier.verify(session, token)
            session.commit()

    def pages(self, records: int, profiler: cProfile.Profile | None = None) -> Iterator[Any]:
        """Each ``ReleasedPage`` of a pull from the start, until ``records`` have been seen
        (``profiler`` enabled around each page's work only)."""
        from hub.release.pipeline import PullRequest, pull_page
        from hub.store.base import utcnow

        cursor, pulled = None, 0
        while pulled < records:
            with self.runtime.session_factory() as session:
                if profiler:
                    profiler.enable()
                page = pull_page(
                    session, self.runtime.gates,
                    PullRequest(
                        caller=self.caller, agreement_id=self.hub.agreement_id,
                        request_id=f"bench-{pulled}", now=utcnow(), cursor=cursor, limit=PAGE,
                    ),
                )  # fmt: skip
                page.to_json()
                session.commit()
                if profiler:
                    profiler.disable()
            yield page
            pulled += page.released + page.withheld
            cursor = page.next_cursor
            if cursor is None:
                return

    def close(self) -> None:
        self.runtime.engine.dispose()


def profile_pipeline(hub: SeededHub, token: str, records: int, label: str) -> dict[str, Any]:
    """cProfile of pull_page + the response's serialisation, in-process, over ``records``."""
    puller = InProcessPuller(hub, token)
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    pulled = sum(page.released + page.withheld for page in puller.pages(records, profiler))
    elapsed = time.perf_counter() - t0
    puller.close()
    stats = pstats.Stats(profiler)
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    areas: dict[str, float] = defaultdict(float)
    for key, value in raw.items():
        areas[_area(key)] += value[2]
    top = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:25]
    crypto_cum = sum(
        v[3]
        for k, v in raw.items()
        if "hub/crypto" in k[0] and k[2] in ("open_fields", "pseudonym", "preload")
    )
    out = RESULTS / f"profile-{label}.txt"
    RESULTS.mkdir(parents=True, exist_ok=True)
    with out.open("w") as handle:
        handle.write(f"cProfile of pull_page + page.to_json, {pulled} records, {label}\n\n")
        handle.write("self time by area:\n")
        for area, t in sorted(areas.items(), key=lambda kv: kv[1], reverse=True):
            handle.write(f"  {area:34} {t:7.2f} s  {t / total:6.1%}\n")
        handle.write("\n")
        pstats.Stats(profiler, stream=handle).sort_stats("tottime").print_stats(30)
        pstats.Stats(profiler, stream=handle).sort_stats("cumulative").print_stats(30)
    return {
        "records": pulled,
        "wall_s": elapsed,
        "profiled_self_s": total,
        "areas": {a: round(t / total, 4) for a, t in sorted(areas.items(), key=lambda kv: -kv[1])},
        "crypto_share": crypto_cum / total if total else 0.0,
        "top": [
            {
                "function": f"{k[0].split('site-packages/')[-1]}:{k[1]}({k[2]})",
                "self_s": v[2],
                "cum_s": v[3],
                "calls": v[1],
            }
            for k, v in top[:15]
        ],  # fmt: skip
        # a partial run writes beside its logs in /tmp (BENCH_RESULTS), outside the tree
        "file": str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out),
    }


def crypto_share(hub: SeededHub, token: str, records: int, rounds: int = 3) -> dict[str, Any]:
    """Field crypto's share of the pipeline's CPU, measured directly rather than from cProfile
    (which inflates many small calls): in one process, alternately, (a) ``pull_page`` +
    ``to_json`` over ``records`` and (b) only the crypto the pipeline does for the same rows:
    a cold key cache refreshed per page, two pseudonyms per subject and ``open_fields`` of the
    fields the pipeline opens. Best of ``rounds`` each. The floor is raw ``AESGCM.decrypt`` of
    as many tokens (the AES-GCM a per-field format cannot avoid)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from sqlalchemy import select

    from hub.crypto import FieldProtector, LocalKeyring
    from hub.records.models import Record

    puller = InProcessPuller(hub, token)
    runtime = puller.runtime

    def pipeline_pass() -> tuple[float, int, set[str], set[str]]:
        pulled = 0
        opened: set[str] = set()
        released: set[str] = set()
        cpu = time.process_time()
        for page in puller.pages(records):
            if not opened and page.items:
                opened = set(page.items[0]["fields"])
            released.update(item["record_key"] for item in page.items)
            pulled += page.released + page.withheld
        return time.process_time() - cpu, pulled, opened, released

    # warm-up; learns which fields the decision opens and which records it releases
    _, pulled, opened, released = pipeline_pass()
    records_table = Record.__table__
    with runtime.session_factory() as session:
        rows = session.execute(
            select(
                records_table.c.subject_id, records_table.c.dataset_id,
                records_table.c.record_key, records_table.c.sealed,
            )
            .where(records_table.c.dataset_id == DATASET)
            .order_by(records_table.c.id)
            .limit(pulled)
        ).all()  # fmt: skip
    pages = [
        [row for row in rows[i : i + PAGE] if row[2] in released]  # withheld: never opened
        for i in range(0, len(rows), PAGE)
    ]
    only = sorted(opened)

    def crypto_pass() -> float:
        # a cold key cache, like a new server
        protector = FieldProtector(LocalKeyring(puller.settings.data_dir))
        cpu = time.process_time()
        with runtime.session_factory() as session:
            for page_rows in pages:
                subjects = {row[0] for row in page_rows}
                protector.refresh(session, subjects)
                for subject in subjects:
                    protector.pseudonym("audit", subject)
                    protector.pseudonym(puller.caller.partner_id, subject)
                for subject_id, dataset_id, record_key, sealed in page_rows:
                    protector.open_fields(
                        session, subject_id=subject_id, dataset_id=dataset_id,
                        record_key=record_key, sealed=sealed, only=only,
                    )  # fmt: skip
        return time.process_time() - cpu

    tokens = sum(len(opened & set(row[3])) for page_rows in pages for row in page_rows)
    aead, nonce, aad = AESGCM(AESGCM.generate_key(bit_length=256)), os.urandom(12), b"x" * 40
    sample = aead.encrypt(nonce, b"x" * 24, aad)

    def raw_pass() -> float:
        decrypt = aead.decrypt
        cpu = time.process_time()
        for _ in range(tokens):
            decrypt(nonce, sample, aad)
        return time.process_time() - cpu

    pipeline_s = crypto_s = raw_s = float("inf")
    for _ in range(rounds):
        pipeline_s = min(pipeline_s, pipeline_pass()[0])
        crypto_s = min(crypto_s, crypto_pass())
        raw_s = min(raw_s, raw_pass())
    puller.close()
    return {
        "records": len(rows),
        "fields_opened": only,
        "tokens": tokens,
        "pipeline_us_per_record": pipeline_s / len(rows) * 1e6,
        "crypto_us_per_record": crypto_s / len(rows) * 1e6,
        "raw_aesgcm_us_per_record": raw_s / len(rows) * 1e6,
        "share": crypto_s / pipeline_s,
        "floor_share": raw_s / pipeline_s,
    }


def run_one(
    kind: str, records: int, workdir: Path, profile: bool, publish_sample: int
) -> dict[str, Any]:
    """Seed (or copy) the hub, pull it all through the pipeline, then the bare endpoint."""
    workdir.mkdir(parents=True, exist_ok=True)
    say(f"pipeline [{kind}]: seeding {records:,} records (SQLite, publish service) ...")
    base = cached_sqlite_hub(records, workdir / "sqlite")
    with contextlib.ExitStack() as stack:
        if kind == "postgresql":  # a copy of the same rows (a cached template database)
            hub = stack.enter_context(cached_pg_hub(base, "pipeline"))
        else:
            hub = base
        seed = dict(hub.timings)
        if kind == "postgresql":
            seed["publish_records_per_s"] = measure_publish(hub, publish_sample)
            seed["publish_sample"] = publish_sample
        say(f"pipeline [{kind}]: seeded {seed}")
        hub_result = measure_hub(hub)
        say(f"pipeline [{kind}]: hub {hub_result['items'] / hub_result['seconds']:,.0f} rec/s")
        bare_result = measure_bare(hub)
        say(f"pipeline [{kind}]: bare {bare_result['items'] / bare_result['seconds']:,.0f} rec/s")
        token = hub_result.pop("token")
        prof = share = None
        if profile:
            prof = profile_pipeline(hub, token, min(records, 20_000), kind)
            share = crypto_share(hub, token, min(records, 20_000))
            say(f"pipeline [{kind}]: crypto share {share}")
        return {
            "seed": seed, "hub": hub_result, "bare": bare_result, "profile": prof,
            "crypto_share": share,
        }  # fmt: skip


def collect(
    quick: bool = False, records: int | None = None, kinds: list[str] | None = None
) -> Report:
    records = records or (5_000 if quick else 100_000)
    if kinds is None:
        kinds = ["sqlite"] + ([] if quick or not pg_available() else ["postgresql"])
    report = Report(details={"records": records, "page": PAGE})
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        os.environ.setdefault("BENCH_CACHE", str(Path(tmp) / "cache"))
        for kind in kinds:
            r = run_one(kind, records, Path(tmp) / kind, True, 1000 if quick else 5000)
            report.details[kind] = r
            hub, bare = r["hub"], r["bare"]
            hub_rate = hub["items"] / hub["seconds"]
            bare_rate = bare["items"] / bare["seconds"]
            note = f"{hub['items']:,} released, {hub['withheld']:,} withheld"
            report.add(
                "pipeline", f"released records/s, HTTP [{kind}]", hub_rate, "rec/s", bare_rate,
                "bare Core+orjson endpoint", "≥ 25,000 rec/s", hub_rate >= 25_000, note=note,
            )  # fmt: skip
            cost = (1 / hub_rate) / (1 / bare_rate)
            report.add(
                "pipeline", f"cost per record vs floor [{kind}]", 1e6 / hub_rate, "µs",
                1e6 / bare_rate, "bare endpoint µs/record", "≤ 5× floor", cost <= 5,
            )  # fmt: skip
            hub_cpu = hub["server_cpu_s"] / max(1, hub["items"] + hub["withheld"]) * 1e6
            bare_cpu = bare["server_cpu_s"] / max(1, bare["items"]) * 1e6
            report.add(
                "pipeline", f"server CPU per record [{kind}]", hub_cpu, "µs", bare_cpu,
                "bare endpoint CPU/record", "",
            )  # fmt: skip
            seed = r["seed"]
            if kind == "postgresql":
                copied = seed["copy_to_postgres_s"]
                note = f"{seed['publish_sample']:,} records; the {records:,} pulled were " + (
                    f"copied from SQLite in {copied:.0f} s" if copied else "a cached copy"
                )
            else:
                note = (
                    f"{seed['published']:,} records in {seed['publish_s']:.0f} s, batches of "
                    f"1000; {seed.get('bulk_records', 0):,} more in bulk"
                )
            report.add(
                "pipeline", f"publish service, records/s [{kind}]",
                seed["publish_records_per_s"], "rec/s", None, "", "", note=note,
            )  # fmt: skip
            growth = hub["rss_end_mb"] - hub["rss_start_mb"]
            report.add(
                "memory", f"hub RSS growth during the pull [{kind}]", growth, "MB",
                hub["rss_start_mb"], "RSS at start", "< 50 MB", growth < 50,
                note=f"peak +{hub['rss_peak_mb'] - hub['rss_start_mb']:.1f} MB",
            )  # fmt: skip
            if r["crypto_share"]:
                c = r["crypto_share"]
                report.add(
                    "crypto", f"share of pipeline CPU [{kind}]", c["share"] * 100, "%",
                    c["floor_share"] * 100, "raw AESGCM.decrypt of the same tokens",
                    "≤ 10%", c["share"] <= 0.10,
                    note=(
                        f"{c['crypto_us_per_record']:.1f} of {c['pipeline_us_per_record']:.1f}"
                        f" µs/record in process; {c['tokens'] / c['records']:.0f} tokens/record"
                    ),
                )  # fmt: skip
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args()
    kinds = [k for k in args.db.split(",") if k != "postgresql" or pg_available()]
    report = collect(records=args.records, kinds=kinds)
    for f in report.figures:
        base = f" | baseline {f.baseline:,.1f} ({f.baseline_label})" if f.baseline else ""
        print(f"{f.bench:9} {f.figure:45} {f.value:12,.1f} {f.unit:6}{base} {f.note}")
    for kind in kinds:
        prof = report.details[kind]["profile"]
        if prof:
            print(f"\nprofile [{kind}] ({prof['file']}): self time by area")
            for area, share in prof["areas"].items():
                print(f"  {area:34} {share:6.1%}")


if __name__ == "__main__":
    main()
