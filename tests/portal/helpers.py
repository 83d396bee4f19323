"""Signing in to the portal as a demo consumer: their mobile or e-mail, the outbox, the CSRF
token."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from consent.models import ConsentStatus
from hub.crypto.normalize import normalize_identifier
from hub.demo.population import generate_population
from hub.portal.web import Portal
from hub.records.models import Record, SubjectIdentifier
from hub.store.base import utcnow
from tests.conftest import TEST_CONSUMERS
from tests.support.consents import grant_capped
from tests.support.hub import TEST_ISSUER, HubEnv

LENDER = "lender-jinqiao"
INSURER = "insurer-anxin"
DATASET = "dealer-huadong.loan-applications"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CODE = re.compile(r"\b(\d{6})\b")


@dataclass(frozen=True)
class DemoConsumer:
    mobile: str
    subject_id: str
    email: str = ""


def demo_consumers(env: HubEnv) -> list[DemoConsumer]:
    """Every demo consumer living in CN (by mobile) with their subject id, in a stable order."""
    population = generate_population(seed=env.settings.demo_seed, consumers=TEST_CONSUMERS)
    protector = env.runtime.protector
    # Consumers in CN (the tests expect the Chinese default).
    by_digest = {
        protector.blind_index("mobile", c.mobile): c
        for c in population.consumers
        if c.jurisdiction == "CN"
    }
    with env.session() as session:
        rows = session.execute(
            select(SubjectIdentifier.digest, SubjectIdentifier.subject_id).where(
                SubjectIdentifier.kind == "mobile",
                SubjectIdentifier.digest.in_(list(by_digest)),
            )
        ).all()
    return sorted(
        (
            DemoConsumer(by_digest[digest].mobile, subject, by_digest[digest].email)
            for digest, subject in rows
        ),
        key=lambda c: c.subject_id,
    )


def consumer_with(
    env: HubEnv, status: ConsentStatus, *, skip: int = 0, other_than: DemoConsumer | None = None
) -> DemoConsumer:
    """A demo consumer who has a consent in ``status`` (the ``skip``-th such one), never
    ``other_than``: tests of one consumer reaching for another's ids need two people."""
    found = 0
    for consumer in demo_consumers(env):
        if other_than is not None and consumer.subject_id == other_than.subject_id:
            continue
        if statuses_of(env, consumer.subject_id, status):
            if found == skip:
                return consumer
            found += 1
    raise LookupError(f"no demo consumer with a {status} consent")


def statuses_of(env: HubEnv, subject_id: str, status: ConsentStatus) -> list[str]:
    """The ids of this consumer's consents in ``status``."""
    with env.session() as session:
        items = env.runtime.consents.overview(session, subject_id=subject_id, statuses=[status])
        return [item.consent.id for item in items if item.status == status]


def outbox(env: HubEnv) -> Path:
    return env.settings.data_dir / "outbox"


def messages_to(env: HubEnv, identifier: str) -> list[dict[str, str]]:
    """Every outbox message to this mobile number or e-mail address, oldest first."""
    to = normalize_identifier("email" if "@" in identifier else "mobile", identifier)
    found = []
    for path in sorted(outbox(env).glob("*.json")):
        message = json.loads(path.read_text(encoding="utf-8"))
        if message["to"] == to:
            found.append(message)
    return found


def last_code(env: HubEnv, identifier: str) -> str:
    """The code in the newest outbox message to this mobile number or e-mail address."""
    messages = messages_to(env, identifier)
    if not messages:
        raise LookupError(f"no message to {identifier}")
    match = CODE.search(messages[-1]["body"])
    assert match, messages[-1]
    return match.group(1)


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, html
    return match.group(1)


_clients = itertools.count(1)


def new_client(env: HubEnv, ip: str | None = None) -> TestClient:
    """A browser of its own (cookies), from its own IP address unless ``ip`` is given."""
    n = next(_clients)
    return TestClient(
        env.client.app,
        base_url=TEST_ISSUER,
        raise_server_exceptions=True,
        follow_redirects=False,
        client=(ip or f"198.51.100.{n % 250 + 1}", 50000),
    )


def ask_code(client: TestClient, identifier: str) -> str:
    """Open the sign-in page and ask for a code for a mobile number or e-mail address; return
    the CSRF token of the session."""
    page = client.get("/portal/sign-in")
    assert page.status_code == 200, page.text
    token = csrf_of(page.text)
    response = client.post("/portal/sign-in", data={"csrf_token": token, "identifier": identifier})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/portal/sign-in/code"
    return token


def sign_in(env: HubEnv, client: TestClient, identifier: str) -> str:
    """Sign in (mobile number or e-mail address) with the code from the outbox; return the new
    session's CSRF token."""
    token = ask_code(client, identifier)
    response = client.post(
        "/portal/sign-in/code", data={"csrf_token": token, "code": last_code(env, identifier)}
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/portal/home"
    home = client.get("/portal/home")
    assert home.status_code == 200, home.text
    return csrf_of(home.text)


def portal_of(env: HubEnv) -> Portal:
    portal: Portal = env.client.app.state.portal  # type: ignore[attr-defined]
    return portal


def released_to(
    env: HubEnv, partner: str, dataset: str, purpose: str, *, skip: int = 0
) -> tuple[DemoConsumer, str]:
    """A consumer whose record ``partner`` received from ``dataset`` (after a pull), and their
    own active consent that allowed it."""
    partner_id = env.partner(partner)["partner_id"]
    found = 0
    for consumer in demo_consumers(env):
        with env.session() as session:
            entries = portal_of(env).mydata.ledger(
                session, subject_id=consumer.subject_id, outcome="allowed"
            )
            if not any(e.dataset_id == dataset for e in entries):
                continue
            for consent in env.runtime.consents.consents_of_subject(
                session, subject_id=consumer.subject_id, statuses=[ConsentStatus.ACTIVE]
            ):
                if consent.recipient_id == partner_id and consent.purpose == purpose:
                    if found == skip:
                        return consumer, consent.id
                    found += 1
                    break
    raise LookupError("no consumer's record was released under their own consent")


def purpose_of(env: HubEnv, partner: str, agreement_id: str) -> str:
    purpose: str = next(
        a["purpose"] for a in env.partner(partner)["agreements"] if a["id"] == agreement_id
    )
    return purpose


def consumer_with_record(env: HubEnv, dataset: str = DATASET, *, skip: int = 0) -> DemoConsumer:
    """A demo consumer who has a record in ``dataset`` (the ``skip``-th such one)."""
    with env.session() as session:
        owners = set(
            session.scalars(select(Record.subject_id).where(Record.dataset_id == dataset)).all()
        )
    found = [c for c in demo_consumers(env) if c.subject_id in owners]
    return found[skip]


def capped_consent(env: HubEnv, subject_id: str, cap: int) -> str:
    """A new consent (it wins over the consumer's older ones) letting the lender fetch the
    consumer's loan application at most ``cap`` times a UTC day, for 30 days."""
    return grant_capped(
        env,
        recipient=LENDER,
        subject_id=subject_id,
        purpose=purpose_of(env, LENDER, env.agreement(LENDER, DATASET)),
        cap=cap,
        starts_at=utcnow() - timedelta(minutes=1),
    )


def fetch_record_of(env: HubEnv, subject_id: str) -> None:
    """The lender pulls the consumer's loan application (one record): one fetch today."""
    with env.session() as session:
        record_key = session.scalars(
            select(Record.record_key).where(
                Record.dataset_id == DATASET, Record.subject_id == subject_id
            )
        ).first()
    assert record_key is not None
    agreement = env.agreement(LENDER, DATASET)
    response = env.client.get(
        f"/v1/agreements/{agreement}/records/{record_key}", headers=env.auth(LENDER)
    )
    assert response.status_code == 200, response.text


def insurer_asks(env: HubEnv, mobile: str, *, fetches_per_day: int | None = None) -> str:
    """The insurer asks the consumer (through the partner API) to read their car and its
    workshop visits to handle a claim, capped at ``fetches_per_day`` if given; the request id."""
    body: dict[str, object] = {
        "subject": {"mobile": mobile},
        "purpose": "claims_handling",
        "categories": ["vehicle", "service_history"],
        "duration_days": 60,
        "reason": "To settle your claim quickly.",
    }
    if fetches_per_day is not None:
        body["fetches_per_day"] = fetches_per_day
    response = env.client.post("/v1/consent-requests", headers=env.auth(INSURER), json=body)
    assert response.status_code == 201, response.text
    request_id: str = response.json()["id"]
    return request_id
