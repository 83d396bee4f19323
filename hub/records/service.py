"""Publishing: a provider's batch is validated whole, then stored encrypted in one transaction."""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from hub.crypto import FieldProtector
from hub.crypto.errors import NormalizationError
from hub.crypto.normalize import normalize_identifier
from hub.deid.identifiers import is_valid_cn_mobile, is_valid_prc_id, is_valid_vin
from hub.errors import FieldError, ValidationFailedError
from hub.records.errors import VersionConflictError
from hub.records.models import DataSubject, Record, SubjectIdentifier
from hub.records.schemas import PublishedRecord, PublishResponse
from hub.registry.datasets import data_time_field
from hub.registry.models import Dataset
from hub.store.base import utcnow

_E164 = re.compile(r"\+[1-9][0-9]{7,14}")


def _is_valid_mobile(value: str) -> bool:
    """A Chinese mobile (national or +86), or any other number in E.164 form."""
    return is_valid_cn_mobile(value) or _E164.fullmatch(value) is not None


#: Longest e-mail address (RFC 5321 path limit) and local part.
EMAIL_MAX_LENGTH = 254
_EMAIL_LOCAL_MAX = 64
# Characters an address we accept never holds (quoted local parts and comments are refused).
_EMAIL_FORBIDDEN = frozenset('<>()[]\\,;:"')
_EMAIL_LABEL = re.compile(r"[^\W_](?:(?:[^\W_]|-)*[^\W_])?")


def is_valid_email(value: str) -> bool:
    """One ``@``, a local part of 1-64 characters without spaces or leading, trailing or double
    dots, a domain of dot-separated labels (letters, digits, inner hyphens) with at least one dot,
    at most 254 characters once normalised (``hub.crypto.normalize``, kind ``email``)."""
    if not isinstance(value, str) or len(value) > 4 * EMAIL_MAX_LENGTH:
        return False
    text = unicodedata.normalize("NFKC", value).strip()
    if any(ch.isspace() or not ch.isprintable() or ch in _EMAIL_FORBIDDEN for ch in text):
        return False
    try:
        normalised = normalize_identifier("email", text)
    except NormalizationError:
        return False
    if len(normalised) > EMAIL_MAX_LENGTH:
        return False
    local, domain = normalised.split("@")
    if len(local) > _EMAIL_LOCAL_MAX or local.startswith(".") or local.endswith("."):
        return False
    labels = domain.split(".")
    return (
        ".." not in local
        and len(labels) >= 2
        and all(len(label) <= 63 and _EMAIL_LABEL.fullmatch(label) for label in labels)
    )


IDENTIFIER_VALIDATORS: dict[str, Callable[[str], bool]] = {
    "id_number": is_valid_prc_id,
    "mobile": _is_valid_mobile,
    "vin": is_valid_vin,
    "email": is_valid_email,
}


def _is_date(value: Any) -> bool:
    try:
        dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return isinstance(value, str) and len(value) == 10


def _is_datetime(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return parsed.tzinfo is not None


TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str) and len(v) <= 10_000,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "date": _is_date,
    "datetime": _is_datetime,
}


_DATA_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# RFC 3339 section 5.6: a full date, "T", a full time with optional fraction, and an offset.
_DATA_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)


def parse_data_time(value: object, field_type: str) -> dt.datetime:
    """A record's data time from the value of its dataset's ``x-data-time`` field, in UTC: a
    ``date`` (``YYYY-MM-DD``) is midnight UTC of that day; a ``datetime`` must be RFC 3339 with
    an offset. Parsed strictly; raise :class:`ValueError` (its message for the publisher)."""
    if not isinstance(value, str):
        raise ValueError(f"must be of type {field_type}")
    if field_type == "date":
        if not _DATA_DATE.fullmatch(value):
            raise ValueError("a data time must be a date YYYY-MM-DD")
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError("not a calendar date") from None
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    match = _DATA_DATETIME.fullmatch(value)
    if match is None:
        raise ValueError("a data time must be an RFC 3339 date-time, e.g. 2026-06-01T08:30:00Z")
    if match["offset"] is None:
        raise ValueError("a data time needs a UTC offset (Z or +hh:mm): it is ambiguous without")
    # ``fromisoformat`` (3.11) takes at most 6 fractional digits and no lowercase separators.
    text = value.upper()
    head, _, tail = text.partition(".")
    if tail:
        digits = len(tail) - len(tail.lstrip("0123456789"))
        text = f"{head}.{tail[: min(digits, 6)]}{tail[digits:]}"
    try:
        return dt.datetime.fromisoformat(text).astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise ValueError("not a valid date-time") from None


def validate_batch(
    dataset: Dataset, records: Sequence[PublishedRecord]
) -> list[dt.datetime | None]:
    """Check every record against the dataset schema; raise one error listing every problem.
    Returns each record's data time (``None`` where the dataset names no ``x-data-time`` field
    or the record leaves it out)."""
    specs = dataset.field_specs
    data_time = data_time_field(specs)
    data_times: list[dt.datetime | None] = []
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, record in enumerate(records):
        where = f"records[{i}]"
        if record.record_key in seen:
            errors.append(FieldError(f"{where}.record_key", "duplicate record_key in batch"))
        seen.add(record.record_key)
        identifiers = _identifiers(record)
        if not identifiers:
            errors.append(
                FieldError(f"{where}.subject", "name at least one of id_number, mobile, vin, email")
            )
        for kind, value in identifiers.items():
            if not IDENTIFIER_VALIDATORS[kind](value):
                errors.append(FieldError(f"{where}.subject.{kind}", f"not a valid {kind}"))
        for name, value in record.fields.items():
            spec = specs.get(name)
            if spec is None:
                errors.append(FieldError(f"{where}.fields.{name}", "not a field of this dataset"))
            elif value is None:
                if spec.get("required", False):
                    errors.append(FieldError(f"{where}.fields.{name}", "required"))
            elif name == data_time:
                continue  # parsed strictly below
            elif not TYPE_CHECKS[spec["type"]](value):
                errors.append(
                    FieldError(f"{where}.fields.{name}", f"must be of type {spec['type']}")
                )
        for name, spec in specs.items():
            if spec.get("required", False) and name not in record.fields:
                errors.append(FieldError(f"{where}.fields.{name}", "required"))
        occurred_at = None
        stated = record.fields.get(data_time) if data_time is not None else None
        if data_time is not None and stated is not None:
            try:
                occurred_at = parse_data_time(stated, specs[data_time]["type"])
            except ValueError as exc:
                errors.append(FieldError(f"{where}.fields.{data_time}", str(exc)))
        data_times.append(occurred_at)
    if errors:
        raise ValidationFailedError(
            f"{len(errors)} problem(s) in the batch; nothing was stored.", errors
        )
    return data_times


def _identifiers(record: PublishedRecord) -> dict[str, str]:
    subject = record.subject
    found = {
        "id_number": subject.id_number,
        "mobile": subject.mobile,
        "vin": subject.vin,
        "email": subject.email,
    }
    return {kind: value for kind, value in found.items() if value}


def _resolve_subjects(
    session: Session, protector: FieldProtector, records: Sequence[PublishedRecord]
) -> list[str]:
    """Map each record to a data subject through blind indexes, creating subjects as needed."""
    digests_per_record = [
        {kind: protector.blind_index(kind, value) for kind, value in _identifiers(r).items()}
        for r in records
    ]
    wanted = {(kind, digest) for d in digests_per_record for kind, digest in d.items()}
    known: dict[tuple[str, str], str] = {}
    if wanted:
        rows = session.execute(
            select(
                SubjectIdentifier.kind, SubjectIdentifier.digest, SubjectIdentifier.subject_id
            ).where(tuple_(SubjectIdentifier.kind, SubjectIdentifier.digest).in_(list(wanted)))
        ).all()
        known = {(kind, digest): subject_id for kind, digest, subject_id in rows}
    subject_ids: list[str] = []
    errors: list[FieldError] = []
    for i, (record, digests) in enumerate(zip(records, digests_per_record, strict=True)):
        matches = {known[(k, d)] for k, d in digests.items() if (k, d) in known}
        if len(matches) > 1:
            errors.append(
                FieldError(f"records[{i}].subject", "identifiers belong to different subjects")
            )
            subject_ids.append("")
            continue
        if matches:
            subject_id = matches.pop()
        else:
            subject = DataSubject(jurisdiction=record.subject.jurisdiction.upper())
            session.add(subject)
            session.flush()
            subject_id = subject.id
        for kind, digest in digests.items():
            if (kind, digest) not in known:
                session.add(SubjectIdentifier(subject_id=subject_id, kind=kind, digest=digest))
                known[(kind, digest)] = subject_id
        subject_ids.append(subject_id)
    if errors:
        raise ValidationFailedError(
            "Some subjects could not be resolved; nothing was stored.", errors
        )
    return subject_ids


def _content_digest(
    protector: FieldProtector, dataset_id: str, subject_id: str, fields: Mapping[str, Any]
) -> str:
    canonical = json.dumps(
        [subject_id, fields], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return protector.content_digest(dataset_id, canonical)


def publish_records(
    session: Session,
    *,
    dataset: Dataset,
    records: Sequence[PublishedRecord],
    protector: FieldProtector,
) -> PublishResponse:
    """Store a validated batch. Idempotent by (record key, version): the same version with the
    same content is ``unchanged``; a newer version replaces; an older or different one conflicts.
    The caller's transaction makes the batch all-or-nothing.
    """
    data_times = validate_batch(dataset, records)
    keys = [r.record_key for r in records]
    existing = {
        row.record_key: row
        for row in session.scalars(
            select(Record).where(Record.dataset_id == dataset.id, Record.record_key.in_(keys))
        )
    }
    subject_ids = _resolve_subjects(session, protector, records)
    now = utcnow()
    created = updated = unchanged = 0
    conflicts: list[str] = []
    for record, subject_id, occurred_at in zip(records, subject_ids, data_times, strict=True):
        digest = _content_digest(protector, dataset.id, subject_id, record.fields)
        stored = existing.get(record.record_key)
        if stored is not None and record.version < stored.version:
            conflicts.append(
                f"{record.record_key}: version {record.version} < stored {stored.version}"
            )
            continue
        if stored is not None and record.version == stored.version:
            if stored.content_digest == digest:
                unchanged += 1
                # Stored before its dataset named a data time (or before the hub kept one):
                # the same record published again gets it, without a new version.
                if stored.occurred_at != occurred_at:
                    stored.occurred_at = occurred_at
            else:
                conflicts.append(
                    f"{record.record_key}: version {record.version} was already published "
                    "with other content"
                )
            continue
        sealed = protector.seal_fields(
            session,
            subject_id=subject_id,
            dataset_id=dataset.id,
            record_key=record.record_key,
            fields=record.fields,
        )
        if stored is None:
            session.add(
                Record(
                    dataset_id=dataset.id,
                    record_key=record.record_key,
                    version=record.version,
                    schema_version=dataset.schema_version,
                    subject_id=subject_id,
                    content_digest=digest,
                    sealed=sealed,
                    occurred_at=occurred_at,
                    created_at=now,
                    updated_at=now,
                )
            )
            created += 1
        else:
            stored.version = record.version
            stored.schema_version = dataset.schema_version
            stored.subject_id = subject_id
            stored.content_digest = digest
            stored.sealed = sealed
            stored.occurred_at = occurred_at
            stored.updated_at = now
            updated += 1
    if conflicts:
        raise VersionConflictError("; ".join(conflicts[:20]) + ". Nothing was stored.")
    session.flush()
    return PublishResponse(
        accepted=len(records), created=created, updated=updated, unchanged=unchanged
    )
