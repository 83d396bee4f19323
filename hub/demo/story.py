"""``tollhouse demo``: the foundation's story, told against a running hub.

Partners act over HTTP through the connector SDK, exactly as their own systems would. The
consumer's consent steps go through the consent service on this machine (the consumer portal
will be their real channel); the regulator reads the audit log over HTTP.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from connectors import HubClient, NotFound, PublishRecord, Subject
from consent.models import Consent, ConsentStatus
from consent.service import grant_consent, withdraw_consent
from hub.demo.population import Consumer, generate_population
from hub.records.models import SubjectIdentifier
from hub.runtime import Runtime
from hub.settings import get_settings
from hub.store.base import utcnow
from hub.store.db import unit_of_work

DEALER = "dealer-huadong"
LENDER = "lender-jinqiao"
REGULATOR = "regulator-fsr"
DATASET = f"{DEALER}.loan-applications"
PURPOSE = "credit_assessment"
CATEGORIES = ["contact", "identity", "identity_document", "income", "loan", "vehicle_identifier"]


def _client(hub_url: str, partner: dict[str, Any], scopes: tuple[str, ...]) -> HubClient:
    return HubClient(
        hub_url,
        partner["client_id"],
        client_secret=partner["client_secret"],
        scopes=scopes,
    )


def _choose_consumer() -> Consumer:
    settings = get_settings()
    population = generate_population(seed=settings.demo_seed, consumers=settings.demo_consumers)
    for consumer in population.consumers:
        if consumer.id_type == "prc_id" and consumer.jurisdiction == "CN":
            return consumer
    raise RuntimeError("the demo population has no consumer with a PRC identity number")


def run_story(*, hub_url: str, console: Console) -> None:
    settings = get_settings()
    credentials = json.loads((settings.data_dir / "demo-credentials.json").read_text())
    partners = credentials["partners"]
    runtime = Runtime.build(settings)
    consumer = _choose_consumer()
    agreement_id = next(a["id"] for a in partners[LENDER]["agreements"] if a["dataset"] == DATASET)

    def step(n: int, text: str) -> None:
        console.rule(f"[bold]{n}. {text}")

    step(1, f"{consumer.full_name} consents: {LENDER} may assess their credit")
    with unit_of_work(runtime.session_factory) as session:
        digest = runtime.protector.blind_index("mobile", consumer.mobile)
        subject_id = session.scalars(
            select(SubjectIdentifier.subject_id).where(
                SubjectIdentifier.kind == "mobile", SubjectIdentifier.digest == digest
            )
        ).one()
        consent = grant_consent(
            session,
            subject_id=subject_id,
            recipient_id=partners[LENDER]["partner_id"],
            purpose=PURPOSE,
            categories=CATEGORIES,
            sensitive=True,
            expires_at=utcnow() + timedelta(days=60),
            actor=f"subject:{subject_id}",
            channel="demo",
        )
        console.print(f"consent {consent.id} granted until {consent.expires_at:%Y-%m-%d}")

    record_key = f"LA-DEMO-{utcnow():%Y%m%d%H%M%S}"
    step(2, f"{DEALER} publishes loan application {record_key}")
    with _client(hub_url, partners[DEALER], ("records:publish",)) as dealer:
        result = dealer.publish(
            DATASET,
            [
                PublishRecord(
                    record_key=record_key,
                    version=1,
                    subject=Subject(id_number=consumer.id_number, mobile=consumer.mobile),
                    fields={
                        "applicant_name": consumer.full_name,
                        "birth_date": consumer.birth_date.isoformat(),
                        "id_number": consumer.id_number,
                        "mobile": consumer.mobile,
                        "address": consumer.address,
                        "monthly_income_cny": consumer.monthly_income_cny,
                        "vin": "LSVAU2180N2183294",
                        "amount_cny": 158000,
                        "term_months": 36,
                        "down_payment_cny": 40000,
                        "applied_on": utcnow().date().isoformat(),
                        "lender": LENDER,
                    },
                )
            ],
        )
        console.print(f"accepted {result.accepted}, created {result.created}")

    step(3, f"{LENDER} pulls it under agreement {agreement_id}")
    with _client(hub_url, partners[LENDER], ("records:pull",)) as lender:
        record = lender.get_record(agreement_id, record_key)
        table = Table("field", "released value")
        for name, value in sorted(record.fields.items()):
            table.add_row(name, str(value))
        console.print(table)
        console.print("[dim]address and birth_date are outside the agreement: never released[/dim]")

        step(4, f"{consumer.full_name} withdraws every consent given to {LENDER} for {PURPOSE}")
        with unit_of_work(runtime.session_factory) as session:
            active = session.scalars(
                select(Consent).where(
                    Consent.subject_id == subject_id,
                    Consent.recipient_id == partners[LENDER]["partner_id"],
                    Consent.purpose == PURPOSE,
                    Consent.status == ConsentStatus.ACTIVE,
                )
            ).all()
            for c in active:
                withdraw_consent(
                    session, consent_id=c.id, subject_id=subject_id, channel="demo",
                    reason="I no longer want this lender to see my data",
                )  # fmt: skip
            console.print(f"withdrew {len(active)} consent(s)")

        step(5, f"{LENDER} pulls again")
        try:
            lender.get_record(agreement_id, record_key)
            console.print("[red]released after withdrawal: this must never happen[/red]")
            raise SystemExit(1)
        except NotFound:
            console.print("[green]withheld[/green]: no consent, nothing released")

    step(6, f"{REGULATOR} reads the audit log")
    with _client(hub_url, partners[REGULATOR], ("audit:read",)) as regulator:
        events = regulator.audit_events(partner_id=partners[LENDER]["partner_id"], limit=1000)
    ours = [e for e in events if e.get("record_key") == record_key]
    table = Table("index", "time", "kind", "outcome", "reasons")
    for event in ours:
        reasons = sorted({r for d in event.get("decisions", []) for r in d.get("reasons", [])})
        table.add_row(
            str(event["index"]), event["time"], event["kind"], event["outcome"], ", ".join(reasons)
        )
    console.print(table)
    runtime.engine.dispose()
