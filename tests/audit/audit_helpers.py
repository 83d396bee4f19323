"""Helpers shared by the audit tests (imported as a top-level module by pytest)."""

from __future__ import annotations

from typing import Any

ORIGIN = "tollhouse.test/audit"


def release_event(n: int, **extra: object) -> dict[str, object]:
    """A release event as the pipeline builds it (pseudonyms only, no raw identifiers)."""
    event: dict[str, object] = {
        "kind": "release",
        "partner_id": f"prt_lender{n % 3}",
        "agreement_id": "agr_demo",
        "dataset_id": "ds_vehicle_master",
        "purpose": "credit_assessment",
        "request_id": f"req_{n}",
        "outcome": "allowed",
        "decision_ids": [f"dec_{n}"],
        "policy_revision": "rev_1",
        "consent_ids": [f"cns_{n}"],
        "subjects": [f"psn_{n:06d}"],
        "fields_released": ["model", "build_year"],
        "fields_withheld": ["vin"],
        "transforms": {"msrp": "generalize"},
        "counts": {"records": 1, "released": 1, "withheld": 0},
    }
    event.update(extra)
    return event


def append_worker(url: str, worker: int, count: int, barrier: Any, results: Any) -> None:
    """Run in a separate process: append ``count`` events, one transaction each; put the
    indices (or the error's text) on ``results``."""
    from hub.audit.service import append_event
    from hub.store.db import make_engine, make_session_factory, unit_of_work

    engine = make_engine(url)
    factory = make_session_factory(engine)
    barrier.wait(120)
    indices: list[int] = []
    try:
        for n in range(count):
            with unit_of_work(factory) as session:
                event = release_event(n, partner_id=f"prt_worker{worker}")
                indices.append(append_event(session, event).index)
        results.put(indices)
    except Exception as exc:  # reported to the test, which fails on it
        results.put(f"{type(exc).__name__}: {exc}")
    finally:
        engine.dispose()
