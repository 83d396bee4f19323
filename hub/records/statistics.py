"""Statistics over a dataset for regulators: k-anonymous counts, audited."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.audit import append_event
from hub.crypto import FieldProtector
from hub.deid.aggregates import (
    KAnonymousCounts,
    dimension_value,
    k_anonymous_counts,
    refused_dimension,
)
from hub.errors import FieldError, NotFoundError, ValidationFailedError
from hub.records.models import Record
from hub.registry.models import Dataset

BATCH = 1000


def _dimension_rows(
    session: Session,
    protector: FieldProtector,
    dataset: Dataset,
    dimensions: Sequence[str],
    now: datetime,
) -> Iterator[tuple[str, ...]]:
    categories = dataset.field_categories
    after = 0
    while True:
        rows = session.execute(
            select(Record.id, Record.record_key, Record.subject_id, Record.sealed)
            .where(Record.dataset_id == dataset.id, Record.id > after)
            .order_by(Record.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        subjects = {r.subject_id for r in rows}
        erased = protector.forget_shredded(session, subjects)  # erased subjects are not counted
        protector.preload(session, subjects - erased)
        for row in rows:
            if row.subject_id in erased:
                continue
            opened = protector.open_fields(
                session,
                subject_id=row.subject_id,
                dataset_id=dataset.id,
                record_key=row.record_key,
                sealed=row.sealed,
                only=dimensions,
            )
            yield tuple(
                dimension_value(categories[d], d, opened.get(d), as_of=now.date())
                for d in dimensions
            )
        after = rows[-1].id


def dataset_counts(
    session: Session,
    *,
    protector: FieldProtector,
    dataset_id: str,
    dimensions: Sequence[str],
    k: int,
    asked_by: str,
    request_id: str,
    now: datetime,
) -> KAnonymousCounts:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFoundError("No dataset with this id.")
    categories = dataset.field_categories
    errors = []
    for name in dimensions:
        if name not in categories:
            errors.append(FieldError(f"by.{name}", "not a field of this dataset"))
        elif reason := refused_dimension(categories[name], name):
            errors.append(FieldError(f"by.{name}", reason))
    if len(set(dimensions)) != len(dimensions):
        errors.append(FieldError("by", "a dimension is named twice"))
    if errors:
        raise ValidationFailedError("These dimensions cannot be counted.", errors)
    counts = k_anonymous_counts(
        _dimension_rows(session, protector, dataset, dimensions, now),
        dimensions=dimensions,
        k=k,
    )
    append_event(
        session,
        {
            "kind": "statistics",
            "partner_id": asked_by,
            "dataset_id": dataset.id,
            "request_id": request_id,
            "outcome": "aggregated",
            "dimensions": list(dimensions),
            "k": k,
            "groups": len(counts.groups),
            "suppressed_groups": counts.suppressed_groups,
        },
    )
    return counts
