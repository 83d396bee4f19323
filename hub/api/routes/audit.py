"""The access log, read-only, for regulators (scope ``audit:read``): events, signed tree heads as
C2SP checkpoints with witness cosignatures, RFC 9162 proofs and signed JSONL exports."""

from __future__ import annotations

import base64
from datetime import date, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.responses import Response, StreamingResponse

from hub.api.deps import Auditor, RequestIdDep, RuntimeDep, SessionDep
from hub.api.responses import json_response
from hub.audit import (
    add_cosignature,
    consistency_proof,
    plan_current_export,
    prove_inclusion,
    query_events,
    served_checkpoint,
    stream_export,
)
from hub.audit.statistics import (
    MAX_RANGE,
    AccessStatistics,
    DenialStatistics,
    access_statistics,
    denial_statistics,
    time_range,
)
from hub.errors import ValidationFailedError
from hub.regulator.subjects import look_up_subject
from hub.store.base import utcnow

router = APIRouter(prefix="/v1/audit", tags=["audit"])

# Indices and sizes stay well inside a PostgreSQL BIGINT.
_MAX_INDEX = 2**53
_CHECKPOINT_MEDIA_TYPE = "text/plain; charset=utf-8"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class AuditEventPage(BaseModel):
    items: list[dict[str, Any]] = Field(description="Events as canonical JSON (RFC 8785).")
    next_after_index: int | None


class CosignatureOut(BaseModel):
    witness: str
    timestamp: datetime


class TreeHeadOut(BaseModel):
    origin: str
    size: int
    root_hash: str = Field(description="base64 of the RFC 9162 root hash")
    timestamp: datetime
    verifier_key: str = Field(description="The log's signed-note verifier key")
    checkpoint: str = Field(description="The C2SP checkpoint note, with witness cosignatures")
    cosignatures: list[CosignatureOut]


class InclusionProofOut(BaseModel):
    index: int
    size: int
    leaf_hash: str
    proof: list[str] = Field(description="RFC 9162 PATH(index, D[size]), base64, leaves up")


class ConsistencyProofOut(BaseModel):
    first: int
    second: int
    proof: list[str] = Field(description="RFC 9162 PROOF(first, D[second]), base64")


class CosignatureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checkpoint: str = Field(max_length=8192, description="The checkpoint note that was cosigned")
    cosignature: str = Field(max_length=512, description="The tlog-cosignature/v1 line")
    witness_key: str = Field(max_length=400, description="<name>+<hex id>+<base64(0x04||key)>")


class CosignatureStored(BaseModel):
    witness: str
    size: int
    timestamp: datetime
    created: bool


@router.get("/events", response_model=AuditEventPage, summary="Query the access log")
def list_events(
    caller: Auditor,
    session: SessionDep,
    partner_id: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    dataset_id: Annotated[str | None, Query(max_length=128)] = None,
    purpose: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(max_length=32)] = None,
    subject: Annotated[
        str | None, Query(max_length=64, description="A subject's audit pseudonym (psn_...)")
    ] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_index: Annotated[int | None, Query(ge=-1, le=_MAX_INDEX)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise ValidationFailedError(f"'{name}' needs a timezone, e.g. 2026-11-25T00:00:00Z")
    events = query_events(
        session,
        partner_id=partner_id,
        kind=kind,
        dataset_id=dataset_id,
        purpose=purpose,
        outcome=outcome,
        subject=subject,
        since=since,
        until=until,
        after_index=after_index,
        limit=limit,
    )
    items = [orjson.loads(e.canonical) for e in events]
    next_after = events[-1].index if len(events) == limit else None
    return json_response({"items": items, "next_after_index": next_after})


@router.get(
    "/tree-head",
    response_model=TreeHeadOut,
    summary="The latest signed tree head (signed now if the log has grown)",
)
def get_tree_head(caller: Auditor, session: SessionDep, runtime: RuntimeDep) -> Response:
    served = served_checkpoint(session, runtime.audit_signer)
    head = served.head
    body = TreeHeadOut(
        origin=head.origin,
        size=head.size,
        root_hash=_b64(head.root_hash),
        timestamp=head.timestamp,
        verifier_key=runtime.audit_signer.verifier_key,
        checkpoint=served.note,
        cosignatures=[
            CosignatureOut(witness=c.witness_name, timestamp=c.timestamp)
            for c in served.cosignatures
        ],
    )
    return json_response(body)


@router.get(
    "/checkpoint",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}},
        404: {"description": "No signed tree head of this size"},
    },
    summary="The latest checkpoint (C2SP signed note) with the witnesses' cosignatures",
)
def get_checkpoint(
    caller: Auditor,
    session: SessionDep,
    runtime: RuntimeDep,
    size: Annotated[
        int | None, Query(ge=0, le=_MAX_INDEX, description="A signed size instead of the latest")
    ] = None,
) -> Response:
    served = served_checkpoint(session, runtime.audit_signer, size=size)
    return Response(served.note, media_type=_CHECKPOINT_MEDIA_TYPE)


@router.get(
    "/proofs/inclusion",
    response_model=InclusionProofOut,
    summary="RFC 9162 inclusion proof of the event at index in the tree of size",
)
def get_inclusion_proof(
    caller: Auditor,
    session: SessionDep,
    index: Annotated[int, Query(ge=0, le=_MAX_INDEX)],
    size: Annotated[int, Query(ge=1, le=_MAX_INDEX)],
) -> Response:
    proof = prove_inclusion(session, index, size)
    return json_response(
        InclusionProofOut(
            index=index,
            size=size,
            leaf_hash=_b64(proof.leaf_hash),
            proof=[_b64(p) for p in proof.path],
        )
    )


@router.get(
    "/proofs/consistency",
    response_model=ConsistencyProofOut,
    summary="RFC 9162 consistency proof between the trees of sizes first and second",
)
def get_consistency_proof(
    caller: Auditor,
    session: SessionDep,
    first: Annotated[int, Query(ge=0, le=_MAX_INDEX)],
    second: Annotated[int, Query(ge=0, le=_MAX_INDEX)],
) -> Response:
    proof = consistency_proof(session, first, second)
    return json_response(
        ConsistencyProofOut(first=first, second=second, proof=[_b64(p) for p in proof])
    )


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/jsonl": {}}}},
    summary="Stream events [start, end) as a signed JSONL bundle (tollhouse audit verify)",
)
def export(
    caller: Auditor,
    session: SessionDep,
    runtime: RuntimeDep,
    start: Annotated[int, Query(ge=0, le=_MAX_INDEX)] = 0,
    end: Annotated[
        int | None, Query(ge=0, le=_MAX_INDEX, description="Exclusive; default: the log's size")
    ] = None,
) -> StreamingResponse:
    plan = plan_current_export(session, runtime.audit_signer, start, end)
    return StreamingResponse(
        stream_export(runtime.session_factory, plan),
        media_type="application/jsonl",
        headers={
            "Content-Disposition": f'attachment; filename="audit-{plan.start}-{plan.end}.jsonl"'
        },
    )


@router.post(
    "/cosignatures",
    response_model=CosignatureStored,
    status_code=201,
    responses={200: {"description": "This witness had already cosigned this size"}},
    summary="A witness hands back its C2SP tlog-cosignature of a checkpoint",
)
def post_cosignature(
    caller: Auditor, session: SessionDep, runtime: RuntimeDep, body: CosignatureIn
) -> Response:
    stored = add_cosignature(
        session,
        runtime.audit_signer,
        partner_id=caller.partner_id,
        checkpoint=body.checkpoint,
        cosignature=body.cosignature,
        witness_key=body.witness_key,
    )
    out = CosignatureStored(
        witness=stored.witness_name,
        size=stored.size,
        timestamp=stored.timestamp,
        created=stored.created,
    )
    return json_response(out, status_code=201 if stored.created else 200)


# --- statistics and subject lookup (issue 13): the regulator's view ---

_RANGE_HELP = (
    f"Timezone-aware; `since` inclusive (default: 30 days before `until`), `until` exclusive "
    f"(default: now). At most {MAX_RANGE.days} days."
)
SinceQuery = Annotated[datetime | None, Query(description=_RANGE_HELP)]
UntilQuery = Annotated[datetime | None, Query(description=_RANGE_HELP)]
PartnerQuery = Annotated[
    str | None, Query(max_length=64, description="Only this partner's requests")
]
PurposeQuery = Annotated[str | None, Query(max_length=64, description="Only this purpose")]


def _k(runtime: RuntimeDep, k: int | None) -> int:
    minimum = runtime.settings.statistics_min_k
    if k is not None and k < minimum:
        raise ValidationFailedError(f"k must be at least {minimum} on this hub.")
    return k or minimum


KQuery = Annotated[
    int | None,
    Query(ge=2, le=10_000, description="Smallest subject count published (default: the hub's)"),
]


class AccessCellOut(BaseModel):
    day: date = Field(description="UTC calendar day")
    partner_id: str | None
    purpose: str | None = Field(description="None for requests refused before an agreement")
    requests: int = Field(description="Distinct requests (pulls) in this cell")
    events: int = Field(description="Audit events (one per policy decision of a page)")
    denied_requests: int = Field(description="Requests refused outright (release.denied)")
    subjects: int | None = Field(
        description="Distinct subjects decided on; null when fewer than k (suppressed)"
    )


class AccessStatisticsOut(BaseModel):
    since: datetime
    until: datetime
    k: int
    requests: int
    events: int
    cells: list[AccessCellOut] = Field(description="One per (UTC day, partner, purpose)")
    suppressed_cells: int = Field(description="Cells whose subject count is suppressed")
    suppressed_subjects: int | None = Field(
        description="Subjects in the suppressed cells; null when that sum is itself below k"
    )

    @classmethod
    def of(cls, stats: AccessStatistics) -> AccessStatisticsOut:
        return cls(
            since=stats.range.since,
            until=stats.range.until,
            k=stats.k,
            requests=stats.requests,
            events=stats.events,
            cells=[
                AccessCellOut(
                    day=c.day,
                    partner_id=c.partner_id,
                    purpose=c.purpose,
                    requests=c.requests,
                    events=c.events,
                    denied_requests=c.denied_requests,
                    subjects=c.subjects,
                )
                for c in stats.cells
            ],
            suppressed_cells=stats.suppressed_cells,
            suppressed_subjects=stats.suppressed_subjects,
        )


class DenialReasonOut(BaseModel):
    reason: str = Field(description="A stable reason id, e.g. consent.missing")
    denials: int = Field(description="Refused decisions (or refused requests) naming it")
    requests: int
    subjects: int | None = Field(description="Distinct subjects refused; null when fewer than k")


class DenialStatisticsOut(BaseModel):
    since: datetime
    until: datetime
    k: int
    denials: int
    reasons: list[DenialReasonOut]
    suppressed_cells: int
    suppressed_subjects: int | None

    @classmethod
    def of(cls, stats: DenialStatistics) -> DenialStatisticsOut:
        return cls(
            since=stats.range.since,
            until=stats.range.until,
            k=stats.k,
            denials=stats.denials,
            reasons=[
                DenialReasonOut(
                    reason=r.reason, denials=r.denials, requests=r.requests, subjects=r.subjects
                )
                for r in stats.reasons
            ],
            suppressed_cells=stats.suppressed_cells,
            suppressed_subjects=stats.suppressed_subjects,
        )


@router.get(
    "/statistics/accesses",
    response_model=AccessStatisticsOut,
    summary="Accesses per partner, purpose and day",
    description=(
        "Pulls of shared data (allowed or refused) per UTC day, partner and purpose, from the "
        "access log. Request and event counts are published as they are; the count of distinct "
        "subjects in a cell is k-anonymous (null below k). Not itself logged: it reads the log."
    ),
)
def get_access_statistics(
    caller: Auditor,
    session: SessionDep,
    runtime: RuntimeDep,
    since: SinceQuery = None,
    until: UntilQuery = None,
    partner_id: PartnerQuery = None,
    purpose: PurposeQuery = None,
    k: KQuery = None,
) -> Response:
    stats = access_statistics(
        session,
        window=time_range(since, until, now=utcnow()),
        k=_k(runtime, k),
        partner_id=partner_id,
        purpose=purpose,
    )
    return json_response(AccessStatisticsOut.of(stats))


@router.get(
    "/statistics/denials",
    response_model=DenialStatisticsOut,
    summary="Denials by reason",
    description=(
        "Refusals per reason id: the reasons of policy decisions that denied a subject's records "
        "and the pipeline's reasons for refused requests (e.g. agreement.not_in_force). The "
        "count of distinct subjects per reason is k-anonymous (null below k)."
    ),
)
def get_denial_statistics(
    caller: Auditor,
    session: SessionDep,
    runtime: RuntimeDep,
    since: SinceQuery = None,
    until: UntilQuery = None,
    partner_id: PartnerQuery = None,
    purpose: PurposeQuery = None,
    k: KQuery = None,
) -> Response:
    stats = denial_statistics(
        session,
        window=time_range(since, until, now=utcnow()),
        k=_k(runtime, k),
        partner_id=partner_id,
        purpose=purpose,
    )
    return json_response(DenialStatisticsOut.of(stats))


class SubjectLookupIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"kind": "vin", "value": "LSVAU2180N2183294"}]},
    )

    kind: Literal["vin", "id_number", "mobile", "email"]
    value: str = Field(
        min_length=1,
        max_length=254,
        description="The identifier, as written (an e-mail address is compared case-insensitively)",
    )

    @model_validator(mode="after")
    def _not_blank(self) -> SubjectLookupIn:
        if not self.value.strip():
            raise ValueError("value is blank")
        return self


class SubjectLookupOut(BaseModel):
    subject: str = Field(description="The subject's audit pseudonym: use it as ?subject=")
    event_index: int = Field(description="The audit event that records this lookup")


@router.post(
    "/subjects/lookup",
    response_model=SubjectLookupOut,
    summary="Find a subject's audit pseudonym from a VIN, ID number, mobile number or e-mail",
    description=(
        "The identifier travels in the body (never in a URL) and is never stored: it is found "
        "by its keyed blind index. Placeholders (all-zeros numbers, 'test', sample mobiles, "
        "addresses at domains reserved for tests and documentation such as example.com, "
        ".example, .invalid or .test, and stand-ins such as test@test.com) and "
        "malformed identifiers are refused with 422. Every lookup, found or not, is an audit "
        "event (subject.looked_up) naming the regulator and the pseudonym only."
    ),
    responses={404: {"description": "No subject has this identifier (logged too)"}},
)
def post_subject_lookup(
    caller: Auditor,
    session: SessionDep,
    runtime: RuntimeDep,
    request_id: RequestIdDep,
    body: SubjectLookupIn,
) -> Response:
    found = look_up_subject(
        session,
        protector=runtime.protector,
        kind=body.kind,
        value=body.value,
        asked_by=caller.partner_id,
        request_id=request_id,
    )
    return json_response(SubjectLookupOut(subject=found.subject, event_index=found.event_index))
