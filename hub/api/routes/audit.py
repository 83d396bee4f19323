"""The access log, read-only, for regulators (scope ``audit:read``): events, signed tree heads as
C2SP checkpoints with witness cosignatures, RFC 9162 proofs and signed JSONL exports."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response, StreamingResponse

from hub.api.deps import Auditor, RuntimeDep, SessionDep
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
from hub.errors import ValidationFailedError

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
    responses={200: {"content": {"text/plain": {}}}},
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
