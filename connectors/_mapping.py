"""Provider side: read rows from CSV/JSONL files and map them to records per a TOML mapping.

A mapping file::

    record_key = "contract_no"      # the column holding the record key
    version = "revision"            # a column of integer versions, or a constant: version = 1

    [subject]                       # at least one identifier must be present in every row
    id_number = "national_id"
    mobile = "phone"
    vin = "vin"
    email = "email_address"

    [fields]                        # dataset field = column, or a table with type and required
    make = "vehicle_make"
    income = { column = "monthly_income", type = "float", required = true }

Types: ``str`` (the default), ``int``, ``float``, ``bool``, ``date`` (ISO 8601, sent as text).
Empty cells count as missing: a required field reports an error, an optional one is left out.
"""

from __future__ import annotations

import csv
import json
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ._models import PublishRecord, Subject

__all__ = ["MappingError", "RecordMapping", "RowError", "read_source"]

SUBJECT_KEYS = ("id_number", "mobile", "vin", "email")


class MappingError(Exception):
    """The mapping file or the source specification is invalid."""


@dataclass(frozen=True, slots=True)
class RowError:
    """A row that cannot be published: ``line`` counts lines of a file, rows of a SQL result
    (``unit="row"``) or items of an HTTP source (``unit="item"``), from 1."""

    line: int
    message: str
    unit: str = "line"

    def __str__(self) -> str:
        return f"{self.unit} {self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    column: str
    type: str
    required: bool


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return int(str(value).strip())


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError
    return float(value) if isinstance(value, int | float) else float(str(value).strip())


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "y"):
        return True
    if text in ("false", "0", "no", "n"):
        return False
    raise ValueError


def _to_date(value: Any) -> str:
    if isinstance(value, datetime):  # SQL sources: a timestamp column mapped to a date field
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return date.fromisoformat(str(value).strip()).isoformat()


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "str": _to_str,
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "date": _to_date,
}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class RecordMapping:
    """Columns to record key, version, subject identifiers and dataset fields."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        key = data.get("record_key")
        if not isinstance(key, str):
            raise MappingError("record_key must name a column")
        self.key_column = key
        version = data.get("version")
        if isinstance(version, bool) or not isinstance(version, str | int):
            raise MappingError("version must name a column or be an integer")
        self.version = version
        subject = data.get("subject", {})
        if not isinstance(subject, dict) or not subject:
            raise MappingError("[subject] must map at least one of " + ", ".join(SUBJECT_KEYS))
        unknown = set(subject) - set(SUBJECT_KEYS)
        if unknown or not all(isinstance(v, str) for v in subject.values()):
            raise MappingError(
                f"[subject] keys are {', '.join(SUBJECT_KEYS)}, each naming a column"
            )
        self.subject: dict[str, str] = dict(subject)
        self.fields: list[_Field] = []
        for name, spec in dict(data.get("fields", {})).items():
            if isinstance(spec, str):
                spec = {"column": spec}
            if not isinstance(spec, dict) or not isinstance(spec.get("column"), str):
                raise MappingError(f"fields.{name}: give a column name or {{column = ...}}")
            kind = spec.get("type", "str")
            if kind not in _CONVERTERS:
                raise MappingError(f"fields.{name}: type must be one of {', '.join(_CONVERTERS)}")
            required = spec.get("required", False)
            if not isinstance(required, bool):
                raise MappingError(f"fields.{name}: required must be true or false")
            self.fields.append(_Field(name, spec["column"], kind, required))

    @classmethod
    def load(cls, path: Path) -> RecordMapping:
        try:
            with open(path, "rb") as f:
                return cls(tomllib.load(f))
        except tomllib.TOMLDecodeError as exc:
            raise MappingError(f"{path}: {exc}") from None

    def map_row(self, row: Mapping[str, Any]) -> tuple[PublishRecord | None, list[str]]:
        """The record for ``row``, or None and the reasons it is invalid."""
        errors: list[str] = []
        key = row.get(self.key_column)
        if _missing(key):
            errors.append(f"record_key: column {self.key_column!r} is empty or missing")
        version: int | None = self.version if isinstance(self.version, int) else None
        if isinstance(self.version, str):
            raw = row.get(self.version)
            try:
                version = _to_int(raw)
            except (TypeError, ValueError):
                errors.append(f"version: column {self.version!r} is not an integer: {raw!r}")
        ids = {
            name: str(row[col]).strip()
            for name, col in self.subject.items()
            if not _missing(row.get(col))
        }
        if not ids:
            cols = ", ".join(repr(c) for c in self.subject.values())
            errors.append(f"subject: no identifier in columns {cols}")
        fields: dict[str, Any] = {}
        for f in self.fields:
            raw = row.get(f.column)
            if _missing(raw):
                if f.required:
                    errors.append(f"fields.{f.name}: column {f.column!r} is required")
                continue
            try:
                fields[f.name] = _CONVERTERS[f.type](raw)
            except (TypeError, ValueError):
                errors.append(f"fields.{f.name}: column {f.column!r} is not a {f.type}: {raw!r}")
        if errors or version is None:
            return None, errors
        record = PublishRecord(str(key).strip(), version, Subject(**ids), fields)
        return record, []


Row = dict[str, Any] | RowError


def read_source(spec: str) -> Iterator[tuple[int, Row]]:
    """``(line, row)`` for each row of ``csv:PATH`` or ``jsonl:PATH``; bad rows as RowError."""
    kind, _, rest = spec.partition(":")
    if not rest or kind not in ("csv", "jsonl"):
        raise MappingError(f"unknown source {spec!r}: use csv:PATH or jsonl:PATH")
    path = Path(rest)
    if not path.is_file():
        raise MappingError(f"{path}: no such file")
    return _read_csv(path) if kind == "csv" else _read_jsonl(path)


def _read_csv(path: Path) -> Iterator[tuple[int, Row]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        for row in reader:
            line = reader.line_num
            if None in row:
                yield line, RowError(line, "more cells than header columns")
            else:
                yield line, dict(row)


def _read_jsonl(path: Path) -> Iterator[tuple[int, Row]]:
    with open(path, encoding="utf-8") as f:
        for line, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except ValueError as exc:
                yield line, RowError(line, f"not valid JSON: {exc}")
                continue
            yield line, row if isinstance(row, dict) else RowError(line, "not a JSON object")
