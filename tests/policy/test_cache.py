from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.policy import (
    CachedPolicyEngine,
    DecisionCache,
    EmbeddedPolicyEngine,
    canonical_digest,
    decision_cache_key,
)
from hub.policy.cache import rfc3339_ns
from hub.policy.interfaces import Decision
from tests.policy.conftest import BASE_INPUT, make_input


def _decision(allow: bool = True) -> Decision:
    return Decision(allow, {"a": "keep"}, (), "dec_x", "rev")


def test_canonical_digest_ignores_key_order() -> None:
    assert canonical_digest({"a": 1, "b": {"c": 2, "d": 3}}) == canonical_digest(
        {"b": {"d": 3, "c": 2}, "a": 1}
    )
    assert canonical_digest({"a": 1}) != canonical_digest({"a": 2})
    assert len(canonical_digest({})) == 64


def test_utc_datetime_digests_like_its_rfc3339_string() -> None:
    aware = datetime(2026, 2, 1, tzinfo=UTC)
    assert canonical_digest({"now": aware}) == canonical_digest({"now": "2026-02-01T00:00:00Z"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-02-01T00:00:00Z", 1769904000 * 10**9),
        ("2026-02-01T08:00:00+08:00", 1769904000 * 10**9),
        ("2026-02-01T00:00:00.5Z", 1769904000 * 10**9 + 500_000_000),
        ("2026-02-01T00:00:00.000000001Z", 1769904000 * 10**9 + 1),
        ("2026-02-01T00:00:00", None),
        ("2026-13-01T00:00:00Z", None),
        ("2026-02-01t00:00:00z", None),
        (None, None),
        (1769904000, None),
    ],
)
def test_rfc3339_ns(text: Any, expected: int | None) -> None:
    assert rfc3339_ns(text) == expected


def test_cache_key_ignores_now_between_instants() -> None:
    base = decision_cache_key(BASE_INPUT)
    assert decision_cache_key(make_input(now="2026-02-20T10:11:12.5Z")) == base
    assert decision_cache_key(make_input(now="2026-01-01T00:00:00Z")) == base
    assert decision_cache_key(make_input(now="2025-12-31T23:59:59Z")) != base
    assert decision_cache_key(make_input(now="2026-03-01T00:00:00Z")) != base
    assert decision_cache_key(make_input(purpose="marketing")) != base


def test_cache_key_falls_back_to_full_digest_for_unreadable_instants() -> None:
    odd = make_input(consent={"expires_at": "2026-02-30T00:00:00Z"})
    assert decision_cache_key(odd) == canonical_digest(odd)
    bad_now = make_input(now="yesterday")
    assert decision_cache_key(bad_now) == canonical_digest(bad_now)


def test_lru_is_bounded() -> None:
    cache = DecisionCache(max_entries=2)
    cache.put("r", "a", _decision())
    cache.put("r", "b", _decision())
    assert cache.get("r", "a") is not None  # a is now the most recent
    cache.put("r", "c", _decision())
    assert len(cache) == 2
    assert cache.get("r", "b") is None
    assert cache.get("r", "a") is not None
    assert cache.get("other-revision", "a") is None
    assert (cache.hits, cache.misses) == (2, 2)
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError):
        DecisionCache(0)


class CountingEngine:
    def __init__(self, inner: EmbeddedPolicyEngine) -> None:
        self.inner = inner
        self.calls = 0

    @property
    def revision(self) -> str:
        return self.inner.revision

    def ready(self) -> bool:
        return self.inner.ready()

    def decide(self, policy_input: Any) -> Decision:
        self.calls += 1
        return self.inner.decide(policy_input)


def test_cached_engine_hits_and_issues_new_ids(engine: EmbeddedPolicyEngine) -> None:
    counting = CountingEngine(engine)
    cached = CachedPolicyEngine(counting, DecisionCache(16))
    first = cached.decide(BASE_INPUT)
    second = cached.decide(make_input(now="2026-02-02T00:00:00Z"))
    assert counting.calls == 1
    assert second.decision_id != first.decision_id
    assert (second.allow, second.obligations, second.reasons) == (
        first.allow,
        first.obligations,
        first.reasons,
    )
    assert cached.revision == engine.revision and cached.ready()
    cached.decide(make_input(now="2026-03-02T00:00:00Z"))
    assert counting.calls == 2


_INSTANTS = st.integers(min_value=0, max_value=6).map(
    lambda days: datetime(2026, 1, 30, tzinfo=UTC) + timedelta(days=days)
)
_OFFSETS = st.sampled_from([timedelta(0), timedelta(seconds=1), timedelta(seconds=-1)])


def _text(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def shared_cache(engine: EmbeddedPolicyEngine) -> CachedPolicyEngine:
    return CachedPolicyEngine(engine, DecisionCache(10_000))


@settings(max_examples=200, deadline=None)
@given(
    now=_INSTANTS,
    now_offset=_OFFSETS,
    valid_from=_INSTANTS,
    valid_until=_INSTANTS,
    expires_at=st.one_of(st.none(), _INSTANTS),
)
def test_cached_decisions_equal_uncached_across_time(
    engine: EmbeddedPolicyEngine,
    shared_cache: CachedPolicyEngine,
    now: datetime,
    now_offset: timedelta,
    valid_from: datetime,
    valid_until: datetime,
    expires_at: datetime | None,
) -> None:
    """Near every threshold, a shared cache never answers what the policy would not."""
    cached = shared_cache
    policy_input = make_input(
        now=_text(now + now_offset),
        agreement={"valid_from": _text(valid_from), "valid_until": _text(valid_until)},
        consent={"expires_at": None if expires_at is None else _text(expires_at)},
    )
    hit = cached.decide(policy_input)
    fresh = engine.decide(policy_input)
    assert (hit.allow, dict(hit.obligations), hit.reasons) == (
        fresh.allow,
        dict(fresh.obligations),
        fresh.reasons,
    )
