"""The consent webhook receiver against the real hub: `connect webhooks serve` on a loopback
port over a pulled SQL sink, registered with the hub, which delivers withdrawals to it. The rows
of the withdrawn subject go, the attestation reaches the hub; forged, replayed, stale and
unknown events are handled; de-identification keeps only the allowed fields. A hub of this
module's own, without the 10,000 rows of the publish tests, so each pull is small."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from joserfc.jwk import OKPKey
from sqlalchemy import select

from connectors import PublishRecord, Subject, WebhookReceiver
from consent.models import ConsentNotification, DeletionAttestation
from consent.webhooks import SIGNATURE_HEADER, sign_detached
from tests.connectors.realhub import (
    DATASET,
    DEALER,
    LENDER,
    Served,
    agreement,
    pull,
    rows,
    signed,
    sql_rows,
    withdraw,
)  # fmt: skip
from tests.consent.support import subject_of
from tests.support.databases import TestDatabases
from tests.support.served import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pulled(
    served: Served, databases: TestDatabases, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A SQL sink holding everything the lender may pull, shared by the webhook tests; each
    consenting borrower has a few loan applications in it."""
    column_of = {
        "applicant_name": "name", "birth_date": "birth_date", "id_number": "national_id",
        "mobile": "phone", "address": "address", "monthly_income_cny": "income", "vin": "vin",
        "amount_cny": "amount", "term_months": "term", "down_payment_cny": "down",
        "applied_on": "applied_on", "lender": "lender",
    }  # fmt: skip
    batch = [
        PublishRecord(
            r["contract_no"],
            1,
            Subject(id_number=r["national_id"]),
            {name: r[column] for name, column in column_of.items()},
        )
        for r in rows(served, "WH", 3 * len(served.people))
    ]
    with served.sdk(DEALER) as sdk:
        assert sdk.publish(DATASET, batch).created == len(batch)
    sink = databases.new("conn_webhooks")
    done = pull(served, sink, tmp_path_factory.mktemp("webhooks") / "state.json")
    assert done.returncode == 0, done.stderr
    return sink


@pytest.fixture(scope="module")
def receiver(
    served: Served, pulled: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """`connect webhooks serve` over the pulled sink, registered with the hub."""
    sink_db = pulled
    port = free_port()
    log = tmp_path_factory.mktemp("receiver") / "receiver.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "connectors.cli",
                "webhooks",
                "serve",
                "--sink",
                sink_db,
                "--port",
                str(port),
                "--path",
                "/hook",
            ],  # fmt: skip
            env=served.cli_env(LENDER),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/hook"
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    with served.sdk() as sdk:
        hook = sdk.register_webhook(url)
    try:
        yield sink_db, url
    finally:
        with served.sdk() as sdk:
            sdk.delete_webhook(hook["id"])
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def test_webhook_withdrawal_deletes_the_subjects_rows_and_attests(
    served: Served, receiver: tuple[str, str]
) -> None:
    sink, _ = receiver
    env = served.env
    person = served.people[0]
    subject_id = subject_of(env, person)
    pseudonym = env.runtime.protector.pseudonym(env.partner(LENDER)["partner_id"], subject_id)
    before = sql_rows(sink)
    theirs = {k for k, r in before.items() if r["subject"] == pseudonym}
    assert theirs

    consent_id = withdraw(served, person)
    report = env.runtime.webhooks.deliver_due()
    assert report.delivered >= 1, report.errors

    after = sql_rows(sink)
    assert not {k for k, r in after.items() if r["subject"] == pseudonym}
    assert set(after) == set(before) - theirs  # everybody else's rows are untouched
    with env.session() as session:
        attestation = session.scalars(
            select(DeletionAttestation).where(DeletionAttestation.consent_id == consent_id)
        ).one()
        notification = session.scalars(
            select(ConsentNotification).where(ConsentNotification.consent_id == consent_id)
        ).one()
    assert attestation.records_deleted == len(theirs)
    assert notification.acknowledged_at is not None


def post_signed(served: Served, url: str, payload: dict[str, Any]) -> httpx.Response:
    body, headers = signed(served, payload)
    return httpx.post(url, content=body, headers=headers)


def test_forged_replayed_and_unknown_events(served: Served, receiver: tuple[str, str]) -> None:
    sink, url = receiver
    env = served.env
    before = sql_rows(sink)
    consent_id = withdraw(served, served.people[1])
    env.runtime.webhooks.deliver_due()
    deleted = set(before) - set(sql_rows(sink))
    assert deleted
    with env.session() as session:
        payload = session.scalars(
            select(ConsentNotification.payload).where(ConsentNotification.consent_id == consent_id)
        ).one()
    body, headers = signed(served, payload)

    # A replay of the delivered event changes nothing and attests nothing again.
    replay = httpx.post(url, content=body, headers=headers)
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    with env.session() as session:
        assert len(session.scalars(
            select(DeletionAttestation).where(DeletionAttestation.consent_id == consent_id)
        ).all()) == 1  # fmt: skip

    # Forgeries: a changed body, no signature, another key, headers that lie, an old event.
    forged = {**payload, "id": "ntf_forged", "data": {**payload["data"], "consent_id": "x"}}
    assert httpx.post(url, content=orjson.dumps(forged), headers=headers).status_code == 401
    unsigned = {k: v for k, v in headers.items() if k != SIGNATURE_HEADER}
    assert httpx.post(url, content=body, headers=unsigned).status_code == 401

    class Other:
        private_key = OKPKey.generate_key("Ed25519")
        kid = env.runtime.signing_keys.kid

    other = {**headers, SIGNATURE_HEADER: sign_detached(body, Other())}  # type: ignore[arg-type]
    assert httpx.post(url, content=body, headers=other).status_code == 401
    lying = {**headers, "Tollhouse-Event-Type": "consent.expired"}
    assert httpx.post(url, content=body, headers=lying).status_code == 400
    old = {**payload, "id": "ntf_old", "created_at": "2020-01-01T00:00:00+00:00"}
    assert post_signed(served, url, old).status_code == 400

    # An event type the receiver does not know (an agreement notice) is acknowledged, ignored.
    notice = {"id": "ntf_agreement", "type": "agreement.terminated",
              "created_at": datetime.now(UTC).isoformat(),
              "data": {"agreement_id": agreement(served)}}  # fmt: skip
    answer = post_signed(served, url, notice)
    assert answer.status_code == 200 and answer.json()["status"] == "ignored"
    assert post_signed(served, url, notice).json()["status"] == "duplicate"
    assert set(sql_rows(sink)) == set(before) - deleted


def test_receiver_deidentifies_when_asked(served: Served, pulled: str) -> None:
    """The handler without a web server: de-identify keeps only the allowed fields."""
    sink_db = pulled
    person = served.people[2]
    env = served.env
    pseudonym = env.runtime.protector.pseudonym(
        env.partner(LENDER)["partner_id"], subject_of(env, person)
    )
    theirs = {k for k, r in sql_rows(sink_db).items() if r["subject"] == pseudonym}
    assert theirs
    consent_id = withdraw(served, person)
    with env.session() as session:
        payload = session.scalars(
            select(ConsentNotification.payload).where(ConsentNotification.consent_id == consent_id)
        ).one()
    body, headers = signed(served, payload)
    with served.sdk() as sdk:
        rx = WebhookReceiver(sdk, sink_db, on_withdrawal="deidentify", keep_fields=["amount_cny"])
        response = rx.handle(body, headers)
        rx.close()
    assert response.status == 200, response.body
    assert response.body["records"] == len(theirs)
    after = sql_rows(sink_db)
    assert {k for k, r in after.items() if r["subject"] == "deidentified"} == theirs
    assert all(set(after[k]["fields"]) == {"amount_cny"} for k in theirs)
