"""Agreements: negotiated by the parties (propose, accept, reject, suspend, resume, terminate),
read by both parties and by regulators; recipients pull records under them through the release
pipeline."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from hub.api.denials import AuditDeniedAgreement
from hub.api.deps import Auditor, CallerDep, Puller, RequestIdDep, RuntimeDep, SessionDep
from hub.api.responses import json_response
from hub.api.single_hop import SingleHopRoute
from hub.registry import service as registry
from hub.registry.models import Role
from hub.registry.schemas import (
    AgreementCreate,
    AgreementEventPublic,
    AgreementHistory,
    AgreementList,
    AgreementNoticeList,
    AgreementNoticePublic,
    AgreementPublic,
    AttestationBody,
    OptionalReasonBody,
    ReasonBody,
)
from hub.release.pipeline import PullRequest, pull_page
from hub.release.schemas import ReleasedRecord, ReleasePage
from hub.store.base import utcnow

# hardening (issue 12): a not-found agreement id (another's or missing) is audited
router = APIRouter(
    prefix="/v1/agreements", tags=["agreements"], dependencies=[AuditDeniedAgreement]
)

AgreementId = Annotated[str, Path(max_length=64, description="An agreement id (`agr_...`).")]
RecordKey = Annotated[str, Path(max_length=128)]


async def get_actor(caller: CallerDep) -> registry.Actor:
    """The caller as an agreement actor: a party, the operator (scope ``admin``) or a
    regulator (reads every agreement). ``async``: it never blocks (no thread hop)."""
    return registry.Actor(
        partner_id=caller.partner_id,
        operator="admin" in caller.scopes,
        regulator=caller.role == Role.REGULATOR,
    )


ActorDep = Annotated[registry.Actor, Depends(get_actor)]
StatusFilter = Annotated[str | None, Query(max_length=20, description="Only this status.")]


@router.get(
    "",
    response_model=AgreementList,
    summary="My agreements (as provider or recipient); all of them for regulators",
)
def list_agreements(actor: ActorDep, session: SessionDep, status: StatusFilter = None) -> Response:
    rows = registry.list_agreements(session, actor=actor, status=status)
    return json_response(AgreementList(items=[AgreementPublic.model_validate(a) for a in rows]))


# --- registry (issue 9): negotiation and lifecycle ---


@router.post(
    "",
    status_code=201,
    response_model=AgreementPublic,
    summary="Propose an agreement: an offer (provider) or a request (recipient)",
    description=(
        "The policies check the proposal now: the purpose must be allowed for the recipient's "
        "role and every field's category within the purpose's categories. A proposal that asks "
        "for more is refused (422 `proposal-refused`) with the rules' `reasons`."
    ),
)
def propose(
    body: AgreementCreate, actor: ActorDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    agreement = registry.propose_agreement(
        session,
        actor=actor,
        proposal=registry.Proposal(
            dataset_id=body.dataset_id,
            recipient_id=body.recipient_id,
            purpose=body.purpose,
            fields=tuple(body.fields),
            retention_days=body.retention_days,
            valid_from=body.valid_from,
            valid_until=body.valid_until,
            cross_border=body.cross_border,
            legal_basis=body.legal_basis,
        ),
        policy=runtime.policy,
        reason=body.reason,
    )
    return json_response(AgreementPublic.model_validate(agreement), status_code=201)


@router.get(
    "/notices",
    response_model=AgreementNoticeList,
    summary="Notices about my agreements (terminations, expiries)",
)
def list_notices(
    caller: CallerDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    rows = registry.notices_of_partner(session, partner_id=caller.partner_id, limit=limit)
    return json_response(AgreementNoticeList(items=[AgreementNoticePublic.of(n) for n in rows]))


@router.get(
    "/attestations-due",
    response_model=AgreementList,
    summary="Ended agreements whose recipient owes a deletion attestation (regulators)",
)
def attestations_due(caller: Auditor, session: SessionDep) -> Response:
    rows = registry.deletion_attestations_due(session)
    return json_response(AgreementList(items=[AgreementPublic.model_validate(a) for a in rows]))


@router.get("/{agreement_id}", response_model=AgreementPublic, summary="One agreement")
def get_agreement(agreement_id: AgreementId, actor: ActorDep, session: SessionDep) -> Response:
    agreement = registry.get_agreement(session, actor=actor, agreement_id=agreement_id)
    return json_response(AgreementPublic.model_validate(agreement))


@router.get(
    "/{agreement_id}/history",
    response_model=AgreementHistory,
    summary="Every transition: actor, party, reason, time (append-only)",
)
def history(agreement_id: AgreementId, actor: ActorDep, session: SessionDep) -> Response:
    rows = registry.agreement_history(session, actor=actor, agreement_id=agreement_id)
    return json_response(
        AgreementHistory(
            agreement_id=agreement_id, items=[AgreementEventPublic.of(e) for e in rows]
        )
    )


@router.post(
    "/{agreement_id}/acceptance",
    response_model=AgreementPublic,
    summary="Accept a proposal (the counterparty); active from its start date",
)
def accept(
    agreement_id: AgreementId,
    body: OptionalReasonBody,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> AgreementPublic:
    agreement = registry.accept_agreement(
        session, actor=actor, agreement_id=agreement_id, policy=runtime.policy, reason=body.reason
    )
    return AgreementPublic.model_validate(agreement)


@router.post(
    "/{agreement_id}/rejection",
    response_model=AgreementPublic,
    summary="Reject a proposal (the counterparty)",
)
def reject(
    agreement_id: AgreementId, body: ReasonBody, actor: ActorDep, session: SessionDep
) -> AgreementPublic:
    agreement = registry.reject_agreement(
        session, actor=actor, agreement_id=agreement_id, reason=body.reason
    )
    return AgreementPublic.model_validate(agreement)


@router.post(
    "/{agreement_id}/suspension",
    response_model=AgreementPublic,
    summary="Suspend (either party or the operator), effective for the next page",
)
def suspend(
    agreement_id: AgreementId, body: ReasonBody, actor: ActorDep, session: SessionDep
) -> AgreementPublic:
    agreement = registry.suspend_agreement(
        session, actor=actor, agreement_id=agreement_id, reason=body.reason
    )
    return AgreementPublic.model_validate(agreement)


@router.post(
    "/{agreement_id}/resumption",
    response_model=AgreementPublic,
    summary="Lift a suspension (the side that suspended, or the operator)",
)
def resume(
    agreement_id: AgreementId, body: ReasonBody, actor: ActorDep, session: SessionDep
) -> AgreementPublic:
    agreement = registry.resume_agreement(
        session, actor=actor, agreement_id=agreement_id, reason=body.reason
    )
    return AgreementPublic.model_validate(agreement)


@router.post(
    "/{agreement_id}/termination",
    response_model=AgreementPublic,
    summary="Terminate (either party or the operator), effective at once",
    description=(
        "The recipient gets a notice (`GET /v1/agreements/notices`) and must attest the "
        "deletion of what it pulled when the retention period has run out "
        "(`deletion_due_at`)."
    ),
)
def terminate(
    agreement_id: AgreementId, body: ReasonBody, actor: ActorDep, session: SessionDep
) -> AgreementPublic:
    agreement = registry.terminate_agreement(
        session, actor=actor, agreement_id=agreement_id, reason=body.reason
    )
    return AgreementPublic.model_validate(agreement)


@router.post(
    "/{agreement_id}/deletion-attestation",
    response_model=AgreementPublic,
    summary="Attest deletion of what was pulled under an ended agreement (the recipient)",
)
def attest_deletion(
    agreement_id: AgreementId, body: AttestationBody, actor: ActorDep, session: SessionDep
) -> AgreementPublic:
    agreement = registry.attest_deletion(
        session, actor=actor, agreement_id=agreement_id, statement=body.statement
    )
    return AgreementPublic.model_validate(agreement)


# The record pulls: the busiest calls. Same prefix, tags and dependencies as ``router``; each
# request is served in one thread-pool call (``hub.api.single_hop``). Mounted right after
# ``router`` (``hub.app``), so the routes and the OpenAPI document keep their order.
pull_router = APIRouter(
    prefix="/v1/agreements",
    tags=["agreements"],
    dependencies=[AuditDeniedAgreement],
    route_class=SingleHopRoute,
)


@pull_router.get(
    "/{agreement_id}/records",
    response_model=ReleasePage,
    summary="Pull a page of records under an agreement",
    description=(
        "Each record passes consent, policy, field protection and audit. Records the gates "
        "withhold are counted in `withheld`, never shown. Pass `next_cursor` back as `cursor`."
    ),
)
def pull_records(
    agreement_id: AgreementId,
    caller: Puller,
    session: SessionDep,
    runtime: RuntimeDep,
    request_id: RequestIdDep,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
) -> Response:
    settings = runtime.settings
    page = pull_page(
        session,
        runtime.gates,
        PullRequest(
            caller=caller,
            agreement_id=agreement_id,
            request_id=request_id,
            now=utcnow(),
            cursor=cursor,
            limit=min(limit or settings.page_limit_default, settings.page_limit_max),
        ),
    )
    return Response(page.to_json(), media_type="application/json")


@pull_router.get(
    "/{agreement_id}/records/{record_key}",
    response_model=ReleasedRecord,
    summary="Pull one record under an agreement",
    responses={404: {"description": "No such record, or the gates withheld it"}},
)
def pull_record(
    agreement_id: AgreementId,
    record_key: RecordKey,
    caller: Puller,
    session: SessionDep,
    runtime: RuntimeDep,
    request_id: RequestIdDep,
) -> Response:
    page = pull_page(
        session,
        runtime.gates,
        PullRequest(
            caller=caller,
            agreement_id=agreement_id,
            request_id=request_id,
            now=utcnow(),
            record_key=record_key,
            limit=1,
        ),
    )
    return json_response(page.items[0])
