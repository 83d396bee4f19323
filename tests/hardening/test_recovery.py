"""kill -9 recovery: a real hub (`tollhouse serve` on loopback) is killed with SIGKILL while
partners publish, consumers withdraw consents and every pull appends to the audit log; then it
is restarted on the same data.

After each restart: everything acknowledged (a 2xx received) is there; nothing is half-written
(a publish batch is all there or not at all, a consent's status is the last step of its
history, the audit log's indexes have no gap and no request has two events); the audit log
exported with `tollhouse audit export` verifies with `tollhouse audit verify`. Runs on the
database of ``TOLLHOUSE_DATABASE_URL`` (SQLite by default, PostgreSQL when set).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from consent.models import Consent, ConsentEvent
from consent.tokens import ConsumerTokens
from hub.audit.models import AuditEvent
from hub.auth.keys import SigningKeys
from hub.records.models import Record
from tests.support.databases import TestDatabases
from tests.support.served import ServedHub, served_copy

pytestmark = pytest.mark.slow

DATASET = "dealer-huadong.loan-applications"
DEALER = "dealer-huadong"
LENDER = "lender-jinqiao"
ID_NUMBER = "11010519491231002X"
BATCH = 5


@dataclass
class Ledger:
    """What the clients sent and what the hub acknowledged (2xx), across threads."""

    sent: list[Any] = field(default_factory=list)
    acked: list[Any] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, item: Any, response: httpx.Response | None) -> bool:
        with self.lock:
            self.sent.append(item)
            if response is not None and response.is_success:
                self.acked.append(item)
                self.request_ids.append(response.headers["x-request-id"])
                return True
        return False


def kill_during(
    served: ServedHub,
    work: Callable[[httpx.Client, int], bool],
    *,
    threads: int = 4,
    kill_after: int = 6,
    limit: int = 400,
) -> None:
    """Run ``work`` in ``threads`` loops until ``kill_after`` calls were acknowledged, SIGKILL
    the hub while the others are in flight, then restart it on the same data."""
    acked = threading.Semaphore(0)
    stop = threading.Event()
    counter = iter(range(limit))
    counter_lock = threading.Lock()

    def loop() -> None:
        with httpx.Client(base_url=served.url, timeout=30) as http:
            while not stop.is_set():
                with counter_lock:
                    i = next(counter, None)
                if i is None:
                    return
                try:
                    if work(http, i):
                        acked.release()
                except httpx.HTTPError:
                    return  # the hub is gone

    workers = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    for _ in range(kill_after):
        assert acked.acquire(timeout=60), (
            "the workload made no progress:\n" + served.log.read_text()[-3000:]
        )
    served.kill9()
    stop.set()
    for w in workers:
        w.join(timeout=60)
    served.start()


def _application(key: str) -> dict[str, Any]:
    return {
        "record_key": key,
        "version": 1,
        "subject": {"id_number": ID_NUMBER, "mobile": "+8613800138000"},
        "fields": {
            "applicant_name": "测试 申请人", "birth_date": "1949-12-31", "id_number": ID_NUMBER,
            "mobile": "+8613800138000", "address": "北京市东城区测试路1号",
            "monthly_income_cny": 18000, "vin": "1M8GDM9AXKP042788", "amount_cny": 120000,
            "term_months": 36, "down_payment_cny": 30000, "applied_on": "2026-11-20",
            "lender": LENDER,
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def credentials(seeded_template: tuple[Path, str, dict[str, Any]]) -> dict[str, Any]:
    return seeded_template[2]


@pytest.fixture(scope="module")
def served(
    seeded_template: tuple[Path, str, dict[str, Any]],
    databases: TestDatabases,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServedHub]:
    hub = served_copy(seeded_template, databases, tmp_path_factory.mktemp("recovery"))
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def db(served: ServedHub) -> Iterator[Callable[[], Session]]:
    engine = create_engine(served.database_url)

    def session() -> Session:
        return Session(engine)

    yield session
    engine.dispose()


def _token(served: ServedHub, partner: dict[str, Any]) -> str:
    return served.token(partner)


# -- kill during publish ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def publishes(served: ServedHub, credentials: dict[str, Any]) -> Ledger:
    ledger = Ledger()
    headers = {"Authorization": f"Bearer {_token(served, credentials['partners'][DEALER])}"}

    def publish(http: httpx.Client, i: int) -> bool:
        keys = [f"KILL-{i}-{j}" for j in range(BATCH)]
        response: httpx.Response | None = None
        try:
            response = http.post(
                f"/v1/datasets/{DATASET}/records",
                json={"records": [_application(k) for k in keys]},
                headers=headers,
            )
        finally:
            acked = ledger.record(tuple(keys), response)
        return acked

    kill_during(served, publish)
    return ledger


def test_every_acknowledged_publish_survives_and_none_is_half_written(
    publishes: Ledger, db: Callable[[], Session]
) -> None:
    with db() as session:
        stored = set(
            session.scalars(
                select(Record.record_key).where(
                    Record.dataset_id == DATASET, Record.record_key.like("KILL-%")
                )
            )
        )
    assert publishes.acked
    for batch in publishes.acked:
        assert set(batch) <= stored, f"acknowledged batch lost: {batch}"
    for batch in publishes.sent:
        assert len(set(batch) & stored) in (0, BATCH), f"batch half-written: {batch}"


# -- kill during consent withdrawal -------------------------------------------------------------


@pytest.fixture(scope="module")
def withdrawals(
    served: ServedHub, credentials: dict[str, Any], db: Callable[[], Session]
) -> Ledger:
    with db() as session:
        active = session.execute(
            select(Consent.id, Consent.subject_id)
            .where(Consent.status == "active")
            .order_by(Consent.id)
        ).all()
    tokens = ConsumerTokens(SigningKeys(served.data_dir / "keys"), issuer=served.url)
    ledger = Ledger()

    def withdraw(http: httpx.Client, i: int) -> bool:
        if i >= len(active):
            time.sleep(0.05)
            return False
        consent_id, subject_id = active[i]
        response: httpx.Response | None = None
        try:
            response = http.post(
                f"/v1/me/consents/{consent_id}/withdraw",
                json={"reason": "kill -9 drill"},
                headers={"Authorization": f"Bearer {tokens.issue(subject_id)}"},
            )
        finally:
            acked = ledger.record(consent_id, response)
        return acked

    kill_during(served, withdraw, kill_after=min(6, len(active) // 2))
    return ledger


def test_every_acknowledged_withdrawal_survives_with_its_history(
    withdrawals: Ledger, db: Callable[[], Session]
) -> None:
    assert withdrawals.acked
    with db() as session:
        status = dict(session.execute(select(Consent.id, Consent.status)).all())
        history: dict[str, list[tuple[int, str]]] = {}
        for consent_id, seq, to_status in session.execute(
            select(ConsentEvent.consent_id, ConsentEvent.seq, ConsentEvent.to_status).order_by(
                ConsentEvent.consent_id, ConsentEvent.seq
            )
        ):
            history.setdefault(consent_id, []).append((seq, to_status))
    for consent_id in withdrawals.acked:
        assert status[consent_id] == "withdrawn", consent_id
    for consent_id, steps in history.items():
        assert [s for s, _ in steps] == list(range(steps[0][0], steps[0][0] + len(steps)))
        assert steps[-1][1] == status[consent_id], f"status and history disagree: {consent_id}"


# -- kill during audit append (every pull appends an event) -------------------------------------


@pytest.fixture(scope="module")
def pulls(served: ServedHub, credentials: dict[str, Any]) -> Ledger:
    lender = credentials["partners"][LENDER]
    agreement = next(a["id"] for a in lender["agreements"] if a["dataset"] == DATASET)
    headers = {"Authorization": f"Bearer {_token(served, lender)}"}
    ledger = Ledger()

    def pull(http: httpx.Client, i: int) -> bool:
        response: httpx.Response | None = None
        try:
            response = http.get(
                f"/v1/agreements/{agreement}/records", params={"limit": 5}, headers=headers
            )
        finally:
            acked = ledger.record(i, response)
        return acked

    kill_during(served, pull, threads=6, kill_after=12)
    return ledger


def test_every_acknowledged_pull_has_its_audit_events_once(
    pulls: Ledger, publishes: Ledger, withdrawals: Ledger, db: Callable[[], Session]
) -> None:
    """A pull leaves one event per decision of its page (``page_decisions`` of them, at least
    one), appended together: consecutive indexes, all or none."""
    with db() as session:
        indexes = list(session.scalars(select(AuditEvent.index).order_by(AuditEvent.index)))
        rows = session.execute(
            select(AuditEvent.request_id, AuditEvent.index, AuditEvent.kind, AuditEvent.canonical)
            .where(AuditEvent.request_id.is_not(None))
            .order_by(AuditEvent.index)
        ).all()
    assert indexes == list(range(indexes[0], indexes[0] + len(indexes))), "gap in the audit log"
    events: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}
    for request_id, index, kind, canonical in rows:
        events.setdefault(str(request_id), []).append((index, kind, json.loads(canonical)))
    assert pulls.request_ids
    for request_id in pulls.request_ids:
        mine = events.get(request_id, [])
        assert mine, f"acknowledged pull without audit event: {request_id}"
        assert all(kind.startswith("release") for _, kind, _ in mine)
        expected = max(1, int(mine[0][2].get("page_decisions", 1)))
        assert len(mine) == expected, (request_id, [(i, k) for i, k, _ in mine])
        first = mine[0][0]
        assert [i for i, _, _ in mine] == list(range(first, first + expected))
    for request_id, mine in events.items():
        decisions = max(1, int(mine[0][2].get("page_decisions", 1)))
        if mine[0][1].startswith("release") and mine[0][1] != "release.denied":
            assert len(mine) == decisions, f"half-written or duplicated: {request_id}"
    for request_id in publishes.request_ids + withdrawals.request_ids:
        assert len(events.get(request_id, [])) <= 1, request_id


def test_the_audit_log_verifies_after_the_kills(
    served: ServedHub, pulls: Ledger, tmp_path: Path
) -> None:
    export = tmp_path / "audit.jsonl"
    result = served.cli("audit", "export", "--out", str(export))
    assert result.returncode == 0, result.stdout + result.stderr
    key = served.cli("audit", "verifier-key")
    assert key.returncode == 0, key.stderr
    verified = served.cli("audit", "verify", str(export), "--key", key.stdout.strip())
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "OK" in verified.stdout


def test_the_restarted_hub_serves(served: ServedHub, credentials: dict[str, Any]) -> None:
    response = httpx.get(
        served.url + "/v1/agreements",
        headers={"Authorization": f"Bearer {_token(served, credentials['partners'][LENDER])}"},
    )
    assert response.status_code == 200
