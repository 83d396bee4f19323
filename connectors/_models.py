"""Typed results and inputs of the hub's API, and their (strict) parsing from JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._exceptions import DecodeError

__all__ = ["Agreement", "Page", "PublishRecord", "PublishResult", "Record", "Subject"]


@dataclass(frozen=True, slots=True)
class Agreement:
    """A data-sharing agreement the partner is party to."""

    id: str
    provider_id: str
    recipient_id: str
    dataset_id: str
    purpose: str
    fields: tuple[str, ...]
    retention_days: int | None
    valid_from: datetime | None
    valid_until: datetime | None
    status: str


@dataclass(frozen=True, slots=True)
class Record:
    """One released record. ``subject`` is this recipient's pseudonym of the data subject.

    ``encrypted_fields`` names the fields the hub encrypted for the recipient; when the client has
    a decryption key their values in ``fields`` are already decrypted, otherwise they are compact
    JWE strings.
    """

    record_key: str
    version: int
    subject: str
    fields: Mapping[str, Any]
    encrypted_fields: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "record_key": self.record_key,
            "version": self.version,
            "subject": self.subject,
            "fields": dict(self.fields),
        }


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a pull; ``next_cursor`` is None on the last page."""

    items: tuple[Record, ...]
    released: int
    withheld: int
    next_cursor: str | None
    decision_revision: str


@dataclass(frozen=True, slots=True)
class Subject:
    """Identifiers a provider publishes a record under; at least one is needed. The hub keeps
    only keyed blind indexes of them; an e-mail address is compared case-insensitively."""

    id_number: str | None = None
    mobile: str | None = None
    vin: str | None = None
    email: str | None = None

    def to_json(self) -> dict[str, str]:
        pairs = (
            ("id_number", self.id_number),
            ("mobile", self.mobile),
            ("vin", self.vin),
            ("email", self.email),
        )
        return {k: v for k, v in pairs if v is not None}


@dataclass(frozen=True, slots=True)
class PublishRecord:
    """One record to publish into a dataset; re-publishing the same key and version is a no-op."""

    record_key: str
    version: int
    subject: Subject
    fields: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "record_key": self.record_key,
            "version": self.version,
            "subject": self.subject.to_json(),
            "fields": dict(self.fields),
        }


@dataclass(frozen=True, slots=True)
class PublishResult:
    accepted: int
    created: int
    unchanged: int


# -- parsing ---------------------------------------------------------------------------------


def _get(
    obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], *, optional: bool = False
) -> Any:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise DecodeError(f"response field {key!r} is missing or has the wrong type")
    return value


def _obj(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise DecodeError(f"{what} is not a JSON object")
    return value


def _when(obj: Mapping[str, Any], key: str) -> datetime | None:
    text = _get(obj, key, str, optional=True)
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise DecodeError(f"response field {key!r} is not an ISO 8601 date-time") from None


def parse_agreements(body: Any) -> list[Agreement]:
    items = _get(_obj(body, "agreements response"), "items", list)
    out = []
    for raw in items:
        item = _obj(raw, "agreement")
        fields = _get(item, "fields", list)
        out.append(
            Agreement(
                id=_get(item, "id", str),
                provider_id=_get(item, "provider_id", str),
                recipient_id=_get(item, "recipient_id", str),
                dataset_id=_get(item, "dataset_id", str),
                purpose=_get(item, "purpose", str),
                fields=tuple(str(f) for f in fields),
                retention_days=_get(item, "retention_days", int, optional=True),
                valid_from=_when(item, "valid_from"),
                valid_until=_when(item, "valid_until"),
                status=_get(item, "status", str),
            )
        )
    return out


def parse_record(raw: Any, encrypted: Any = None) -> Record:
    """One record; ``encrypted`` is its list of encrypted field names, if the response gave one.

    Written for speed (it runs once per record): exact type checks on the JSON-decoded values.
    """
    if type(raw) is not dict:
        raise DecodeError("record is not a JSON object")
    key, version, subject = raw.get("record_key"), raw.get("version"), raw.get("subject")
    fields = raw.get("fields")
    if type(key) is not str or type(version) is not int or type(subject) is not str:
        raise DecodeError("record without a valid record_key, version or subject")
    if type(fields) is not dict:
        raise DecodeError("record fields are not a JSON object")
    if encrypted is None:
        encrypted = raw.get("encrypted_fields")
    names: tuple[str, ...] = ()
    if encrypted:
        if type(encrypted) is not list or not all(type(n) is str for n in encrypted):
            raise DecodeError("encrypted_fields is not a list of field names")
        names = tuple(encrypted)
    return _new_record(key, version, subject, fields, names)


# A frozen dataclass's __init__ sets each field through object.__setattr__ (~3 µs a record, most
# of the parse); setting the slots through their descriptors builds the same object in half.
_SLOTS = tuple(
    Record.__dict__[n].__set__
    for n in ("record_key", "version", "subject", "fields", "encrypted_fields")
)


def _new_record(
    key: str, version: int, subject: str, fields: Mapping[str, Any], names: tuple[str, ...]
) -> Record:
    record: Record = object.__new__(Record)
    set_key, set_version, set_subject, set_fields, set_names = _SLOTS
    set_key(record, key)
    set_version(record, version)
    set_subject(record, subject)
    set_fields(record, fields)
    set_names(record, names)
    return record


def parse_page(body: Any) -> Page:
    page = _obj(body, "records response")
    encrypted: dict[Any, Any] = page.get("encrypted_fields") or {}
    if type(encrypted) is not dict:
        raise DecodeError("encrypted_fields is not a JSON object")
    items = tuple(
        parse_record(raw, encrypted.get(raw.get("record_key")) if type(raw) is dict else None)
        for raw in _get(page, "items", list)
    )
    return Page(
        items=items,
        released=_get(page, "released", int),
        withheld=_get(page, "withheld", int),
        next_cursor=_get(page, "next_cursor", str, optional=True),
        decision_revision=_get(page, "decision_revision", str),
    )


def parse_publish_result(body: Any) -> PublishResult:
    obj = _obj(body, "publish response")
    return PublishResult(
        accepted=_get(obj, "accepted", int),
        created=_get(obj, "created", int),
        unchanged=_get(obj, "unchanged", int),
    )
