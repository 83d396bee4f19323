"""Agreements negotiated by two partners, checked by the policies, enforced on every page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from hub.registry import service as registry
from hub.registry.models import Agreement, AgreementEvent, AppendOnlyError
from hub.store.base import utcnow
from tests.registry.support import admin, proposal
from tests.support.hub import HubEnv

DEALER = "dealer-huadong"
LENDER = "lender-pearl"
INSURER = "insurer-anxin"
APPLICATIONS = "dealer-huadong.loan-applications"
SALES = "dealer-huadong.sales-deals"


def post(hub: HubEnv, who: str, path: str, body: dict[str, Any] | None = None) -> Any:
    return hub.client.post(path, json=body if body is not None else {}, headers=hub.auth(who))


def propose(hub: HubEnv, who: str, body: dict[str, Any]) -> dict[str, Any]:
    response = post(hub, who, "/v1/agreements", body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def history(hub: HubEnv, who: str, agreement_id: str) -> list[dict[str, Any]]:
    response = hub.client.get(f"/v1/agreements/{agreement_id}/history", headers=hub.auth(who))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_negotiated_agreement_is_then_used_for_a_pull(hub: HubEnv) -> None:
    # The lender asks the dealer for sales deals (a request), the dealer accepts.
    body = proposal(SALES, "credit_assessment", ["vin", "deal_date", "price_cny"])
    agreement = propose(hub, LENDER, body)
    assert agreement["status"] == "proposed" and agreement["initiator"] == "recipient"
    assert agreement["provider_id"] == hub.partner(DEALER)["partner_id"]
    url = f"/v1/agreements/{agreement['id']}/records"

    before = hub.client.get(url, headers=hub.auth(LENDER))
    assert before.status_code == 403
    assert before.json()["type"].endswith("/agreement-inactive")

    refused = post(hub, LENDER, f"/v1/agreements/{agreement['id']}/acceptance")
    assert refused.status_code == 403, "the proposer cannot accept its own proposal"

    accepted = post(hub, DEALER, f"/v1/agreements/{agreement['id']}/acceptance", {"reason": "ok"})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "active"

    page = hub.client.get(url, params={"limit": 1000}, headers=hub.auth(LENDER))
    assert page.status_code == 200, page.text
    data = page.json()
    assert data["released"] + data["withheld"] > 0
    for item in data["items"]:
        assert set(item["fields"]) <= {"vin", "deal_date", "price_cny"}

    events = history(hub, DEALER, agreement["id"])
    assert [(e["event"], e["actor_party"]) for e in events] == [
        ("proposed", "recipient"), ("accepted", "provider"), ("activated", "provider"),
    ]  # fmt: skip
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert events[1]["reason"] == "ok" and events[1]["from_status"] == "proposed"


def test_an_offer_by_the_provider_is_accepted_by_the_recipient(hub: HubEnv) -> None:
    body = proposal(SALES, "credit_assessment", ["vin", "price_cny"],
                    recipient_id=hub.partner(LENDER)["partner_id"])  # fmt: skip
    offer = propose(hub, DEALER, body)
    assert offer["initiator"] == "provider" and offer["recipient_id"] == body["recipient_id"]
    assert post(hub, DEALER, f"/v1/agreements/{offer['id']}/acceptance").status_code == 403
    accepted = post(hub, LENDER, f"/v1/agreements/{offer['id']}/acceptance")
    assert accepted.status_code == 200 and accepted.json()["status"] == "active"


def test_a_future_agreement_is_accepted_then_active_from_its_start_date(hub: HubEnv) -> None:
    start = utcnow() + timedelta(days=3)
    body = proposal(SALES, "credit_assessment", ["vin"], valid_from=start.isoformat())
    agreement = propose(hub, LENDER, body)
    accepted = post(hub, DEALER, f"/v1/agreements/{agreement['id']}/acceptance")
    assert accepted.json()["status"] == "accepted"
    pull = hub.client.get(f"/v1/agreements/{agreement['id']}/records", headers=hub.auth(LENDER))
    assert pull.status_code == 403
    with hub.session() as session:
        report = registry.advance_agreements(session, now=start + timedelta(seconds=1))
        assert report.activated >= 1
        session.rollback()


def test_proposal_beyond_the_purpose_is_refused_with_the_rule(hub: HubEnv) -> None:
    # GAP insurance needs no income: minimisation.field_not_needed, naming the field.
    body = proposal(APPLICATIONS, "gap_insurance", ["vin", "amount_cny", "monthly_income_cny"])
    response = post(hub, INSURER, "/v1/agreements", body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"].endswith("/proposal-refused")
    assert problem["reasons"] == ["minimisation.field_not_needed"]
    assert problem["errors"] == [
        {"field": "fields[2]", "message": "monthly_income_cny: minimisation.field_not_needed"}
    ]


@pytest.mark.parametrize(
    ("who", "purpose", "fields", "reason"),
    [
        (LENDER, "ubi_pricing", ["vin"], "purpose.not_allowed_for_role"),
        (INSURER, "credit_assessment", ["vin"], "purpose.not_allowed_for_role"),
        (LENDER, "no_such_purpose", ["vin"], "purpose.unknown"),
        (INSURER, "ubi_pricing", ["vin", "applicant_name"], "minimisation.field_not_needed"),
    ],
)
def test_policy_refusals(
    hub: HubEnv, who: str, purpose: str, fields: list[str], reason: str
) -> None:
    response = post(hub, who, "/v1/agreements", proposal(APPLICATIONS, purpose, fields))
    assert response.status_code == 422, response.text
    assert reason in response.json()["reasons"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"status": "active"},
        {"provider_id": "ptn_x"},
        {"fields": []},
        {"fields": ["vin", "vin"]},
        {"fields": ["no_such_field"]},
        {"retention_days": 0},
        {"valid_from": "2026-01-01T00:00:00"},
        {"valid_until": (utcnow() - timedelta(days=1)).isoformat()},
        {"legal_basis": "because"},
        {"dataset_id": "nope.nothing"},
    ],
)
def test_bad_proposals_are_4xx(hub: HubEnv, overrides: dict[str, Any]) -> None:
    body = {**proposal(SALES, "credit_assessment", ["vin"]), **overrides}
    response = post(hub, LENDER, "/v1/agreements", body)
    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_a_request_cannot_name_someone_else_as_recipient(hub: HubEnv) -> None:
    body = proposal(SALES, "credit_assessment", ["vin"],
                    recipient_id=hub.partner("lender-jinqiao")["partner_id"])  # fmt: skip
    assert post(hub, LENDER, "/v1/agreements", body).status_code == 403


def test_termination_stops_the_next_page_and_notifies_the_recipient(hub: HubEnv) -> None:
    agreement_id = hub.agreement("lender-jinqiao", APPLICATIONS)
    url = f"/v1/agreements/{agreement_id}/records"
    first = hub.client.get(url, params={"limit": 2}, headers=hub.auth("lender-jinqiao"))
    assert first.status_code == 200 and first.json()["next_cursor"]

    done = post(hub, DEALER, f"/v1/agreements/{agreement_id}/termination", {"reason": "breach"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "terminated" and done.json()["deletion_due_at"]

    nxt = hub.client.get(
        url, params={"limit": 2, "cursor": first.json()["next_cursor"]},
        headers=hub.auth("lender-jinqiao"),
    )  # fmt: skip
    assert nxt.status_code == 403
    assert nxt.json()["type"].endswith("/agreement-inactive")

    notices = hub.client.get("/v1/agreements/notices", headers=hub.auth("lender-jinqiao"))
    mine = [n for n in notices.json()["items"] if n["agreement_id"] == agreement_id]
    assert [n["event_type"] for n in mine] == ["agreement.terminated"]
    assert mine[0]["payload"]["data"]["reason"] == "breach"
    assert mine[0]["payload"]["data"]["deletion_attestation_due_at"]

    last = history(hub, "lender-jinqiao", agreement_id)[-1]
    assert (last["event"], last["actor_party"], last["reason"]) == (
        "terminated",
        "provider",
        "breach",
    )
    again = post(hub, DEALER, f"/v1/agreements/{agreement_id}/termination", {"reason": "x"})
    assert again.status_code == 409

    attest = post(hub, "lender-jinqiao", f"/v1/agreements/{agreement_id}/deletion-attestation",
                  {"statement": "all copies deleted"})  # fmt: skip
    assert attest.status_code == 200 and attest.json()["deletion_attested_at"]


def test_suspension_and_resumption_by_the_side_that_suspended(hub: HubEnv) -> None:
    agreement_id = hub.agreement("insurer-anxin", "oem-zhiyuan.telematics")
    url = f"/v1/agreements/{agreement_id}/records"
    suspended = post(hub, INSURER, f"/v1/agreements/{agreement_id}/suspension", {"reason": "pause"})
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    assert hub.client.get(url, headers=hub.auth(INSURER)).status_code == 403

    refused = post(hub, "oem-zhiyuan", f"/v1/agreements/{agreement_id}/resumption", {"reason": "x"})
    assert refused.status_code == 403, "only the side that suspended (or the operator) resumes"
    resumed = post(hub, INSURER, f"/v1/agreements/{agreement_id}/resumption", {"reason": "go"})
    assert resumed.status_code == 200 and resumed.json()["status"] == "active"
    assert hub.client.get(url, params={"limit": 1}, headers=hub.auth(INSURER)).status_code == 200


def test_the_operator_suspends_and_terminates_any_agreement(hub: HubEnv) -> None:
    agreement_id = hub.agreement("oem-zhiyuan", "dealer-huadong.sales-deals")
    response = admin(hub, "POST", f"/v1/agreements/{agreement_id}/suspension", json={"reason": "r"})
    assert response.status_code == 200
    response = admin(
        hub, "POST", f"/v1/agreements/{agreement_id}/termination", json={"reason": "r"}
    )
    assert response.status_code == 200
    last = history(hub, "operator", agreement_id)[-1]
    assert last["actor_party"] == "operator" and last["actor"].startswith("operator:")


def test_outsiders_see_nothing_regulators_see_everything(hub: HubEnv) -> None:
    agreement_id = hub.agreement("lender-pearl", "oem-zhiyuan.vehicle-master")
    outsider = hub.client.get(f"/v1/agreements/{agreement_id}", headers=hub.auth("dealer-nanfang"))
    assert outsider.status_code == 404
    assert post(hub, "dealer-nanfang", f"/v1/agreements/{agreement_id}/termination",
                {"reason": "x"}).status_code == 404  # fmt: skip
    regulator = hub.client.get("/v1/agreements", headers=hub.auth("regulator-fsr"))
    assert regulator.status_code == 200
    assert agreement_id in {a["id"] for a in regulator.json()["items"]}
    assert len(regulator.json()["items"]) >= 11
    assert history(hub, "regulator-fsr", agreement_id)[0]["event"] == "proposed"
    mine = hub.client.get("/v1/agreements", headers=hub.auth("dealer-nanfang")).json()["items"]
    assert agreement_id not in {a["id"] for a in mine}
    cannot = post(
        hub, "regulator-fsr", f"/v1/agreements/{agreement_id}/suspension", {"reason": "x"}
    )
    assert cannot.status_code == 403


def test_rejection_ends_a_proposal(hub: HubEnv) -> None:
    agreement = propose(hub, LENDER, proposal(SALES, "credit_assessment", ["vin"]))
    rejected = post(hub, DEALER, f"/v1/agreements/{agreement['id']}/rejection", {"reason": "no"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    late = post(hub, DEALER, f"/v1/agreements/{agreement['id']}/acceptance")
    assert late.status_code == 409


def test_agreement_history_is_append_only(hub: HubEnv) -> None:
    with hub.session() as session:
        row = session.scalars(select(AgreementEvent).limit(1)).one()
        session.delete(row)
        with pytest.raises(AppendOnlyError):
            session.flush()
        session.rollback()


def test_expiry_sweep(hub: HubEnv) -> None:
    agreement = propose(hub, LENDER, proposal(SALES, "credit_assessment", ["vin"]))
    post(hub, DEALER, f"/v1/agreements/{agreement['id']}/acceptance")
    later = utcnow() + timedelta(days=61)
    with hub.session() as session:
        report = registry.advance_agreements(session, now=later)
        assert report.expired >= 1
        expired = registry.get_agreement(
            session, actor=registry.Actor(partner_id="", regulator=True),
            agreement_id=agreement["id"],
        )  # fmt: skip
        assert expired.status == "expired" and expired.deletion_due_at is not None
        session.rollback()


def test_the_demo_was_negotiated_through_the_same_services(hub: HubEnv) -> None:
    with hub.session() as session:
        rows = session.execute(
            select(AgreementEvent.agreement_id, AgreementEvent.event).order_by(
                AgreementEvent.agreement_id, AgreementEvent.seq
            )
        ).all()
    demo = {a["id"] for p in hub.credentials["partners"].values() for a in p["agreements"]}
    events: dict[str, list[str]] = {}
    for agreement_id, event in rows:
        events.setdefault(agreement_id, []).append(event)
    for agreement_id in demo:
        assert events[agreement_id][:3] == ["proposed", "accepted", "activated"]


def test_regulators_list_overdue_deletion_attestations(hub: HubEnv) -> None:
    agreement = propose(
        hub, LENDER, proposal(SALES, "credit_assessment", ["vin"], retention_days=1)
    )
    post(hub, DEALER, f"/v1/agreements/{agreement['id']}/acceptance")
    post(hub, LENDER, f"/v1/agreements/{agreement['id']}/termination", {"reason": "done"})
    with hub.session() as session:
        due = registry.deletion_attestations_due(session, now=utcnow() + timedelta(days=2))
        assert agreement["id"] in {a.id for a in due}
    listed = hub.client.get("/v1/agreements/attestations-due", headers=hub.auth("regulator-fsr"))
    assert listed.status_code == 200
    forbidden = hub.client.get("/v1/agreements/attestations-due", headers=hub.auth(LENDER))
    assert forbidden.status_code == 403


def test_an_accepted_agreement_is_activated_on_its_start_date_at_the_first_pull(
    hub: HubEnv,
) -> None:
    start = utcnow() + timedelta(days=3)
    agreement = propose(
        hub, LENDER, proposal(SALES, "credit_assessment", ["vin"], valid_from=start.isoformat())
    )
    post(hub, DEALER, f"/v1/agreements/{agreement['id']}/acceptance")
    with hub.session() as session:  # time passes: the start date comes
        row = session.get(Agreement, agreement["id"])
        assert row is not None and row.status == "accepted"
        row.valid_from = utcnow() - timedelta(seconds=1)
        session.commit()
    url = f"/v1/agreements/{agreement['id']}/records"
    page = hub.client.get(url, params={"limit": 5}, headers=hub.auth(LENDER))
    assert page.status_code == 200, page.text
    events = history(hub, LENDER, agreement["id"])
    assert [(e["event"], e["actor"]) for e in events][-1] == ("activated", "system")
    assert hub.client.get(url, params={"limit": 5}, headers=hub.auth(LENDER)).status_code == 200
    assert len(history(hub, LENDER, agreement["id"])) == len(events)


def test_release_terms_read_what_the_orm_reads_in_one_statement(hub: HubEnv) -> None:
    """The release path's read of an agreement, its dataset and its recipient's keys."""
    from sqlalchemy import event

    from hub.registry.errors import AgreementNotFoundError
    from hub.registry.models import Dataset, Partner

    agreement = propose(hub, LENDER, proposal(SALES, "credit_assessment", ["vin", "price_cny"]))
    post(hub, DEALER, f"/v1/agreements/{agreement['id']}/acceptance")
    lender = str(hub.partner(LENDER)["partner_id"])
    with hub.session() as session:
        statements: list[str] = []
        connection = session.connection()
        event.listen(connection, "before_cursor_execute", lambda *a: statements.append(a[2]))
        terms = registry.release_terms(session, agreement_id=agreement["id"], partner_id=lender)
        assert len(statements) == 1
        row = session.get(Agreement, agreement["id"])
        dataset = session.get(Dataset, SALES)
        partner = session.get(Partner, lender)
        assert row is not None and dataset is not None and partner is not None
        assert terms.agreement == registry.AgreementTerms.of(row)
        assert terms.dataset == registry.DatasetTerms.of(dataset)
        assert terms.dataset.field_categories == dataset.field_categories
        assert terms.recipient_jwks == partner.jwks

        for who, agreement_id in ((DEALER, agreement["id"]), (LENDER, "agr_unknown")):
            partner_id = str(hub.partner(who)["partner_id"])
            with pytest.raises(AgreementNotFoundError):
                registry.release_terms(session, agreement_id=agreement_id, partner_id=partner_id)

        row.status = "suspended"  # not flushed yet: still what this session reads
        terms = registry.release_terms(session, agreement_id=agreement["id"], partner_id=lender)
        assert terms.agreement.status == "suspended"
        session.rollback()
