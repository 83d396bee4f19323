"""Datasets: declared by their provider with a JSON Schema whose fields carry a data category
and a sensitivity from the taxonomy; later versions may only add optional fields.

The JSON Schema a provider declares (and reads back)::

    {"type": "object",
     "properties": {
        "vin":        {"type": "string", "x-category": "vehicle_identifier"},
        "build_date": {"type": "string", "format": "date", "x-category": "vehicle"},
        "income":     {"type": "integer", "x-category": "income", "x-sensitive": false}},
     "required": ["vin"],
     "additionalProperties": false,
     "x-data-time": "build_date"}

Stored as the hub's field specs ``{name: {type, category, sensitive, required}}``, the form the
publish validation and the release pipeline read. ``x-sensitive`` defaults to the category's
sensitivity and may raise it, never lower it.

``x-data-time`` (optional, top level) names the one field (a ``date`` or ``date-time`` string)
that carries a record's data time: publishing copies it into ``records.occurred_at``, which the
release pipeline checks against a consent's data range (:mod:`consent.ranges`). Its spec is
marked ``data_time: true``, so each schema version carries its own. Once a version names it, no
later version may move or drop it (records published before would be dated by another field).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.errors import FieldError
from hub.registry.errors import (
    DatasetNotFoundError,
    DuplicateError,
    RegistryValidationError,
    SchemaChangeError,
)
from hub.registry.models import Dataset, DatasetSchemaVersion, Partner, Role
from hub.registry.taxonomy import Taxonomy

FIELD_TYPES = frozenset({"string", "integer", "number", "boolean", "date", "datetime"})
#: The top-level schema keyword naming the field that carries a record's data time.
DATA_TIME_KEYWORD = "x-data-time"
#: The field types a data time may have (JSON Schema ``format`` ``date`` or ``date-time``).
DATA_TIME_TYPES = frozenset({"date", "datetime"})
DATASET_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{2,127}$")
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_FIELDS = 200
PROVIDER_ROLES = frozenset({Role.OEM, Role.DEALER, Role.LENDER, Role.INSURER})
_FIELD_KEYS = frozenset(
    {"type", "format", "x-category", "x-sensitive", "description", "title", "maxLength"}
)

_TO_JSON: dict[str, dict[str, str]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
}


def data_time_field(fields: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The field that carries a record's data time in these field specs, if one does."""
    return next((name for name, spec in fields.items() if spec.get("data_time")), None)


def to_json_schema(fields: Mapping[str, Mapping[str, Any]], *, version: int) -> dict[str, Any]:
    """The JSON Schema of a version's field specs."""
    properties: dict[str, Any] = {}
    for name, spec in fields.items():
        prop: dict[str, Any] = dict(_TO_JSON[spec["type"]])
        prop["x-category"] = spec["category"]
        prop["x-sensitive"] = bool(spec.get("sensitive", False))
        properties[name] = prop
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "x-version": version,
        "properties": properties,
        "required": [n for n, s in fields.items() if s.get("required", False)],
        "additionalProperties": False,
    }
    data_time = data_time_field(fields)
    if data_time is not None:
        schema[DATA_TIME_KEYWORD] = data_time
    return schema


def _data_time_errors(
    name: Any, types: Mapping[str, str | None], *, where: str
) -> list[FieldError]:
    """What is wrong with naming ``name`` the data-time field among fields of these types."""
    if not isinstance(name, str) or name not in types:
        return [FieldError(where, "must name a field of the schema")]
    if types[name] is not None and types[name] not in DATA_TIME_TYPES:
        return [FieldError(where, f"'{name}' must be a string of format date or date-time")]
    return []


def _field_type(prop: Mapping[str, Any]) -> str | None:
    json_type = prop.get("type")
    fmt = prop.get("format")
    if json_type == "string" and fmt == "date":
        return "date"
    if json_type == "string" and fmt == "date-time":
        return "datetime"
    if fmt is not None:
        return None
    if isinstance(json_type, str) and json_type in FIELD_TYPES - {"date", "datetime"}:
        return json_type
    return None


def fields_from_json_schema(document: Any, taxonomy: Taxonomy) -> dict[str, dict[str, Any]]:
    """Parse and check a declared JSON Schema; raise one error listing every problem."""
    if not isinstance(document, Mapping):
        raise RegistryValidationError("The schema must be a JSON object.")
    try:
        Draft202012Validator.check_schema(dict(document))
    except SchemaError as exc:
        raise RegistryValidationError(
            "The schema is not a valid JSON Schema.", [FieldError("schema", exc.message[:200])]
        ) from exc
    errors: list[FieldError] = []
    if document.get("type") != "object":
        errors.append(FieldError("schema.type", "must be 'object'"))
    properties = document.get("properties")
    if not isinstance(properties, Mapping) or not properties:
        errors.append(FieldError("schema.properties", "declare at least one field"))
        raise RegistryValidationError("The dataset schema is invalid.", errors)
    if len(properties) > MAX_FIELDS:
        errors.append(FieldError("schema.properties", f"at most {MAX_FIELDS} fields"))
    required = document.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        errors.append(FieldError("schema.required", "must be a list of field names"))
        required = []
    for name in required:
        if name not in properties:
            errors.append(FieldError("schema.required", f"'{name}' is not a property"))
    fields: dict[str, dict[str, Any]] = {}
    for name, prop in properties.items():
        where = f"schema.properties.{name}"
        if not FIELD_NAME.fullmatch(name):
            errors.append(FieldError(where, "field names are lower_snake_case, up to 64"))
            continue
        if not isinstance(prop, Mapping):
            errors.append(FieldError(where, "must be an object"))
            continue
        unknown = sorted(set(prop) - _FIELD_KEYS)
        if unknown:
            errors.append(FieldError(where, f"unsupported keywords: {', '.join(unknown)}"))
        field_type = _field_type(prop)
        if field_type is None:
            errors.append(
                FieldError(
                    f"{where}.type",
                    "string (optionally format date or date-time), integer, number or boolean",
                )
            )
        category = prop.get("x-category")
        known = taxonomy.categories.get(category) if isinstance(category, str) else None
        if known is None:
            errors.append(FieldError(f"{where}.x-category", "unknown data category"))
        sensitive = prop.get("x-sensitive")
        if sensitive is not None and not isinstance(sensitive, bool):
            errors.append(FieldError(f"{where}.x-sensitive", "must be true or false"))
        elif known is not None and known.sensitive and sensitive is False:
            errors.append(
                FieldError(f"{where}.x-sensitive", f"category {category} is always sensitive")
            )
        if field_type is None or known is None:
            continue
        fields[name] = {
            "type": field_type,
            "category": known.name,
            "sensitive": bool(sensitive) or known.sensitive,
            "required": name in required,
        }
    if DATA_TIME_KEYWORD in document:
        data_time = document[DATA_TIME_KEYWORD]
        types = {
            str(name): _field_type(prop) if isinstance(prop, Mapping) else None
            for name, prop in properties.items()
        }
        problems = _data_time_errors(data_time, types, where=f"schema.{DATA_TIME_KEYWORD}")
        errors.extend(problems)
        if not problems and data_time in fields:
            fields[data_time]["data_time"] = True
    if errors:
        raise RegistryValidationError("The dataset schema is invalid.", errors)
    return fields


def check_fields(
    fields: Mapping[str, Mapping[str, Any]], taxonomy: Taxonomy
) -> dict[str, dict[str, Any]]:
    """The hub's own field-spec form (used by the demo): each field's type and category."""
    errors: list[FieldError] = []
    out: dict[str, dict[str, Any]] = {}
    marked = [name for name, spec in fields.items() if spec.get("data_time")]
    if len(marked) > 1:
        errors.append(FieldError("fields", f"one data-time field at most, not {marked}"))
    for name in marked[:1]:
        errors.extend(
            _data_time_errors(
                name, {name: fields[name].get("type")}, where=f"fields.{name}.data_time"
            )
        )
    for name, spec in fields.items():
        if spec.get("type") not in FIELD_TYPES:
            errors.append(
                FieldError(f"fields.{name}.type", f"must be one of {sorted(FIELD_TYPES)}")
            )
        category = taxonomy.categories.get(str(spec.get("category")))
        if category is None:
            errors.append(FieldError(f"fields.{name}.category", "unknown data category"))
            continue
        out[name] = {
            "type": spec.get("type"),
            "category": category.name,
            "sensitive": bool(spec.get("sensitive", False)) or category.sensitive,
            "required": bool(spec.get("required", False)),
        }
        if spec.get("data_time"):
            out[name]["data_time"] = True
    if errors:
        raise RegistryValidationError("The dataset schema is invalid.", errors)
    return out


def declare_dataset(
    session: Session,
    *,
    dataset_id: str,
    provider_id: str,
    title: str,
    fields: Mapping[str, Mapping[str, Any]],
    taxonomy: Taxonomy,
    actor: str,
    description: str = "",
) -> Dataset:
    """Declare a dataset (schema version 1). Fields are already parsed
    (:func:`fields_from_json_schema`) or given in the hub's own form."""
    if not DATASET_ID.fullmatch(dataset_id):
        raise RegistryValidationError(
            "Invalid dataset id.",
            [FieldError("id", "3-128 of a-z 0-9 . _ -, starting with a letter or digit")],
        )
    provider = session.get(Partner, provider_id)
    if provider is None or provider.role not in PROVIDER_ROLES:
        raise RegistryValidationError(
            "Only OEMs, dealers, lenders and insurers provide datasets.",
            [FieldError("provider", "this partner cannot provide datasets")],
        )
    specs = check_fields(fields, taxonomy)
    if not specs:
        raise RegistryValidationError(
            "The dataset schema is invalid.", [FieldError("schema", "no fields")]
        )
    if session.get(Dataset, dataset_id) is not None:
        raise DuplicateError(f"A dataset '{dataset_id}' exists already.")
    dataset = Dataset(
        id=dataset_id,
        provider_id=provider_id,
        title=title,
        description=description,
        schema={"fields": specs},
        schema_version=1,
    )
    session.add(dataset)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent declaration of the same id
        raise DuplicateError(f"A dataset '{dataset_id}' exists already.") from exc
    session.add(DatasetSchemaVersion(dataset_id=dataset_id, version=1, fields=specs,
                                     declared_by=actor))  # fmt: skip
    session.flush()
    return dataset


def add_schema_version(
    session: Session,
    *,
    dataset_id: str,
    provider_id: str,
    fields: Mapping[str, Mapping[str, Any]],
    taxonomy: Taxonomy,
    actor: str,
) -> Dataset:
    """A new, additive version: every existing field unchanged (type, category, sensitivity,
    required), new fields optional. Records published from now on follow the new version."""
    dataset = session.scalars(
        select(Dataset).where(Dataset.id == dataset_id).with_for_update()
    ).one_or_none()
    if dataset is None or dataset.provider_id != provider_id:
        raise DatasetNotFoundError()
    new = check_fields(fields, taxonomy)
    old = dataset.field_specs
    errors: list[FieldError] = []
    for name, spec in old.items():
        if name not in new:
            errors.append(FieldError(f"schema.properties.{name}", "fields cannot be removed"))
            continue
        for key in ("type", "category", "sensitive", "required"):
            if _norm(spec, key) != _norm(new[name], key):
                errors.append(FieldError(f"schema.properties.{name}", f"'{key}' cannot change"))
    was, will_be = data_time_field(old), data_time_field(new)
    if was is not None and will_be != was:
        errors.append(FieldError(f"schema.{DATA_TIME_KEYWORD}", f"must stay '{was}' once named"))
    added = [name for name in new if name not in old]
    for name in added:
        if new[name]["required"]:
            errors.append(FieldError(f"schema.properties.{name}", "new fields must be optional"))
    if not added and not errors:
        errors.append(FieldError("schema.properties", "a new version must add a field"))
    if errors:
        raise SchemaChangeError("Schema versions are additive.", errors)
    dataset.schema_version += 1
    fields = {**old, **{name: new[name] for name in added}}
    if will_be is not None and was is None:  # a version may name the data time the first time
        fields[will_be] = {**fields[will_be], "data_time": True}
    dataset.schema = {"fields": fields}
    session.add(
        DatasetSchemaVersion(
            dataset_id=dataset.id,
            version=dataset.schema_version,
            fields=dataset.schema["fields"],
            declared_by=actor,
        )
    )
    session.flush()
    return dataset


def _norm(spec: Mapping[str, Any], key: str) -> Any:
    value = spec.get(key)
    return bool(value) if key in ("sensitive", "required") else value


def schema_versions(session: Session, *, dataset_id: str) -> Sequence[DatasetSchemaVersion]:
    get_dataset(session, dataset_id=dataset_id)
    return session.scalars(
        select(DatasetSchemaVersion)
        .where(DatasetSchemaVersion.dataset_id == dataset_id)
        .order_by(DatasetSchemaVersion.version)
    ).all()


def get_dataset(session: Session, *, dataset_id: str) -> Dataset:
    """Any member may read a dataset's description and schema (the catalogue); its records
    only through an agreement."""
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise DatasetNotFoundError()
    return dataset


def dataset_of_provider(session: Session, *, dataset_id: str, partner_id: str) -> Dataset | None:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None or dataset.provider_id != partner_id:
        return None
    return dataset


def datasets_of_provider(session: Session, *, partner_id: str) -> Sequence[Dataset]:
    return session.scalars(
        select(Dataset).where(Dataset.provider_id == partner_id).order_by(Dataset.id)
    ).all()
