"""Free text through the egress guard: records/s released by the pipeline from a dataset with a
claims-style free-text field, against Presidio alone on the same texts, in the same run.

A small hub (the demo ecosystem) gets ``records`` service records of
``dealer-huadong.service-records`` whose ``remarks`` are the generated labelled corpus of
:mod:`hub.deid.corpus` (English and Chinese sentences with planted VINs, ID numbers, plates,
mobiles, cards...), then three times as many whose remarks are clean (no identifier, no digit:
the guard's pre-filter path). ``insurer-anxin`` pulls them under its ``claims_handling``
agreement with ``pull_page`` in-process (pages of 1,000): consent, policy, decryption, the egress
guard scanning and redacting every released remark, audit, JSON bytes. The baseline is Presidio's
``BatchAnalyzerEngine`` with its built-in recognizers alone on the same texts (batch 64), as in
``bench_deid``. The guard's engines and the baseline are loaded once (``bench_deid`` hands in
its own, so the full run loads spaCy once).

    .venv/bin/python -m bench.bench_freetext [--records 600]

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import DEMO_CONSUMERS, ROOT, free_port, say

if TYPE_CHECKING:
    from bench.common import Report

DATASET = "dealer-huadong.service-records"
RECIPIENT = "insurer-anxin"
PURPOSE = "claims_handling"
PAGE = 1000  # as the pipeline bench: a partner pulling in bulk


def _texts(records: int) -> tuple[list[str], list[str]]:
    """Mixed texts (the labelled corpus) and three times as many clean ones (no identifier, no
    digit)."""
    from hub.deid.corpus import generate_corpus

    corpus = generate_corpus(seed=11, size=max(records, 600))
    mixed = [c.text for c in corpus][:records]
    clean = [c.text for c in corpus if not c.gold and not any(ch.isdigit() for ch in c.text)]
    clean = [t for t in clean if not t.isascii()] or clean  # Chinese prose: no NER needed
    many = 3 * records  # the clean path is fast: more records for a steadier figure
    return mixed, (clean * (many // max(1, len(clean)) + 1))[:many]


def _seed(workdir: Path, mixed: list[str], clean: list[str]) -> tuple[Any, Any, str]:
    """A demo hub with the service records and the recipient's consents; (runtime, caller,
    agreement id)."""
    from datetime import timedelta

    from sqlalchemy import delete, select

    from consent.service import ConsentService, ConsentTerms
    from consent.taxonomy import Taxonomy
    from hub.auth.tokens import AuthenticatedPartner
    from hub.demo.ecosystem import seed_demo
    from hub.records.models import Record
    from hub.records.schemas import PublishedRecord, SubjectRef
    from hub.records.service import publish_records
    from hub.registry.models import Dataset, Partner
    from hub.runtime import Runtime
    from hub.settings import Settings
    from hub.store.base import utcnow
    from hub.store.db import unit_of_work
    from hub.store.migrate import upgrade

    url = f"sqlite:///{workdir / 'hub.db'}"
    settings = Settings(
        data_dir=workdir / "data", database_url=url, issuer=f"http://127.0.0.1:{free_port()}",
        policies_dir=ROOT / "policies", demo_consumers=DEMO_CONSUMERS,
    )  # fmt: skip
    upgrade(url)
    runtime = Runtime.build(settings)
    with unit_of_work(runtime.session_factory) as session:
        summary = seed_demo(
            session, protector=runtime.protector, policies_dir=settings.policies_dir, seed=7,
            consumers=DEMO_CONSUMERS,
        )  # fmt: skip
        dataset = session.get(Dataset, DATASET)
        assert dataset is not None
        session.expunge(dataset)
    partner = summary.credentials["partners"][RECIPIENT]
    agreement_id = next(a["id"] for a in partner["agreements"] if a["dataset"] == DATASET)
    per_subject = 5
    records = []
    for n, text in enumerate([*mixed, *clean]):
        s = n // per_subject
        records.append(
            PublishedRecord(
                record_key=f"FT-{n:07d}",
                subject=SubjectRef(mobile=f"139{s:08d}", jurisdiction="CN"),
                fields={
                    "vin": f"LSVAA4182E2{n:06d}",
                    "service_date": "2026-05-01",
                    "odometer_km": 12_000 + n,
                    "service_type": "maintenance",
                    "cost_cny": 800,
                    "remarks": text,
                },
            )  # fmt: skip
        )
    consents = ConsentService(taxonomy=Taxonomy.load(settings.policies_dir))
    now = utcnow()
    terms = ConsentTerms(
        purpose=PURPOSE,
        categories=tuple(sorted(set(dataset.field_categories.values()))),
        sensitive=True,
        starts_at=now - timedelta(days=1),
        expires_at=now + timedelta(days=80),
    )
    with unit_of_work(runtime.session_factory) as session:
        # only the bench's records in the dataset: the pull measures exactly these
        session.execute(delete(Record).where(Record.dataset_id == DATASET))
        publish_records(session, dataset=dataset, records=records, protector=runtime.protector)
        subjects = session.scalars(
            select(Record.subject_id)
            .where(Record.dataset_id == DATASET, Record.record_key.like("FT-%"))
            .distinct()
        ).all()
        for subject_id in sorted(subjects):
            consents.grant(
                session, subject_id=subject_id, recipient_id=partner["partner_id"], terms=terms,
                channel="bench", now=terms.starts_at,
            )  # fmt: skip
    with runtime.session_factory() as session:
        row = session.get(Partner, partner["partner_id"])
        assert row is not None
        caller = AuthenticatedPartner(
            partner_id=row.id, client_id=partner["client_id"], role=row.role,
            jurisdiction=row.jurisdiction, name=row.name, scopes=frozenset({"records:read"}),
            token_id="bench",
        )  # fmt: skip
    return runtime, caller, agreement_id


def _pull(runtime: Any, gates: Any, caller: Any, agreement_id: str, records: int) -> Any:
    """Pull ``records`` records (pages of PAGE) from the start; seconds, released, and the
    guard's findings (from the page events)."""
    from hub.release.pipeline import PullRequest, pull_page
    from hub.store.base import utcnow

    cursor = None
    pulled = released = 0
    size = 0
    t0 = time.perf_counter()
    while pulled < records:
        with runtime.session_factory() as session:
            page = pull_page(
                session, gates,
                PullRequest(caller=caller, agreement_id=agreement_id, request_id=f"ft-{pulled}",
                            now=utcnow(), cursor=cursor, limit=min(PAGE, records - pulled)),
            )  # fmt: skip
            size += len(page.to_json())
            session.commit()
        pulled += page.released + page.withheld
        released += page.released
        cursor = page.next_cursor
        if cursor is None:
            break
    return time.perf_counter() - t0, released, cursor, size


def measure(guard: Any, baseline: Any, records: int, report: Report) -> dict[str, Any]:
    """Add the free-text figures to ``report``, with the guard and Presidio engines given."""
    mixed, clean = _texts(records)
    details: dict[str, Any] = {"records": records, "page": PAGE}
    with tempfile.TemporaryDirectory(prefix="bench-freetext-") as tmp:
        t0 = time.perf_counter()
        runtime, caller, agreement_id = _seed(Path(tmp), mixed, clean)
        details["seed_s"] = round(time.perf_counter() - t0, 2)
        gates = dataclasses.replace(runtime.gates, guard=guard)
        guard.scan_and_redact(mixed[:8], ())  # warm the engines

        seconds, released, cursor, size = _pull(runtime, gates, caller, agreement_id, records)
        details["mixed"] = {"seconds": seconds, "released": released, "bytes": size}
        t0 = time.perf_counter()
        list(baseline.analyze_iterator(mixed, language="en", batch_size=64))
        base_s = time.perf_counter() - t0
        rate, base_rate = released / seconds, len(mixed) / base_s
        say(f"free text: pipeline {rate:,.0f} rec/s, Presidio alone {base_rate:,.0f} texts/s")
        report.add(
            "free text", "released records/s, free-text field through the guard", rate, "rec/s",
            base_rate, "Presidio BatchAnalyzer alone, same texts", "≤ 1.2× Presidio's cost",
            base_rate / rate <= 1.2 if released else None,
            note=f"{released:,} of {records:,} released, pages of {PAGE}, in-process",
        )  # fmt: skip

        # the clean records come next: continue from where the mixed ones ended
        from hub.release.pipeline import PullRequest, pull_page
        from hub.store.base import utcnow

        t0 = time.perf_counter()
        clean_released = pulled = 0
        while pulled < len(clean) and cursor is not None:
            with runtime.session_factory() as session:
                page = pull_page(
                    session, gates,
                    PullRequest(caller=caller, agreement_id=agreement_id, request_id=f"c-{pulled}",
                                now=utcnow(), cursor=cursor, limit=PAGE),
                )  # fmt: skip
                page.to_json()
                session.commit()
            pulled += page.released + page.withheld
            clean_released += page.released
            cursor = page.next_cursor
        clean_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        list(baseline.analyze_iterator(clean, language="en", batch_size=64))
        base_clean_s = time.perf_counter() - t0
        details["clean"] = {"seconds": clean_s, "released": clean_released}
        if clean_released:
            c_rate, cb_rate = clean_released / clean_s, len(clean) / base_clean_s
            report.add(
                "free text", "released records/s, clean text (pre-filter)", c_rate, "rec/s",
                cb_rate, "Presidio BatchAnalyzer alone, same texts", "≥ 10× Presidio",
                c_rate >= 10 * cb_rate, note=f"{clean_released:,} records",
            )  # fmt: skip
        runtime.engine.dispose()
    return details


def collect(quick: bool = False, records: int | None = None) -> Report:
    from presidio_analyzer import BatchAnalyzerEngine

    from bench.common import Report
    from hub.deid.guard import EgressGuard, build_analyzer

    report = Report()
    guard = EgressGuard(batch_size=64)
    baseline = BatchAnalyzerEngine(analyzer_engine=build_analyzer(builtin_only=True))
    report.details = measure(guard, baseline, records or (200 if quick else 600), report)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=600)
    args = parser.parse_args()
    report = collect(records=args.records)
    for f in report.figures:
        base = f" | baseline {f.baseline:,.1f} ({f.baseline_label})" if f.baseline else ""
        print(f"{f.bench:9} {f.figure:55} {f.value:10,.1f} {f.unit:6}{base} {f.note}")
    print(report.details)


if __name__ == "__main__":
    main()
