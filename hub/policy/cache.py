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

import dataclasses
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from hub.policy.interfaces import Decision, PolicyEngine, new_decision_id

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
    now = rfc3339_ns(policy_input.get("now"))
    if now is None:
        return canonical_digest(policy_input)
    instants = (
        _get(policy_input, "agreement", "valid_from"),
        _get(policy_input, "agreement", "valid_until"),
        _get(policy_input, "consent", "expires_at"),
    )
    positions: list[bool | str] = []
    for raw in instants:
        instant = rfc3339_ns(raw)
        if instant is None:
            if _might_be_time(raw):
                return canonical_digest(policy_input)
            positions.append(_NOT_A_TIME)
        else:
            positions.append(now >= instant)
    reduced = {key: value for key, value in policy_input.items() if key != "now"}
    reduced["now"] = {"after": positions}
    return canonical_digest(reduced)


def _get(policy_input: Mapping[str, Any], section: str, key: str) -> Any:
    part = policy_input.get(section)
    return part.get(key) if isinstance(part, Mapping) else None


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
        self._entries: OrderedDict[tuple[str, str], Decision] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, revision: str, key: str) -> Decision | None:
        with self._lock:
            decision = self._entries.get((revision, key))
            if decision is None:
                self.misses += 1
                return None
            self._entries.move_to_end((revision, key))
            self.hits += 1
            return decision

    def put(self, revision: str, key: str, decision: Decision) -> None:
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

    Every call still gets its own ``decision_id``. Errors are never cached.
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
        key = decision_cache_key(policy_input)
        cached = self.cache.get(revision, key)
        if cached is not None:
            return dataclasses.replace(cached, decision_id=new_decision_id())
        decision = self.inner.decide(policy_input)
        self.cache.put(decision.policy_revision, key, decision)
        return decision
