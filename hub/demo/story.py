"""``tollhouse demo``: the foundation's story, told against a running hub.

Everyone acts over HTTP. Partners use the connector SDK, exactly as their own systems would; the
lender asks for consent and the consumer answers through the consumer API (``/v1/me``, what the
portal and a consumer app call), with a consumer token this machine issues in place of a portal
sign-in; the regulator reads the audit log.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from connectors import HubClient, NotFound, PublishRecord, Subject
from hub.demo.population import Consumer, generate_population
from hub.records.models import SubjectIdentifier
from hub.runtime import Runtime
from hub.settings import Settings, get_settings
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


def _choose_consumer(settings: Settings) -> Consumer:
    population = generate_population(seed=settings.demo_seed, consumers=settings.demo_consumers)
    for consumer in population.consumers:
        if consumer.id_type == "prc_id" and consumer.jurisdiction == "CN":
            return consumer
    raise RuntimeError("the demo population has no consumer with a PRC identity number")


def run_story(*, hub_url: str, console: Console, settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    credentials = json.loads((settings.data_dir / "demo-credentials.json").read_text())
    partners = credentials["partners"]
    runtime = Runtime.build(settings)
    consumer = _choose_consumer(settings)
    agreement_id = next(a["id"] for a in partners[LENDER]["agreements"] if a["dataset"] == DATASET)

    def step(n: int, text: str) -> None:
        console.rule(f"[bold]{n}. {text}")

    step(1, f"{LENDER} asks {consumer.full_name} for consent; they grant it")
    with unit_of_work(runtime.session_factory) as session:
        digest = runtime.protector.blind_index("mobile", consumer.mobile)
        subject_id = session.scalars(
            select(SubjectIdentifier.subject_id).where(
                SubjectIdentifier.kind == "mobile", SubjectIdentifier.digest == digest
            )
        ).one()
    me = httpx.Client(
        base_url=hub_url,
        headers={"Authorization": f"Bearer {runtime.consumer_tokens.issue(subject_id)}"},
        timeout=30,
    )
    with _client(hub_url, partners[LENDER], ("records:pull",)) as lender:
        asked = lender.request_consent(
            Subject(mobile=consumer.mobile),
            purpose=PURPOSE,
            categories=CATEGORIES,
            duration_days=60,
            reason="To assess your car loan application.",
            sensitive=True,
        )
    granted = me.post(f"/v1/me/consent-requests/{asked['id']}/grant", json={"sensitive": True})
    granted.raise_for_status()
    consent = granted.json()
    console.print(f"consent {consent['id']} granted until {consent['expires_at'][:10]}")

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
        listed = me.get("/v1/me/consents", params={"status": "active"})
        listed.raise_for_status()
        recipient = partners[LENDER]["partner_id"]
        active = [
            c["id"]
            for c in listed.json()["items"]
            if c["recipient_id"] == recipient and c["purpose"] == PURPOSE
        ]
        for consent_id in active:
            me.post(
                f"/v1/me/consents/{consent_id}/withdraw",
                json={"reason": "I no longer want this lender to see my data"},
            ).raise_for_status()
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
    me.close()
    runtime.engine.dispose()
