"""Explain a release decision without releasing anything (regulators and the operator)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from consent.fetches import FETCHES_EXCEEDED, fetches_today
from consent.service import consent_states
from hub.audit import append_event
from hub.auth.tokens import AuthenticatedPartner
from hub.crypto import FieldProtector
from hub.errors import NotFoundError
from hub.records.erasure import find_subject
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
) -> dict[str, Any]:
    """The decision the pipeline would take for this subject under this agreement, with the
    reason for every field's obligation. Logged in the audit log; nothing is decrypted."""
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
        "policy_revision": explainer.revision,
        "input": document,
        "explanation": explanation,
    }
