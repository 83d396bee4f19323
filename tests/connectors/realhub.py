"""The real hub for the connectors' end-to-end tests: a seeded hub of the test module's own,
served by uvicorn on a loopback port (``served`` fixture in ``conftest.py``), demo borrowers with
consent, generated loan applications, and helpers to run the CLI and read sinks."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy import select

from connectors import HubClient
from consent.models import Consent
from consent.webhooks import SIGNATURE_HEADER, sign_detached
from hub.demo.population import Consumer, generate_population
from hub.settings import Settings
from tests.conftest import TEST_CONSUMERS, make_settings
from tests.consent.support import DATASET, LENDER, subject_of, usable
from tests.support.databases import TestDatabases
from tests.support.hub import HubEnv, build_env
from tests.support.served import served_in_thread

BIG = 10_000
ROWS = int(os.environ.get("TOLLHOUSE_CONNECTORS_ROWS", "1000"))
DEALER = "dealer-huadong"
ROOT = Path(__file__).resolve().parents[2]

MAPPING = """
record_key = "contract_no"
version = "revision"

[subject]
id_number = "national_id"

[fields]
applicant_name = "name"
birth_date = { column = "birth_date", type = "date" }
id_number = "national_id"
mobile = "phone"
address = "address"
monthly_income_cny = { column = "income", type = "int" }
vin = "vin"
amount_cny = { column = "amount", type = "int", required = true }
term_months = { column = "term", type = "int" }
down_payment_cny = { column = "down", type = "int" }
applied_on = { column = "applied_on", type = "date" }
lender = "lender"
"""


class Served:
    def __init__(self, env: HubEnv, url: str, people: list[Consumer], vins: dict[str, str]):
        self.env = env
        self.url = url
        self.people = people  # consumers whose consent lets the lender pull their records
        self.vins = vins

    def secret(self, ref: str) -> str:
        return str(self.env.partner(ref)["client_secret"])

    def client_id(self, ref: str) -> str:
        return str(self.env.partner(ref)["client_id"])

    def sdk(self, ref: str = LENDER) -> HubClient:
        return HubClient(self.url, self.client_id(ref), client_secret=self.secret(ref))

    def cli(self, ref: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "connectors.cli", *args],
            env=self.cli_env(ref),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )

    def cli_env(self, ref: str) -> dict[str, str]:
        return {
            **os.environ,
            "TOLLHOUSE_HUB": self.url,
            "TOLLHOUSE_CLIENT_ID": self.client_id(ref),
            "TOLLHOUSE_CLIENT_SECRET": self.secret(ref),
            "COLUMNS": "200",
        }


@contextmanager
def serving(
    seeded_template: tuple[Path, str, dict[str, Any]], databases: TestDatabases
) -> Iterator[Served]:
    """A seeded hub of its own, served by a real uvicorn on a loopback port; webhook
    delivery to loopback is allowed (as in tests/consent: the SSRF guard has its own tests)."""
    data_dir, template_url, credentials = seeded_template
    # Partner rate limits have their own tests; 10,000 rows in a few seconds would exceed them.
    extra = {"rate_limits_enabled": False} if "rate_limits_enabled" in Settings.model_fields else {}
    settings = make_settings(data_dir, databases.clone(template_url), **extra)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOLLHOUSE_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
        patch.setenv("TOLLHOUSE_WEBHOOK_TIMEOUT_SECONDS", "60")
        env = build_env(settings, credentials)
    population = generate_population(seed=7, consumers=TEST_CONSUMERS)
    vins = {v.subject_ref: v.vin for v in population.vehicles}
    with env.client:
        people = [
            p
            for p in population.consumers
            if p.id_type == "prc_id" and p.subject_ref in vins and usable(env, subject_of(env, p))
        ]
        assert len(people) >= 4, "the demo must have consenting borrowers"
        with served_in_thread(env.client.app) as url:
            yield Served(env, url, people, vins)
    env.runtime.engine.dispose()


def rows(served: Served, prefix: str, n: int, start: int = 0) -> list[dict[str, Any]]:
    out = []
    for i in range(start, start + n):
        p = served.people[i % len(served.people)]
        out.append(
            {
                "contract_no": f"{prefix}-{i:06d}",
                "revision": 1,
                "name": p.full_name,
                "birth_date": p.birth_date.isoformat(),
                "national_id": p.id_number,
                "phone": p.mobile,
                "address": p.address,
                "income": p.monthly_income_cny,
                "vin": served.vins[p.subject_ref],
                "amount": 50_000 + i,
                "term": 36,
                "down": 10_000,
                "applied_on": (date(2026, 1, 1) + timedelta(days=i % 300)).isoformat(),
                "lender": LENDER,
            }
        )
    return out


def write_csv(path: Path, data: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(data[0]))
        writer.writeheader()
        writer.writerows(data)


def agreement(served: Served) -> str:
    return served.env.agreement(LENDER, DATASET)


def sql_rows(url: str, prefix: str = "") -> dict[str, dict[str, Any]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        result = conn.execute(sa.text("select record_key, subject, fields from tollhouse_records"))
        found = {
            key: {"subject": subject, "fields": fields if isinstance(fields, dict) else
                  json.loads(fields)}
            for key, subject, fields in result
            if key.startswith(prefix)
        }  # fmt: skip
    engine.dispose()
    return found


def pull(served: Served, sink: str, state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return served.cli(
        LENDER, "pull", "--agreement", agreement(served), "--sink", sink, "--state", str(state),
        "--page-size", "1000", *extra,
    )  # fmt: skip


# -- publish and pull ------------------------------------------------------------------------


def withdraw(served: Served, person: Consumer) -> str:
    """The consumer withdraws the consent that lets the lender pull their loan applications."""
    env = served.env
    subject_id = subject_of(env, person)
    with env.session() as session:
        consent_id = session.scalars(
            select(Consent.id).where(
                Consent.subject_id == subject_id,
                Consent.recipient_id == env.partner(LENDER)["partner_id"],
                Consent.status == "active",
            )
        ).first()
    assert consent_id is not None
    me = {"Authorization": f"Bearer {env.runtime.consumer_tokens.issue(subject_id)}"}
    response = env.client.post(f"/v1/me/consents/{consent_id}/withdraw", json={}, headers=me)
    assert response.status_code == 200, response.text
    return consent_id


def signed(served: Served, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(payload)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign_detached(body, served.env.runtime.signing_keys),
        "Tollhouse-Event-Id": str(payload["id"]),
        "Tollhouse-Event-Type": str(payload["type"]),
    }
    return body, headers
