"""Providers declare datasets (JSON Schema, additive versions), list them and publish records
into them; every member can read a dataset's description and schema."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from starlette.responses import Response

from hub.api.deps import CallerDep, Publisher, RuntimeDep, SessionDep
from hub.api.responses import json_response
from hub.errors import PayloadTooLargeError
from hub.records.schemas import PublishRequest, PublishResponse
from hub.records.service import publish_records
from hub.registry import service as registry
from hub.registry.errors import DatasetNotFoundError
from hub.registry.schemas import (
    DatasetCreate,
    DatasetList,
    DatasetPublic,
    SchemaVersionCreate,
    SchemaVersionList,
    SchemaVersionPublic,
)
from hub.registry.taxonomy import load_taxonomy

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

DatasetId = Annotated[str, Path(max_length=128)]


@router.get("", response_model=DatasetList, summary="Datasets I provide")
def list_datasets(caller: CallerDep, session: SessionDep) -> Response:
    rows = registry.datasets_of_provider(session, partner_id=caller.partner_id)
    return json_response(DatasetList(items=[DatasetPublic.of(d) for d in rows]))


# --- registry (issue 9): declaration and schema versions ---


@router.post(
    "",
    status_code=201,
    response_model=DatasetPublic,
    summary="Declare a dataset I provide",
    description=(
        "`json_schema` is a JSON Schema object; each property names its data category "
        "(`x-category`, from the taxonomy kept with the policies) and may mark itself "
        "sensitive (`x-sensitive`). The optional top-level `x-data-time` names the one field "
        "(`type: string`, `format: date` or `date-time`) that carries a record's data time: "
        "publishing stores it as the record's `occurred_at`, which a consent's data range is "
        "checked against at release (an unknown or wrong field is a 422). This is schema "
        "version 1."
    ),
)
def declare(
    body: DatasetCreate, caller: Publisher, session: SessionDep, runtime: RuntimeDep
) -> DatasetPublic:
    taxonomy = load_taxonomy(runtime.settings.policies_dir)
    dataset = registry.declare_dataset(
        session,
        dataset_id=body.id,
        provider_id=caller.partner_id,
        title=body.title,
        description=body.description,
        fields=registry.fields_from_json_schema(body.json_schema, taxonomy),
        taxonomy=taxonomy,
        actor=f"partner:{caller.partner_id}",
    )
    return DatasetPublic.of(dataset)


@router.get("/{dataset_id}", response_model=DatasetPublic, summary="A dataset's description")
def get_dataset(dataset_id: DatasetId, caller: CallerDep, session: SessionDep) -> Response:
    return json_response(DatasetPublic.of(registry.get_dataset(session, dataset_id=dataset_id)))


@router.post(
    "/{dataset_id}/schema-versions",
    status_code=201,
    response_model=DatasetPublic,
    summary="Declare the next schema version (additive)",
    description=(
        "The whole schema of the new version: every existing field unchanged, new fields "
        "optional; `x-data-time` may be named by a version if no earlier one did, and once "
        "named never moves or goes away. Records published from now on follow it "
        "(`schema_version`)."
    ),
)
def add_schema_version(
    dataset_id: DatasetId,
    body: SchemaVersionCreate,
    caller: Publisher,
    session: SessionDep,
    runtime: RuntimeDep,
) -> DatasetPublic:
    taxonomy = load_taxonomy(runtime.settings.policies_dir)
    dataset = registry.add_schema_version(
        session,
        dataset_id=dataset_id,
        provider_id=caller.partner_id,
        fields=registry.fields_from_json_schema(body.json_schema, taxonomy),
        taxonomy=taxonomy,
        actor=f"partner:{caller.partner_id}",
    )
    return DatasetPublic.of(dataset)


@router.get(
    "/{dataset_id}/schema-versions",
    response_model=SchemaVersionList,
    summary="Every schema version of a dataset",
)
def list_schema_versions(dataset_id: DatasetId, caller: CallerDep, session: SessionDep) -> Response:
    rows = registry.schema_versions(session, dataset_id=dataset_id)
    return json_response(SchemaVersionList(items=[SchemaVersionPublic.of(v) for v in rows]))


@router.post(
    "/{dataset_id}/records",
    response_model=PublishResponse,
    summary="Publish a batch of records",
    description=(
        "Validated whole against the dataset schema: a 422 lists every bad field and nothing is "
        "stored. The dataset's `x-data-time` field, if any, is parsed strictly (a `date` as "
        "`YYYY-MM-DD`, midnight UTC; a `date-time` as RFC 3339 with an offset, `Z` or "
        "`+hh:mm`) into the record's data time; a new version updates it, and the same version "
        "and content published again fills it in for a record stored without one. Idempotent "
        "by record key and version. Fields are encrypted at rest; subject "
        "identifiers are kept only as keyed blind indexes."
    ),
)
def publish(
    dataset_id: DatasetId,
    body: PublishRequest,
    caller: Publisher,
    session: SessionDep,
    runtime: RuntimeDep,
) -> PublishResponse:
    if len(body.records) > runtime.settings.max_publish_batch:
        raise PayloadTooLargeError(
            f"At most {runtime.settings.max_publish_batch} records per batch."
        )
    dataset = registry.dataset_of_provider(
        session, dataset_id=dataset_id, partner_id=caller.partner_id
    )
    if dataset is None:
        raise DatasetNotFoundError()
    return publish_records(
        session, dataset=dataset, records=body.records, protector=runtime.protector
    )
