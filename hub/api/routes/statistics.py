"""Aggregate statistics for regulators: only groups of at least k records are published."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from hub.api.deps import Auditor, RequestIdDep, RuntimeDep, SessionDep
from hub.errors import ValidationFailedError
from hub.records.statistics import dataset_counts
from hub.store.base import utcnow

router = APIRouter(prefix="/v1/statistics", tags=["statistics"])


class GroupCount(BaseModel):
    values: dict[str, str]
    count: int


class Counts(BaseModel):
    dataset_id: str
    dimensions: list[str]
    k: int
    groups: list[GroupCount]
    total: int | None = Field(
        description="All records; withheld when it would expose a small group."
    )
    suppressed_groups: int
    suppressed_records: int | None


@router.get(
    "/datasets/{dataset_id}/counts",
    response_model=Counts,
    summary="k-anonymous record counts over generalised dimensions",
    description=(
        "Counts records per combination of the `by` fields, generalised first (dates to "
        "months, amounts to bands, addresses to cities). Groups smaller than `k` are "
        "suppressed. Fields that identify people or accounts cannot be dimensions."
    ),
)
def counts(
    dataset_id: Annotated[str, Path(max_length=128)],
    caller: Auditor,
    session: SessionDep,
    runtime: RuntimeDep,
    request_id: RequestIdDep,
    by: Annotated[list[str], Query(min_length=1, max_length=4)],
    k: Annotated[int | None, Query(ge=2, le=10_000)] = None,
) -> Counts:
    minimum = runtime.settings.statistics_min_k
    k = k or minimum
    if k < minimum:
        raise ValidationFailedError(f"k must be at least {minimum} on this hub.")
    result = dataset_counts(
        session,
        protector=runtime.protector,
        dataset_id=dataset_id,
        dimensions=by,
        k=k,
        asked_by=caller.partner_id,
        request_id=request_id,
        now=utcnow(),
    )
    return Counts(
        dataset_id=dataset_id,
        dimensions=list(result.dimensions),
        k=result.k,
        groups=[
            GroupCount(values=dict(zip(result.dimensions, g.values, strict=True)), count=g.count)
            for g in result.groups
        ],
        total=result.total,
        suppressed_groups=result.suppressed_groups,
        suppressed_records=result.suppressed_records,
    )
