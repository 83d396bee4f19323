"""The demo ecosystem: partners, datasets, agreements, records and consents, seeded through the
registry, publish and consent services (never by writing tables directly).

Everything derives from the synthetic population (``hub.demo.population``) and a seed, so two
seeded hubs hold the same people, cars, contracts and consent decisions. Consent and agreement
dates are relative to the moment of seeding, because the hub decides on the real clock.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.receipts import ReceiptSigner
from consent.service import ConsentService, ConsentTerms
from consent.taxonomy import Taxonomy
from hub.crypto import FieldProtector
from hub.demo.population import Consumer, Population, generate_population
from hub.policy import EmbeddedPolicyEngine, PolicyEngine
from hub.records.models import SubjectIdentifier
from hub.records.schemas import PublishedRecord, SubjectRef
from hub.records.service import publish_records
from hub.registry import service as registry
from hub.registry.models import Partner, Role
from hub.registry.taxonomy import load_taxonomy
from hub.store.base import utcnow

DEMO_MARKER_CLIENT = "regulator-fsr"
OPERATOR_CLIENT = "operator"
SEED_ACTOR = "demo-seed"


def _f(type_: str, category: str, required: bool = True) -> dict[str, Any]:
    return {"type": type_, "category": category, "required": required}


def _when(type_: str, category: str) -> dict[str, Any]:
    """A required field that carries the record's data time (``x-data-time``)."""
    return {**_f(type_, category), "data_time": True}


#: Dataset schemas by kind: each field's type, data category and whether it is required; the
#: field marked ``data_time`` dates the record for consents with a data range.
DATASET_SCHEMAS: dict[str, dict[str, dict[str, Any]]] = {
    "vehicle-master": {
        "vin": _f("string", "vehicle_identifier"),
        "plate": _f("string", "vehicle_identifier"),
        "make": _f("string", "vehicle"),
        "model": _f("string", "vehicle"),
        "powertrain": _f("string", "vehicle"),
        "model_year": _f("integer", "vehicle"),
        "build_date": _f("date", "vehicle"),
        "msrp_cny": _f("integer", "vehicle"),
    },
    "telematics": {
        "vin": _f("string", "vehicle_identifier"),
        "period": _f("string", "vehicle"),
        "odometer_km": _f("integer", "vehicle"),
        "trips": _f("integer", "driving_behaviour"),
        "distance_km": _f("integer", "driving_behaviour"),
        "night_driving_share": _f("number", "driving_behaviour"),
        "harsh_braking_score": _f("integer", "driving_behaviour"),
        "last_lat": _f("number", "location_precise"),
        "last_lon": _f("number", "location_precise"),
    },
    "sales-deals": {
        "buyer_name": _f("string", "identity"),
        "buyer_mobile": _f("string", "contact"),
        "buyer_id_number": _f("string", "identity_document"),
        "vin": _f("string", "vehicle_identifier"),
        "deal_date": _when("date", "sales"),
        "price_cny": _f("integer", "sales"),
        "trade_in_value_cny": _f("integer", "sales", required=False),
        "notes": _f("string", "free_text", required=False),
    },
    "loan-applications": {
        "applicant_name": _f("string", "identity"),
        "birth_date": _f("date", "identity"),
        "id_number": _f("string", "identity_document"),
        "mobile": _f("string", "contact"),
        "address": _f("string", "contact"),
        "monthly_income_cny": _f("integer", "income"),
        "vin": _f("string", "vehicle_identifier"),
        "amount_cny": _f("integer", "loan"),
        "term_months": _f("integer", "loan"),
        "down_payment_cny": _f("integer", "loan"),
        "applied_on": _when("date", "loan"),
        "lender": _f("string", "loan"),
    },
    "service-records": {
        "vin": _f("string", "vehicle_identifier"),
        "service_date": _when("date", "service_history"),
        "odometer_km": _f("integer", "vehicle"),
        "service_type": _f("string", "service_history"),
        "cost_cny": _f("integer", "service_history"),
        "remarks": _f("string", "free_text", required=False),
    },
    "loan-decisions": {
        "application_id": _f("string", "loan"),
        "decided_on": _when("date", "loan"),
        "outcome": _f("string", "credit"),
        "rate_band": _f("string", "credit", required=False),
        "approved_amount_cny": _f("integer", "loan", required=False),
        "reason_code": _f("string", "credit"),
    },
    "loan-accounts": {
        "vin": _f("string", "vehicle_identifier"),
        "opened_on": _f("date", "loan"),
        "principal_cny": _f("integer", "loan"),
        "term_months": _f("integer", "loan"),
        "balance_band": _f("string", "loan"),
        "delinquency": _f("string", "credit"),
        "repayment_card": _f("string", "financial_account"),
        "lien_id": _f("string", "loan"),
        "lien_status": _f("string", "loan"),
    },
    "policies": {
        "vin": _f("string", "vehicle_identifier"),
        "plate": _f("string", "vehicle_identifier"),
        "coverage": _f("string", "insurance"),
        "premium_band": _f("string", "insurance"),
        "annual_premium_cny": _f("integer", "insurance"),
        "start_date": _f("date", "insurance"),
        "end_date": _f("date", "insurance"),
        "payout_iban": _f("string", "financial_account", required=False),
    },
    "claims": {
        "policy_id": _f("string", "insurance"),
        "vin": _f("string", "vehicle_identifier"),
        "incident_date": _when("date", "claim"),
        "amount_cny": _f("integer", "claim"),
        "status": _f("string", "claim"),
        "description": _f("string", "free_text"),
    },
}

#: Which partner provides which kinds of dataset.
PROVIDED: dict[str, tuple[str, ...]] = {
    "oem-zhiyuan": ("vehicle-master", "telematics"),
    "dealer-huadong": ("sales-deals", "loan-applications", "service-records"),
    "dealer-nanfang": ("sales-deals", "loan-applications", "service-records"),
    "lender-jinqiao": ("loan-decisions", "loan-accounts"),
    "lender-pearl": ("loan-decisions", "loan-accounts"),
    "insurer-anxin": ("policies", "claims"),
}

LOAN_APPLICATION_FIELDS = (
    "applicant_name", "id_number", "mobile", "monthly_income_cny", "vin",
    "amount_cny", "term_months", "down_payment_cny", "applied_on",
)  # fmt: skip


@dataclass(frozen=True)
class AgreementPlan:
    recipient: str
    dataset: str
    purpose: str
    fields: tuple[str, ...]
    retention_days: int
    #: Consent is sought only from subjects this recipient actually deals with.
    relevant: Callable[[Population, str, str], bool] | None = None


def _applies_to_lender(population: Population, recipient: str, record_subject: str) -> bool:
    return any(
        a.lender_ref == recipient and a.subject_ref == record_subject
        for a in population.loan_applications
    )


AGREEMENTS: tuple[AgreementPlan, ...] = (
    AgreementPlan("lender-jinqiao", "dealer-huadong.loan-applications", "credit_assessment",
                  LOAN_APPLICATION_FIELDS, 180, _applies_to_lender),
    AgreementPlan("lender-pearl", "dealer-huadong.loan-applications", "credit_assessment",
                  LOAN_APPLICATION_FIELDS, 180, _applies_to_lender),
    AgreementPlan("lender-jinqiao", "dealer-nanfang.loan-applications", "credit_assessment",
                  LOAN_APPLICATION_FIELDS, 180, _applies_to_lender),
    AgreementPlan("lender-pearl", "dealer-nanfang.loan-applications", "credit_assessment",
                  LOAN_APPLICATION_FIELDS, 180, _applies_to_lender),
    AgreementPlan("insurer-anxin", "oem-zhiyuan.telematics", "ubi_pricing",
                  ("vin", "period", "odometer_km", "trips", "distance_km", "night_driving_share",
                   "harsh_braking_score", "last_lat", "last_lon"), 365),
    AgreementPlan("lender-jinqiao", "insurer-anxin.policies", "collateral_monitoring",
                  ("vin", "coverage", "premium_band", "start_date", "end_date"), 365),
    AgreementPlan("lender-pearl", "oem-zhiyuan.vehicle-master", "collateral_monitoring",
                  ("vin", "make", "model", "model_year", "msrp_cny"), 365),
    AgreementPlan("dealer-huadong", "lender-jinqiao.loan-decisions", "loan_origination",
                  ("application_id", "decided_on", "outcome", "rate_band",
                   "approved_amount_cny"), 90),
    AgreementPlan("insurer-anxin", "lender-jinqiao.loan-accounts", "gap_insurance",
                  ("vin", "principal_cny", "balance_band", "lien_status"), 365),
    AgreementPlan("insurer-anxin", "dealer-huadong.service-records", "claims_handling",
                  ("vin", "service_date", "odometer_km", "service_type", "cost_cny", "remarks"),
                  365),
    AgreementPlan("oem-zhiyuan", "dealer-huadong.sales-deals", "sales_reporting",
                  ("vin", "deal_date", "price_cny"), 365),
)  # fmt: skip


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _subject(consumer: Consumer, vin: str | None = None) -> SubjectRef:
    return SubjectRef(
        id_number=consumer.id_number if consumer.id_type == "prc_id" else None,
        mobile=consumer.mobile,
        vin=vin,
        email=consumer.email,
        jurisdiction=consumer.jurisdiction,
    )


def _records(population: Population) -> dict[str, list[tuple[str, PublishedRecord]]]:
    """Each dataset's records, as ``(subject_ref, record)``, ready to publish."""
    people = {c.subject_ref: c for c in population.consumers}
    out: dict[str, list[tuple[str, PublishedRecord]]] = {}

    def add(dataset: str, subject_ref: str, key: str, vin: str, fields: dict[str, Any]) -> None:
        record = PublishedRecord(
            record_key=key,
            version=1,
            subject=_subject(people[subject_ref], vin),
            fields={k: v for k, v in fields.items() if v is not None},
        )
        out.setdefault(dataset, []).append((subject_ref, record))

    for v in population.vehicles:
        add("oem-zhiyuan.vehicle-master", v.subject_ref, v.vin, v.vin, {
            "vin": v.vin, "plate": v.plate, "make": v.make, "model": v.model,
            "powertrain": v.powertrain, "model_year": v.model_year,
            "build_date": v.build_date.isoformat(), "msrp_cny": v.msrp_cny,
        })  # fmt: skip
    for t in population.telematics:
        add("oem-zhiyuan.telematics", t.subject_ref, t.summary_id, t.vin, {
            "vin": t.vin, "period": t.period, "odometer_km": t.odometer_km, "trips": t.trips,
            "distance_km": t.distance_km, "night_driving_share": t.night_driving_share,
            "harsh_braking_score": t.harsh_braking_score, "last_lat": t.last_lat,
            "last_lon": t.last_lon,
        })  # fmt: skip
    for d in population.sales_deals:
        c = people[d.subject_ref]
        add(f"{d.dealer_ref}.sales-deals", d.subject_ref, d.deal_id, d.vin, {
            "buyer_name": c.full_name, "buyer_mobile": c.mobile, "buyer_id_number": c.id_number,
            "vin": d.vin, "deal_date": d.deal_date.isoformat(), "price_cny": d.price_cny,
            "trade_in_value_cny": d.trade_in_value_cny, "notes": d.notes or None,
        })  # fmt: skip
    for a in population.loan_applications:
        c = people[a.subject_ref]
        add(f"{a.dealer_ref}.loan-applications", a.subject_ref, a.application_id, a.vin, {
            "applicant_name": c.full_name, "birth_date": c.birth_date.isoformat(),
            "id_number": c.id_number, "mobile": c.mobile, "address": c.address,
            "monthly_income_cny": a.monthly_income_cny, "vin": a.vin, "amount_cny": a.amount_cny,
            "term_months": a.term_months, "down_payment_cny": a.down_payment_cny,
            "applied_on": a.applied_on.isoformat(), "lender": a.lender_ref,
        })  # fmt: skip
    for sr in population.service_records:
        add(f"{sr.dealer_ref}.service-records", sr.subject_ref, sr.service_id, sr.vin, {
            "vin": sr.vin, "service_date": sr.service_date.isoformat(),
            "odometer_km": sr.odometer_km, "service_type": sr.service_type,
            "cost_cny": sr.cost_cny, "remarks": sr.remarks or None,
        })  # fmt: skip
    for dec in population.loan_decisions:
        vin = next(a.vin for a in population.loan_applications
                   if a.application_id == dec.application_id)  # fmt: skip
        add(f"{dec.lender_ref}.loan-decisions", dec.subject_ref, dec.decision_id, vin, {
            "application_id": dec.application_id, "decided_on": dec.decided_on.isoformat(),
            "outcome": dec.outcome, "rate_band": dec.rate_band,
            "approved_amount_cny": dec.approved_amount_cny, "reason_code": dec.reason_code,
        })  # fmt: skip
    for acc in population.loan_accounts:
        add(f"{acc.lender_ref}.loan-accounts", acc.subject_ref, acc.account_id, acc.vin, {
            "vin": acc.vin, "opened_on": acc.opened_on.isoformat(),
            "principal_cny": acc.principal_cny, "term_months": acc.term_months,
            "balance_band": acc.balance_band, "delinquency": acc.delinquency,
            "repayment_card": acc.repayment_card, "lien_id": acc.lien.lien_id,
            "lien_status": acc.lien.status,
        })  # fmt: skip
    for p in population.insurance_policies:
        add(f"{p.insurer_ref}.policies", p.subject_ref, p.policy_id, p.vin, {
            "vin": p.vin, "plate": p.plate, "coverage": p.coverage,
            "premium_band": p.premium_band, "annual_premium_cny": p.annual_premium_cny,
            "start_date": p.start_date.isoformat(), "end_date": p.end_date.isoformat(),
            "payout_iban": p.payout_iban,
        })  # fmt: skip
    for cl in population.claims:
        add(f"{cl.insurer_ref}.claims", cl.subject_ref, cl.claim_id, cl.vin, {
            "policy_id": cl.policy_id, "vin": cl.vin, "incident_date": cl.incident_date.isoformat(),
            "amount_cny": cl.amount_cny, "status": cl.status, "description": cl.description,
        })  # fmt: skip
    return out


@dataclass(frozen=True)
class SeedSummary:
    partners: int
    datasets: int
    agreements: int
    records: int
    consents: int
    credentials: dict[str, Any]


def is_seeded(session: Session) -> bool:
    return (
        session.scalars(select(Partner.id).where(Partner.client_id == DEMO_MARKER_CLIENT)).first()
        is not None
    )


def _caps(policies_dir: Path) -> dict[str, int]:
    doc = json.loads((policies_dir / "taxonomy" / "purposes" / "data.json").read_text())
    return {name: int(p["fair_use"]["max_duration_days"]) for name, p in doc.items()}


def seed_demo(
    session: Session,
    *,
    protector: FieldProtector,
    policies_dir: Path,
    seed: int = 7,
    consumers: int = 200,
    now: datetime | None = None,
    receipts: ReceiptSigner | None = None,
    policy: PolicyEngine | None = None,
) -> SeedSummary:
    """Seed the demo ecosystem into an empty hub. The caller commits.

    Consents go through the consent service: with ``receipts`` each grant and withdrawal gets
    its signed receipt; subjects who never answered have a pending request.
    """
    now = now or utcnow()
    rng = random.Random(seed)
    population = generate_population(seed=seed, consumers=consumers)
    taxonomy = load_taxonomy(policies_dir)
    # Agreements are negotiated like any other: the policies check each proposal.
    policy = policy or EmbeddedPolicyEngine(policies_dir)
    max_days = _caps(policies_dir)
    consents = ConsentService(taxonomy=Taxonomy.load(policies_dir), signer=receipts)

    credentials: dict[str, Any] = {"partners": {}}
    partner_ids: dict[str, str] = {}
    for p in population.partners:
        issued = registry.register_partner(
            session,
            name=p.name,
            legal_name=p.name,
            registration_id=f"91{rng.randrange(10**15, 10**16)}X",
            role=Role(p.role),
            jurisdiction=p.jurisdiction,
            client_id=p.ref,
            actor=SEED_ACTOR,
            now=now,
        )
        partner_ids[p.ref] = issued.partner_id
        credentials["partners"][p.ref] = {
            "name": p.name,
            "role": p.role,
            "partner_id": issued.partner_id,
            "client_id": issued.client_id,
            "client_secret": issued.client_secret,
            "datasets": [],
            "agreements": [],
        }
    operator = registry.register_partner(
        session,
        name="Tollhouse operator",
        legal_name="Tollhouse hub operator",
        registration_id="operator",
        role=Role.OPERATOR,
        jurisdiction="CN",
        client_id=OPERATOR_CLIENT,
        actor=SEED_ACTOR,
        now=now,
    )
    credentials["partners"][OPERATOR_CLIENT] = {
        "name": "Tollhouse operator", "role": "operator", "partner_id": operator.partner_id,
        "client_id": operator.client_id, "client_secret": operator.client_secret,
        "datasets": [], "agreements": [],
    }  # fmt: skip

    datasets = {}
    for provider_ref, kinds in PROVIDED.items():
        for kind in kinds:
            dataset_id = f"{provider_ref}.{kind}"
            datasets[dataset_id] = registry.declare_dataset(
                session,
                dataset_id=dataset_id,
                provider_id=partner_ids[provider_ref],
                title=f"{kind.replace('-', ' ').capitalize()} of {provider_ref}",
                fields=DATASET_SCHEMAS[kind],
                taxonomy=taxonomy,
                actor=SEED_ACTOR,
            )
            credentials["partners"][provider_ref]["datasets"].append(dataset_id)

    record_count = 0
    published = _records(population)
    subjects_in: dict[str, set[str]] = {}
    for dataset_id, rows in published.items():
        records = [record for _, record in rows]
        for start in range(0, len(records), 500):
            publish_records(
                session,
                dataset=datasets[dataset_id],
                records=records[start : start + 500],
                protector=protector,
            )
        record_count += len(records)
        subjects_in[dataset_id] = {ref for ref, _ in rows}

    subject_ids = _subject_ids(session, protector, population)
    consent_count = 0
    agreement_count = 0
    for plan in AGREEMENTS:
        dataset = datasets[plan.dataset]
        # The recipient asks, the provider accepts: active at once (its start date has come).
        agreement = registry.propose_agreement(
            session,
            actor=registry.Actor(partner_id=partner_ids[plan.recipient]),
            proposal=registry.Proposal(
                dataset_id=dataset.id,
                purpose=plan.purpose,
                fields=plan.fields,
                retention_days=plan.retention_days,
                valid_from=now - timedelta(days=30),
                valid_until=now + timedelta(days=365),
            ),
            policy=policy,
            reason="demo: requested by the recipient",
            now=now,
        )
        registry.accept_agreement(
            session,
            actor=registry.Actor(partner_id=dataset.provider_id),
            agreement_id=agreement.id,
            policy=policy,
            reason="demo: accepted by the provider",
            now=now,
        )
        agreement_count += 1
        credentials["partners"][plan.recipient]["agreements"].append(
            {"id": agreement.id, "dataset": plan.dataset, "purpose": plan.purpose}
        )
        wanted = sorted({dataset.field_categories[f] for f in plan.fields})
        for subject_ref in sorted(subjects_in.get(plan.dataset, set())):
            if plan.relevant and not plan.relevant(population, plan.recipient, subject_ref):
                continue
            consent_count += _seed_consent(
                session,
                rng,
                consents,
                recipient_role=credentials["partners"][plan.recipient]["role"],
                subject_id=subject_ids[subject_ref],
                recipient_id=partner_ids[plan.recipient],
                purpose=plan.purpose,
                categories=wanted,
                max_days=max_days.get(plan.purpose, 90),
                now=now,
            )
    session.flush()
    return SeedSummary(
        partners=len(partner_ids) + 1,
        datasets=len(datasets),
        agreements=agreement_count,
        records=record_count,
        consents=consent_count,
        credentials=credentials,
    )


def _subject_ids(
    session: Session, protector: FieldProtector, population: Population
) -> dict[str, str]:
    digests = {
        protector.blind_index("mobile", c.mobile): c.subject_ref for c in population.consumers
    }
    rows = session.execute(
        select(SubjectIdentifier.digest, SubjectIdentifier.subject_id).where(
            SubjectIdentifier.kind == "mobile", SubjectIdentifier.digest.in_(list(digests))
        )
    ).all()
    return {digests[digest]: subject_id for digest, subject_id in rows}


def _seed_consent(
    session: Session,
    rng: random.Random,
    consents: ConsentService,
    *,
    subject_id: str,
    recipient_id: str,
    recipient_role: str,
    purpose: str,
    categories: list[str],
    max_days: int,
    now: datetime,
) -> int:
    """Most subjects consent; some let it expire, some withdraw, some have not answered yet
    (a pending request). Without the separate sensitive consent, sensitive categories are left
    out."""
    roll = rng.random()
    asks_sensitive = any(consents.taxonomy.is_sensitive(c) for c in categories)
    if roll < 0.08:
        consents.request_consent(
            session, subject_id=subject_id, recipient_id=recipient_id,
            recipient_role=recipient_role, purpose=purpose, categories=categories,
            duration_days=max_days, sensitive=asks_sensitive,
            reason="We need this to serve your application.", now=now,
        )  # fmt: skip
        return 0
    sensitive = rng.random() < 0.85
    granted = [c for c in categories if sensitive or not consents.taxonomy.is_sensitive(c)]
    sensitive = sensitive and any(consents.taxonomy.is_sensitive(c) for c in granted)
    if roll < 0.15:
        granted_at = now - timedelta(days=max_days + rng.randrange(1, 30))
        terms = ConsentTerms(
            purpose=purpose, categories=tuple(granted), sensitive=sensitive,
            starts_at=granted_at, expires_at=granted_at + timedelta(days=max_days),
        )  # fmt: skip
        consents.grant(
            session, subject_id=subject_id, recipient_id=recipient_id, terms=terms,
            channel="demo-seed", now=granted_at,
        )  # fmt: skip
        return 1
    starts = now - timedelta(days=rng.randrange(1, 20))
    terms = ConsentTerms(
        purpose=purpose, categories=tuple(granted), sensitive=sensitive,
        starts_at=starts, expires_at=starts + timedelta(days=max_days),
    )  # fmt: skip
    consent = consents.grant(
        session, subject_id=subject_id, recipient_id=recipient_id, terms=terms,
        channel="demo-seed", now=starts,
    )  # fmt: skip
    if roll < 0.21:
        consents.withdraw(
            session, consent_id=consent.id, subject_id=subject_id,
            channel="demo-seed", reason="changed my mind", now=starts + timedelta(hours=6),
        )  # fmt: skip
    return 1


def write_credentials(path: Path, credentials: Mapping[str, Any], *, hub_url: str) -> None:
    """Write the demo partners' client ids and secrets (0600): the demo's only secret file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"hub": hub_url, **credentials}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(doc, handle, indent=2, ensure_ascii=False)
