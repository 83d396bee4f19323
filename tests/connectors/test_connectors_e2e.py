"""The connectors against the real hub: a uvicorn on a loopback port, the CLI as subprocesses.

A provider publishes 10,000 rows from CSV (always) and ``ROWS`` rows from a SQL table (1,000 by
default; ``TOLLHOUSE_CONNECTORS_ROWS=10000`` for the full run); a recipient pulls them into SQL
and JSONL sinks; a pull killed with SIGKILL resumes with exactly the right rows; a consent
withdrawn mid-pull is reflected on the next page. The source and sink databases live on the
same server as the hub's (SQLite files by default, PostgreSQL with ``TOLLHOUSE_DATABASE_URL``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.connectors.realhub import (
    BIG,
    DATASET,
    DEALER,
    LENDER,
    MAPPING,
    ROWS,
    Served,
    agreement,
    pull,
    rows,
    sql_rows,
    withdraw,
    write_csv,
)  # fmt: skip
from tests.consent.support import subject_of

pytestmark = pytest.mark.slow


# -- publish and pull ------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvPublished:
    data: list[dict[str, Any]]
    first: subprocess.CompletedProcess[str]
    again: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def csv_published(served: Served, tmp_path_factory: pytest.TempPathFactory) -> CsvPublished:
    """BIG rows published once per hub from CSV, then the same file again (idempotent), for
    every test here that pulls them, whichever worker runs it."""
    folder = tmp_path_factory.mktemp("csv")
    mapping = folder / "mapping.toml"
    mapping.write_text(MAPPING)
    data = rows(served, "CSV", BIG)
    source = folder / "applications.csv"
    write_csv(source, data)
    command = ("publish", "--dataset", DATASET, "--from", f"csv:{source}",
               "--mapping", str(mapping), "--batch-size", "1000")  # fmt: skip
    first = served.cli(DEALER, *command)
    again = served.cli(DEALER, *command)
    return CsvPublished(data, first, again)


def test_publish_csv_then_pull_into_sql_sink(
    served: Served, tmp_path: Path, csv_published: CsvPublished, sink_db: str
) -> None:
    published, again, data = csv_published.first, csv_published.again, csv_published.data
    assert published.returncode == 0, published.stderr
    assert f"Published {BIG:,} records" in published.stdout
    assert f"created {BIG:,}" in published.stdout
    assert again.returncode == 0, again.stderr
    assert f"unchanged {BIG:,}" in again.stdout  # idempotent re-run

    done = pull(served, sink_db, tmp_path / "state.json")
    assert done.returncode == 0, done.stderr
    got = sql_rows(sink_db, "CSV-")
    assert len(got) == BIG
    by_key = {r["contract_no"]: r for r in data}
    for key, row in got.items():
        assert row["subject"].startswith("psn_")
        assert row["fields"]["amount_cny"] == by_key[key]["amount"]
        assert row["fields"]["mobile"] == by_key[key]["phone"]
        assert "address" not in row["fields"]  # outside the agreement: never released


def test_publish_sql_table_incrementally_then_pull_into_jsonl(
    served: Served, tmp_path: Path, mapping: Path, sink_db: str
) -> None:
    data = rows(served, "SQL", ROWS)
    engine = sa.create_engine(sink_db)
    metadata = sa.MetaData()
    table = sa.Table(
        "loan_apps", metadata,
        *(sa.Column(name, sa.Integer if isinstance(value, int) else sa.String(64))
          for name, value in data[0].items()),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
    )  # fmt: skip
    metadata.create_all(engine)
    first = datetime(2026, 3, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{**r, "updated_at": first} for r in data])
    state = tmp_path / "source-state.json"
    args = ("publish", "--dataset", DATASET, "--from", sink_db, "--table", "loan_apps",
            "--updated-column", "updated_at", "--state", str(state), "--mapping", str(mapping),
            "--batch-size", "1000")  # fmt: skip
    published = served.cli(DEALER, *args)
    assert published.returncode == 0, published.stderr
    assert f"created {ROWS:,}" in published.stdout

    nothing_new = served.cli(DEALER, *args)
    assert nothing_new.returncode == 0, nothing_new.stderr
    assert "Published 0 records" in nothing_new.stdout

    extra = rows(served, "SQL", 5, start=ROWS)
    with engine.begin() as conn:
        conn.execute(
            table.insert(), [{**r, "updated_at": first + timedelta(days=1)} for r in extra]
        )
    engine.dispose()
    increment = served.cli(DEALER, *args)
    assert increment.returncode == 0, increment.stderr
    assert "Published 5 records" in increment.stdout and "created 5" in increment.stdout

    out = tmp_path / "pulled.jsonl"
    done = pull(served, f"jsonl:{out}", tmp_path / "state.json")
    assert done.returncode == 0, done.stderr
    keys = [json.loads(line)["record_key"] for line in out.read_text().splitlines()]
    assert len(keys) == len(set(keys))
    assert sorted(k for k in keys if k.startswith("SQL-")) == sorted(
        r["contract_no"] for r in data + extra
    )


def test_sql_source_reports_bad_rows_and_publishes_nothing(
    served: Served, tmp_path: Path, mapping: Path, sink_db: str
) -> None:
    data = rows(served, "BAD", 4)
    data[1]["amount"] = "lots"
    data[2]["national_id"] = None
    engine = sa.create_engine(sink_db)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "create table apps (contract_no varchar(64), revision integer, name varchar(64), "
            "birth_date varchar(20), national_id varchar(64), phone varchar(20), "
            "address varchar(200), income integer, vin varchar(20), amount varchar(20), "
            "term integer, down integer, applied_on varchar(20), lender varchar(64))"
        ))  # fmt: skip
        conn.execute(
            sa.text(
                "insert into apps values (:contract_no, :revision, :name, :birth_date, "
                ":national_id, :phone, :address, :income, :vin, :amount, :term, :down, "
                ":applied_on, :lender)"
            ),
            [{**r, "amount": str(r["amount"])} for r in data],
        )
    engine.dispose()
    result = served.cli(
        DEALER, "publish", "--dataset", DATASET, "--from", sink_db,
        "--query", "select * from apps order by contract_no", "--mapping", str(mapping),
    )  # fmt: skip
    assert result.returncode == 2
    assert "row 2: fields.amount_cny: column 'amount' is not a int" in result.stderr
    assert "row 3: subject: no identifier" in result.stderr
    assert "nothing was published" in result.stderr
    with served.sdk() as sdk, pytest.raises(Exception, match="404|No releasable"):
        sdk.get_record(agreement(served), "BAD-000000")


# -- resuming after kill -9 ------------------------------------------------------------------


def test_kill_9_mid_pull_resumes_with_exactly_the_released_rows(
    served: Served, tmp_path: Path, sink_db: str, csv_published: CsvPublished
) -> None:
    with served.sdk() as sdk:
        expected = sorted(
            r.record_key for page in sdk.iter_records(agreement(served), limit=1000)
            for r in page.items
        )  # fmt: skip
    assert len(expected) >= BIG
    for sink in (sink_db, f"jsonl:{tmp_path / 'pulled.jsonl'}"):
        state = tmp_path / f"state-{len(sink)}.json"
        cmd = [sys.executable, "-m", "connectors.cli", "pull", "--agreement", agreement(served),
               "--sink", sink, "--state", str(state), "--page-size", "200"]  # fmt: skip
        log = tmp_path / "killed.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, env=served.cli_env(LENDER), stdout=out, stderr=out)
        deadline = time.monotonic() + 120
        pages = 0
        # Killed at its first durable checkpoint, out of some fifty pages: a loaded machine may
        # starve this loop for a while, and the pull must still be mid-way.
        while pages < 1:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the pull made no progress"
            time.sleep(0.02)
            try:
                pages = json.loads(state.read_text())["pages"]
            except (FileNotFoundError, ValueError, KeyError):
                pass
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        checkpoint = json.loads(state.read_text())
        assert not checkpoint["complete"]
        done = subprocess.run(
            cmd, env=served.cli_env(LENDER), capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        if sink.startswith("jsonl:"):
            lines = Path(sink[6:]).read_text().splitlines()
            keys = [json.loads(line)["record_key"] for line in lines]
            assert len(keys) == len(set(keys)), "duplicates after resuming"
        else:
            keys = list(sql_rows(sink))
        assert sorted(keys) == expected


def test_consent_withdrawn_mid_pull_is_reflected_on_the_next_page(served: Served) -> None:
    env = served.env
    person = served.people[3]
    subject_id = subject_of(env, person)
    pseudonym = env.runtime.protector.pseudonym(env.partner(LENDER)["partner_id"], subject_id)
    with served.sdk() as sdk:
        pages = sdk.iter_records(agreement(served), limit=200)
        first = next(pages)
        assert first.items
        withdraw(served, person)
        later = [r for page in pages for r in page.items]
    assert later and all(r.subject != pseudonym for r in later)
