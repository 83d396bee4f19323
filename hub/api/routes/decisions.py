"""Explain decisions and reload the policies (regulators and the operator)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.api.deps import Administrator, Auditor, RequestIdDep, RuntimeDep, SessionDep
from hub.api.ratelimit import guard_identity_lookup
from hub.errors import ValidationFailedError
from hub.policy import PolicyStore
from hub.records.service import is_valid_email
from hub.release.explain import explain_release
from hub.store.base import utcnow

router = APIRouter(tags=["decisions"])

#: The identifiers a subject may be named by.
SUBJECT_KINDS = ("id_number", "mobile", "vin", "email")


class ExplainRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"agreement_id": "agr_...", "subject": {"id_number": "11010519491231002X"}}
            ]
        },
    )

    agreement_id: str = Field(max_length=64)
    subject: dict[str, str] = Field(
        description=(
            "At least one of id_number, mobile, vin, email: how the subject is found (by blind "
            "index; an e-mail address is compared case-insensitively)."
        )
    )
    record_key: str | None = Field(
        default=None,
        max_length=128,
        description=(
            "A record of the subject in the agreement's dataset: `record` then shows its data "
            "time (`occurred_at`) and whether the consent's data range covers it."
        ),
    )

    @model_validator(mode="after")
    def _known_identifiers(self) -> ExplainRequest:
        unknown = set(self.subject) - set(SUBJECT_KINDS)
        if unknown or not self.subject:
            raise ValueError("subject needs id_number, mobile, vin or email, and nothing else")
        if "email" in self.subject and not is_valid_email(self.subject["email"]):
            raise ValueError("subject.email is not a valid e-mail address")
        return self


class ReloadResponse(BaseModel):
    changed: bool
    revision: str
    previous_revision: str
    tests_run: int


@router.post(
    "/v1/decisions/explain",
    summary="Explain the decision for one subject under one agreement",
    description=(
        "Shows the policy input, the decision, each field's obligation and the rule behind it, "
        "without decrypting or releasing any data; `fetch_cap` shows a capped consent's "
        "fetches today (over the cap, what the policy allows is withheld with "
        "`fair_use.fetches_exceeded`); `data_range` shows the data times a consent with a data "
        "range covers (`[data_from, data_until)`, `data_until` defaulting to the consent's "
        "expiry; `null` without a range), and, with `record_key`, `record` whether that record's "
        "`occurred_at` lies in it (outside, or unknown, the record is withheld with "
        "`consent.outside_data_range` or `consent.data_time_unknown`). Logged in the audit log."
    ),
)
def explain(
    body: ExplainRequest,
    caller: Auditor,
    session: SessionDep,
    runtime: RuntimeDep,
    request_id: RequestIdDep,
) -> dict[str, Any]:
    guard_identity_lookup(  # hardening (issue 12): placeholders and velocity, audited
        runtime, session, caller=caller, identifiers=body.subject, request_id=request_id
    )
    return explain_release(
        session,
        explainer=runtime.explainer,
        protector=runtime.protector,
        agreement_id=body.agreement_id,
        identifiers=body.subject,
        record_key=body.record_key,
        asked_by=caller.partner_id,
        request_id=request_id,
        now=utcnow(),
    )


@router.post(
    "/v1/policy/reload",
    response_model=ReloadResponse,
    summary="Reload the policies from disk (validated first)",
    description=(
        "Compiles the policies and runs their Rego unit tests; only if all pass are they "
        "swapped in. A broken policy never replaces a working one (422, old revision kept)."
    ),
)
def reload_policies(caller: Administrator, runtime: RuntimeDep) -> ReloadResponse:
    store = runtime.explainer
    if not isinstance(store, PolicyStore):
        raise ValidationFailedError("Policies on an OPA server are reloaded by pushing a bundle.")
    outcome, failure = store.try_reload()
    if outcome is None:
        raise ValidationFailedError(f"The new policies were refused: {failure}")
    return ReloadResponse(
        changed=outcome.changed,
        revision=outcome.revision,
        previous_revision=outcome.previous_revision,
        tests_run=outcome.tests_run,
    )
