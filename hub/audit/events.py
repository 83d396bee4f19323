"""Building the canonical form of an audit event (no database access).

An event is a JSON object built by the release pipeline (or another gate). The log adds three keys,
``event_id`` (``evt_...``), ``index`` (its leaf index) and ``time`` (RFC 3339, UTC, microseconds),
and stores the RFC 8785 canonical bytes, whose RFC 9162 leaf hash enters the Merkle tree.

Expected keys (all optional except ``kind``; values must be JSON: str, int within ±2**53, bool,
None, lists and objects; floats are allowed but discouraged):

=====================  ======================================================================
``kind``               ``"release"``, ``"release.denied"``, ``"publish"``, ``"consent.changed"``…
``partner_id``         the partner that asked (or published)
``agreement_id``       the data-sharing agreement resolved for the request
``dataset_id``         the dataset
``purpose``            the declared purpose
``request_id``         the hub's request id (joins the event to request logs)
``outcome``            ``"allowed"``, ``"denied"``, ``"partial"``, ``"error"``
``decision_ids``       ids of the policy decisions (one per distinct consent state)
``policy_revision``    the revision of the policy bundle that decided
``consent_ids``        consent receipt ids the decision relied on
``subjects``           subject **pseudonyms** (never raw identifiers: no VIN, ID number, phone…)
``decisions``          per-decision objects; their ``subjects`` lists are pseudonyms too
``fields_released``    field names released
``fields_withheld``    field names withheld (dropped)
``transforms``         ``{field: action}`` applied (mask, pseudonymize, generalize, encrypt…)
``reasons``            stable reason identifiers for denials
``counts``             ``{"records": n, "released": n, "withheld": n}``
=====================  ======================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import rfc8785

from hub.audit.errors import InvalidEventError

RESERVED_KEYS = frozenset({"event_id", "index", "time"})
_MAX_EVENT_BYTES = 256 * 1024
MAX_SUBJECT_LENGTH = 64
_SAFE_INT = 2**53 - 1


def rfc3339(moment: datetime) -> str:
    """``2026-11-25T20:49:44.123456Z``: UTC with microseconds, the form stored in events."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def validate_event(event: Mapping[str, Any]) -> set[str]:
    """Check that the log can store ``event``; return the subject pseudonyms it names."""
    kind = event.get("kind")
    if not isinstance(kind, str) or not kind or len(kind) > 64:
        raise InvalidEventError("an audit event needs a 'kind' string of 1 to 64 characters")
    clash = RESERVED_KEYS.intersection(event)
    if clash:
        raise InvalidEventError(f"keys set by the log itself: {sorted(clash)}")
    for key in ("partner_id", "dataset_id", "purpose", "outcome", "request_id"):
        value = event.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > 64):
            raise InvalidEventError(f"'{key}' must be a string of at most 64 characters")
    return event_subjects(event)


def _pseudonyms(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(s, str) and 0 < len(s) <= MAX_SUBJECT_LENGTH for s in value
    ):
        raise InvalidEventError(
            f"'{where}' must be a list of pseudonym strings of 1 to {MAX_SUBJECT_LENGTH} characters"
        )
    return value


def event_subjects(event: Mapping[str, Any]) -> set[str]:
    """The subject pseudonyms an event names: its ``subjects`` and each ``decisions[].subjects``.

    These are what ``?subject=`` finds. Raises :class:`InvalidEventError` if they are malformed.
    """
    found = set(_pseudonyms(event.get("subjects"), "subjects"))
    decisions = event.get("decisions")
    if decisions is None:
        return found
    if not isinstance(decisions, list) or not all(isinstance(d, Mapping) for d in decisions):
        raise InvalidEventError("'decisions' must be a list of objects")
    for i, decision in enumerate(decisions):
        found.update(_pseudonyms(decision.get("subjects"), f"decisions[{i}].subjects"))
    return found


def _orjson_is_canonical(value: Any) -> bool:
    """Whether orjson with sorted keys writes ``value`` exactly as RFC 8785 does.

    True for objects with ASCII keys (orjson sorts keys by code point, RFC 8785 by UTF-16 code
    unit: the two differ only beyond the BMP), strings (the same escapes: ``\\b\\t\\n\\f\\r``,
    ``\\u00xx`` for other controls, nothing else), integers within ±(2**53 - 1), booleans, null
    and lists of these. Floats (RFC 8785 writes ``1.0`` as ``1``) and anything else: False.
    ``tests/audit`` checks the equivalence on generated events.
    """
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if -_SAFE_INT <= item <= _SAFE_INT:
                continue
            return False
        if kind is dict:
            for key in item:
                if type(key) is not str or not key.isascii():
                    return False
            extend(item.values())
        elif kind is list:
            extend(item)
        else:
            return False
    return True


def canonicalize(event: Mapping[str, Any], *, event_id: str, index: int, time: str) -> bytes:
    """The RFC 8785 bytes of ``event`` with the log's keys added.

    Written by orjson where that is byte-for-byte the RFC 8785 form (every event the hub writes
    today, ~30x faster); by the ``rfc8785`` package otherwise.
    """
    doc = dict(event)
    doc["event_id"] = event_id
    doc["index"] = index
    doc["time"] = time
    canonical: bytes | None = None
    if _orjson_is_canonical(doc):
        try:
            canonical = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:  # lone surrogates, nesting too deep: let rfc8785 decide
            canonical = None
    if canonical is None:
        try:
            canonical = rfc8785.dumps(doc)
        except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
            raise InvalidEventError(f"event is not canonical JSON: {type(exc).__name__}") from exc
    if len(canonical) > _MAX_EVENT_BYTES:
        raise InvalidEventError(f"event exceeds {_MAX_EVENT_BYTES} bytes")
    return canonical
