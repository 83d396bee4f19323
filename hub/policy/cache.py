"""Decision caching.

A decision depends only on the policy revision and the input. The input carries ``now``, which
changes on every call, so keying on the raw input would never hit. The policy reads ``now`` only
by comparing it with three instants (``agreement.valid_from``, ``agreement.valid_until``,
``consent.expires_at``: ``now < valid_from``, ``now >= valid_until``, ``now >= expires_at``), so
:func:`decision_cache_key` replaces ``now`` by the tuple ``now >= t`` for each of them. Two calls
get the same key exactly when the policy must answer them the same way. (Keep this invariant
when the Rego changes: any other use of ``input.now`` must be added here. The differential and
cache tests check it.) When ``now`` or one of the instants cannot be read the same way the policy
reads it, the key falls back to the digest of the whole input, which is always correct.

:class:`DecisionCache` is a bounded LRU, safe to share between threads. Entries for an old
revision are never returned after a reload (the revision is part of the key) and age out.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import os
import re
import threading
from collections import OrderedDict, deque
from collections.abc import Hashable, Mapping
from datetime import datetime
from typing import Any

import orjson

from hub.policy.interfaces import Decision, PolicyEngine

# Identical to rfc3339_pattern in policies/tollhouse/lib/timestamps.rego.
_RFC3339 = re.compile(
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})$"
)
_NOT_A_TIME = "invalid"


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """Canonical JSON bytes: sorted keys, no whitespace, UTC datetimes as ``...Z``."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z)


def canonical_digest(value: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of ``value``: the input digest in decision logs."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def rfc3339_ns(value: Any) -> int | None:
    """Nanoseconds since the epoch, read exactly as the policy reads it; None if it would not."""
    if isinstance(value, datetime):
        value = orjson.dumps(value, option=orjson.OPT_UTC_Z).decode()[1:-1]
    if not isinstance(value, str):
        return None
    return _text_ns(str(value))


@functools.lru_cache(maxsize=8192)
def _text_ns(value: str) -> int | None:
    # Memoised: the agreement's and consent's instants repeat on every decision of a page.
    match = _RFC3339.match(value)
    if match is None:
        return None
    seconds, fraction, offset = match.groups()
    try:
        instant = datetime.fromisoformat(seconds + ("+00:00" if offset == "Z" else offset))
    except ValueError:
        return None
    whole = int(instant.timestamp())
    return whole * 1_000_000_000 + int((fraction or "").ljust(9, "0"))


def decision_cache_key(policy_input: Mapping[str, Any]) -> str:
    """The input digest with ``now`` reduced to what the policy can tell about it."""
    reduced = _reduce_now(policy_input)
    return canonical_digest(policy_input if reduced is None else reduced)


def _fast_key(policy_input: Mapping[str, Any]) -> bytes:
    """The cache's own key: the reduced input's JSON bytes, without a hash.

    The bytes themselves (compared whole by the dict: no collision to reason about), serialised
    as the embedded engine serialises the input it evaluates (orjson, ``OPT_UTC_Z``), in the
    input's own key order: sorting the keys cost ~0.4 µs of a ~4 µs hit, and the hub builds
    its inputs in one order. Two inputs share a key only if their JSON is identical (so the
    policy sees identical inputs but for ``now``); the same content in another key order is
    only a miss. A reduced input's bytes start with ``{``; an input keyed whole is tagged
    ``I``, so that an input whose literal ``now`` looks like a reduced one (``{"after": ...}``)
    never shares a key with a reduced input (the digest of :func:`decision_cache_key` lets them
    collide).
    """
    reduced = _reduce_now(policy_input)
    if reduced is None:
        return b"I" + orjson.dumps(policy_input, option=orjson.OPT_UTC_Z)
    return orjson.dumps(reduced, option=orjson.OPT_UTC_Z)


def _reduce_now(policy_input: Mapping[str, Any]) -> dict[str, Any] | None:
    """The input with ``now`` replaced by ``{"after": [now >= t for each instant]}``; None when
    ``now`` or an instant cannot be read as the policy reads it (key on the whole input)."""
    # Inlined (a cache hit runs this): strings go straight to the memoised parse.
    raw = policy_input.get("now")
    now = _text_ns(raw) if type(raw) is str else rfc3339_ns(raw)
    if now is None:
        return None
    agreement = policy_input.get("agreement")
    if type(agreement) is not dict and not isinstance(agreement, Mapping):
        agreement = _NO_SECTION
    consent = policy_input.get("consent")
    if type(consent) is not dict and not isinstance(consent, Mapping):
        consent = _NO_SECTION
    positions: list[bool | str] = []
    for raw in (
        agreement.get("valid_from"),
        agreement.get("valid_until"),
        consent.get("expires_at"),
    ):
        instant = _text_ns(raw) if type(raw) is str else rfc3339_ns(raw)
        if instant is not None:
            positions.append(now >= instant)
        elif _might_be_time(raw):
            return None
        else:
            positions.append(_NOT_A_TIME)
    reduced = dict(policy_input)
    reduced["now"] = {"after": positions}
    return reduced


_NO_SECTION: Mapping[str, Any] = {}


def _might_be_time(value: Any) -> bool:
    # A string the regex accepts but datetime refuses (month 13): the policy errors on it,
    # so fall back to the exact digest rather than guess.
    return isinstance(value, str | datetime) and (
        isinstance(value, datetime) or _RFC3339.match(value) is not None
    )


class DecisionCache:
    """Bounded LRU of decisions keyed by ``(policy revision, decision cache key)``."""

    def __init__(self, max_entries: int = 4096) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, Hashable], Decision] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, revision: str, key: Hashable) -> Decision | None:
        slot = (revision, key)
        with self._lock:
            decision = self._entries.get(slot)
            if decision is None:
                self.misses += 1
                return None
            self._entries.move_to_end(slot)
            self.hits += 1
            return decision

    def put(self, revision: str, key: Hashable, decision: Decision) -> None:
        with self._lock:
            self._entries[(revision, key)] = decision
            self._entries.move_to_end((revision, key))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class CachedPolicyEngine:
    """A :class:`PolicyEngine` that asks ``inner`` only on a cache miss.

    Every call still gets its own ``decision_id``. Errors are never cached. The cache is keyed
    by the JSON bytes of the reduced input (see :func:`_fast_key`), not their digest: a hit
    costs one ``orjson.dumps`` and a dict lookup. A hit shares the cached decision's immutable
    parts (``obligations`` is a read-only mapping, ``reasons`` a tuple) with a new id.
    """

    def __init__(self, inner: PolicyEngine, cache: DecisionCache | None = None) -> None:
        self.inner = inner
        self.cache = cache if cache is not None else DecisionCache()

    @property
    def revision(self) -> str:
        return self.inner.revision

    def ready(self) -> bool:
        return self.inner.ready()

    def decide(self, policy_input: Mapping[str, Any]) -> Decision:
        revision = self.inner.revision
        try:
            key = _fast_key(policy_input)
        except TypeError:  # not JSON: the inner engine refuses it (PolicyEvaluationError)
            return self.inner.decide(policy_input)
        cached = self.cache.get(revision, key)
        if cached is not None:
            return _with_id(cached, _next_decision_id())
        decision = self.inner.decide(policy_input)
        self.cache.put(decision.policy_revision, key, decision)
        return decision


def _with_id(decision: Decision, decision_id: str) -> Decision:
    """``dataclasses.replace(decision, decision_id=...)`` without re-running ``__init__``: the
    fields are already checked and immutable (``Decision`` is a frozen, non-slotted dataclass)."""
    if type(decision) is not Decision or not _PLAIN_DECISION:
        return dataclasses.replace(decision, decision_id=decision_id)
    copy: Decision = object.__new__(Decision)
    fields = copy.__dict__
    fields.update(decision.__dict__)
    fields["decision_id"] = decision_id
    return copy


# The shortcut above needs instance dictionaries (no ``slots=True``) and no ``__post_init__``.
_PLAIN_DECISION = "__slots__" not in Decision.__dict__ and not hasattr(Decision, "__post_init__")


_ID_BYTES = 12  # as new_decision_id: secrets.token_urlsafe(12)
_ID_BATCH = 256
_ids: deque[str] = deque()
# A forked worker must never hand out ids its parent drew.
os.register_at_fork(after_in_child=_ids.clear)


def _next_decision_id() -> str:
    """A new id of :func:`new_decision_id`'s form and randomness (12 bytes of ``os.urandom``),
    drawn 256 at a time: one system call and one base64 pass per batch instead of per hit.
    ``deque.popleft`` is atomic, so threads never share an id."""
    try:
        return _ids.popleft()
    except IndexError:
        text = base64.urlsafe_b64encode(os.urandom(_ID_BYTES * _ID_BATCH)).decode("ascii")
        step = _ID_BYTES * 4 // 3  # 12 bytes are 16 base64 characters, no padding
        _ids.extend(f"dec_{text[i : i + step]}" for i in range(step, len(text), step))
        return f"dec_{text[:step]}"
