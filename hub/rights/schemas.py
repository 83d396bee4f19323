"""The partner API's shapes for rights requests."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from hub.rights.models import RightsRequest
from hub.rights.service import Proposal


class RightsEventPublic(BaseModel):
    status: str
    actor: str
    reason: str
    at: datetime


class RightsRequestPublic(BaseModel):
    id: str
    kind: str
    status: str
    dataset_id: str | None
    record_key: str | None
    field: str | None
    proposed_value: str | None = Field(description="null once the consumer's data was erased")
    consumer_note: str | None
    created_at: datetime
    updated_at: datetime
    history: list[RightsEventPublic]

    @classmethod
    def of(cls, request: RightsRequest, proposal: Proposal) -> RightsRequestPublic:
        return cls(
            id=request.id,
            kind=request.kind,
            status=request.status,
            dataset_id=request.dataset_id,
            record_key=request.record_key,
            field=request.field,
            proposed_value=proposal.value,
            consumer_note=proposal.note,
            created_at=request.created_at,
            updated_at=request.updated_at,
            history=[
                RightsEventPublic(status=e.to_status, actor=e.actor, reason=e.reason, at=e.at)
                for e in request.events
            ],
        )


class RightsRequestList(BaseModel):
    items: list[RightsRequestPublic]


class RightsDecision(BaseModel):
    """Why: shown to the consumer as written (required to reject)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500)
