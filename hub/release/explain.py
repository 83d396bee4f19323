"""Explain a release decision without releasing anything (regulators and the operator)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.fetches import FETCHES_EXCEEDED, fetches_today
from consent.service import consent_states
from hub.audit import append_event
from hub.auth.tokens import AuthenticatedPartner
from hub.crypto import FieldProtector
from hub.errors import NotFoundError
from hub.records.erasure import find_subject
from hub.records.models import Record
from hub.registry.models import Agreement, Dataset, Partner
from hub.registry.service import AgreementTerms, DatasetTerms
from hub.release.pipeline import policy_input


class Explainer(Protocol):
    @property
    def revision(self) -> str: ...

    def explain(self, policy_input: Mapping[str, Any]) -> Mapping[str, Any]: ...


def explain_release(
    session: Session,
    *,
    explainer: Explainer,
    protector: FieldProtector,
    agreement_id: str,
    identifiers: Mapping[str, str],
    asked_by: str,
    request_id: str,
    now: datetime,
    record_key: str | None = None,
) -> dict[str, Any]:
    """The decision the pipeline would take for this subject under this agreement, with the
    reason for every field's obligation, the consent's fetch cap and data range, and (given a
    ``record_key`` of the subject's) whether that record's data time lies in the range. Logged
    in the audit log; nothing is decrypted."""
    agreement = session.get(Agreement, agreement_id)
    if agreement is None:
        raise NotFoundError("No agreement with this id.")
    recipient = session.get(Partner, agreement.recipient_id)
    dataset = session.get(Dataset, agreement.dataset_id)
    if recipient is None or dataset is None:  # guarded by foreign keys
        raise NotFoundError("No agreement with this id.")
    subject = find_subject(session, protector, identifiers)
    state = consent_states(
        session,
        subject_ids=[subject.id],
        recipient_id=recipient.id,
        purpose=agreement.purpose,
        now=now,
        recipient_role=recipient.role,  # a consent naming the role counts, as at release
    )[subject.id]
    caller = AuthenticatedPartner(
        partner_id=recipient.id,
        client_id=recipient.client_id,
        role=recipient.role,
        jurisdiction=recipient.jurisdiction,
        name=recipient.name,
        scopes=frozenset(),
        token_id="explain",
    )
    document = policy_input(
        caller=caller,
        agreement=AgreementTerms.of(agreement),
        dataset=DatasetTerms.of(dataset),
        consent=state,
        subject_jurisdiction=subject.jurisdiction,
        now=now,
    )
    explanation = dict(explainer.explain(document))
    fetch_cap = None
    if state.consent_id is not None and state.fetches_per_day is not None:
        used = fetches_today(session, [state.consent_id], now=now).get(state.consent_id, 0)
        fetch_cap = {
            "fetches_per_day": state.fetches_per_day,
            "fetches_today": used,
            # The pipeline's own count (consent.fetches), outside the policy input: when it
            # is reached, what the policy allows is withheld with this reason.
            "withheld_reason": FETCHES_EXCEEDED if used >= state.fetches_per_day else None,
        }
    data_range = state.data_range
    record = None
    if record_key is not None:
        found = session.execute(
            select(Record.occurred_at).where(
                Record.dataset_id == dataset.id,
                Record.record_key == record_key,
                Record.subject_id == subject.id,
            )
        ).first()
        if found is None:
            raise NotFoundError("No record of this subject with this key.")
        occurred_at = found.occurred_at
        reason = data_range.withheld_reason(occurred_at) if data_range is not None else None
        record = {
            "record_key": record_key,
            "occurred_at": occurred_at.isoformat() if occurred_at is not None else None,
            # ``None``: the consent has no data range, so the record's data time does not matter.
            "in_data_range": None if data_range is None else reason is None,
            "withheld_reason": reason,
        }
    pseudonym = protector.pseudonym("audit", subject.id)
    append_event(
        session,
        {
            "kind": "decision.explained",
            "partner_id": asked_by,
            "agreement_id": agreement.id,
            "dataset_id": agreement.dataset_id,
            "purpose": agreement.purpose,
            "request_id": request_id,
            "outcome": "explained",
            "policy_revision": explainer.revision,
            "subjects": [pseudonym],
        },
    )
    return {
        "agreement_id": agreement.id,
        "recipient_id": recipient.id,
        "purpose": agreement.purpose,
        "subject": pseudonym,
        "consent_id": state.consent_id,
        "fetch_cap": fetch_cap,
        # The pipeline's own check per record (consent.ranges), outside the policy input.
        "data_range": data_range.view() if data_range is not None else None,
        "record": record,
        "policy_revision": explainer.revision,
        "input": document,
        "explanation": explanation,
    }
