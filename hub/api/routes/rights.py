"""Providers handle the consumers' correction requests routed to them (scope records:publish).

A correction asks the provider of a record to change one field; the provider corrects the
record by publishing a new version as usual, then resolves the request (or rejects it with a
reason). The consumer follows the status in the portal.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from hub.api.deps import Publisher, RuntimeDep, SessionDep
from hub.rights import service
from hub.rights.models import OPEN_STATUSES, RightsStatus
from hub.rights.schemas import RightsDecision, RightsRequestList, RightsRequestPublic

router = APIRouter(tags=["rights"])

RequestId = Annotated[str, Path(max_length=64)]
StatusFilter = Literal["open", "requested", "in_progress", "completed", "rejected"]


@router.get(
    "/v1/rights-requests",
    response_model=RightsRequestList,
    summary="Correction requests routed to me (open ones by default), oldest first",
)
def list_rights_requests(
    caller: Publisher,
    session: SessionDep,
    runtime: RuntimeDep,
    status: Annotated[StatusFilter, Query()] = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> RightsRequestList:
    statuses = list(OPEN_STATUSES) if status == "open" else [RightsStatus(status)]
    rows = service.requests_of_provider(
        session, provider_id=caller.partner_id, statuses=statuses, limit=limit
    )
    protector = runtime.protector
    return RightsRequestList(
        items=[
            RightsRequestPublic.of(
                r, service.open_proposal(session, protector=protector, request=r)
            )
            for r in rows
        ]
    )


@router.get(
    "/v1/rights-requests/{request_id}",
    response_model=RightsRequestPublic,
    summary="One correction request routed to me",
)
def get_rights_request(
    request_id: RequestId, caller: Publisher, session: SessionDep, runtime: RuntimeDep
) -> RightsRequestPublic:
    request = service.request_of_provider(
        session, provider_id=caller.partner_id, request_id=request_id
    )
    proposal = service.open_proposal(session, protector=runtime.protector, request=request)
    return RightsRequestPublic.of(request, proposal)


def _decide(
    request_id: str,
    to_status: RightsStatus,
    body: RightsDecision | None,
    caller: Publisher,
    session: SessionDep,
    runtime: RuntimeDep,
) -> RightsRequestPublic:
    request = service.decide(
        session,
        protector=runtime.protector,
        provider_id=caller.partner_id,
        request_id=request_id,
        to_status=to_status,
        reason=body.reason if body else "",
    )
    proposal = service.open_proposal(session, protector=runtime.protector, request=request)
    return RightsRequestPublic.of(request, proposal)


@router.post(
    "/v1/rights-requests/{request_id}/acknowledgement",
    response_model=RightsRequestPublic,
    summary="I am working on it (requested -> in_progress)",
)
def acknowledge_rights_request(
    request_id: RequestId,
    caller: Publisher,
    session: SessionDep,
    runtime: RuntimeDep,
    body: RightsDecision | None = None,
) -> RightsRequestPublic:
    return _decide(request_id, RightsStatus.IN_PROGRESS, body, caller, session, runtime)


@router.post(
    "/v1/rights-requests/{request_id}/resolution",
    response_model=RightsRequestPublic,
    summary="Corrected (-> completed); publish the corrected record first",
)
def resolve_rights_request(
    request_id: RequestId,
    caller: Publisher,
    session: SessionDep,
    runtime: RuntimeDep,
    body: RightsDecision | None = None,
) -> RightsRequestPublic:
    return _decide(request_id, RightsStatus.COMPLETED, body, caller, session, runtime)


@router.post(
    "/v1/rights-requests/{request_id}/rejection",
    response_model=RightsRequestPublic,
    summary="Not corrected (-> rejected); the reason is required and shown to the consumer",
)
def reject_rights_request(
    request_id: RequestId,
    body: RightsDecision,
    caller: Publisher,
    session: SessionDep,
    runtime: RuntimeDep,
) -> RightsRequestPublic:
    return _decide(request_id, RightsStatus.REJECTED, body, caller, session, runtime)
