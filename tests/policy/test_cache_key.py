"""The decision cache's own key (canonical bytes, no digest) and the shortcuts of a hit."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from hub.policy import (
    CachedPolicyEngine,
    DecisionCache,
    EmbeddedPolicyEngine,
    PolicyEvaluationError,
    decision_cache_key,
)
from hub.policy.cache import _fast_key, _next_decision_id
from hub.policy.interfaces import new_decision_id
from tests.policy.conftest import BASE_INPUT, make_input

VARIANTS: list[dict[str, Any]] = [
    BASE_INPUT,
    make_input(now="2026-02-20T10:11:12.5Z"),
    make_input(now="2026-01-01T00:00:00Z"),
    make_input(now="2025-12-31T23:59:59Z"),
    make_input(now="2026-03-01T00:00:00Z"),
    make_input(purpose="marketing"),
    make_input(consent={"expires_at": "2026-02-30T00:00:00Z"}),
    make_input(now="yesterday"),
    make_input(now={"after": [True, False, False]}),
    make_input(subject={"jurisdiction": "US"}),
    make_input(consent={"sensitive": 1}),
    make_input(consent={"sensitive": True}),
]


def _literal_reduced_now(policy_input: dict[str, Any]) -> bool:
    return isinstance(policy_input["now"], dict)


@pytest.mark.parametrize("a", range(len(VARIANTS)))
@pytest.mark.parametrize("b", range(len(VARIANTS)))
def test_fast_key_groups_inputs_as_the_digest_does(a: int, b: int) -> None:
    """For inputs built in one key order (as the hub builds them), equal keys exactly when the
    digests are equal, except that the digest let an input whose ``now`` is literally
    ``{"after": [...]}`` collide with a reduced one; the key does not."""
    x, y = VARIANTS[a], VARIANTS[b]
    same_digest = decision_cache_key(x) == decision_cache_key(y)
    same_key = _fast_key(x) == _fast_key(y)
    if _literal_reduced_now(x) != _literal_reduced_now(y):
        assert not same_key
    else:
        assert same_key == same_digest


def test_a_literal_reduced_now_never_shares_a_key_with_a_real_instant() -> None:
    literal = dict(BASE_INPUT, now={"after": [True, False, False]})
    assert decision_cache_key(literal) == decision_cache_key(BASE_INPUT)  # the digest's collision
    assert _fast_key(literal) != _fast_key(BASE_INPUT)


def test_a_hit_is_the_cached_decision_with_a_new_id(engine: EmbeddedPolicyEngine) -> None:
    cached = CachedPolicyEngine(engine, DecisionCache(16))
    first = cached.decide(BASE_INPUT)
    hits = [cached.decide(make_input(now="2026-02-02T00:00:00Z")) for _ in range(300)]
    assert cached.cache.hits == 300
    ids = {first.decision_id, *(hit.decision_id for hit in hits)}
    assert len(ids) == 301
    for hit in hits[:3]:
        assert dataclasses.replace(hit, decision_id=first.decision_id) == first
        with pytest.raises(dataclasses.FrozenInstanceError):
            hit.allow = not hit.allow  # type: ignore[misc]


def test_pooled_ids_have_the_form_of_new_decision_id() -> None:
    shape = re.compile(r"^dec_[A-Za-z0-9_-]{16}$")
    assert shape.match(new_decision_id())
    ids = [_next_decision_id() for _ in range(1000)]
    assert all(shape.match(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_never_reuses_pooled_ids() -> None:
    import os

    parent_next = _next_decision_id()  # the pool now holds ids drawn in this process
    assert parent_next
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, _next_decision_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child_id = os.read(read, 64).decode()
    assert child_id != _next_decision_id()


def test_the_key_is_the_evaluated_json_in_the_inputs_own_order(
    engine: EmbeddedPolicyEngine,
) -> None:
    """Same content in another key order: another key (a miss), never another decision."""
    reordered = dict(reversed(list(BASE_INPUT.items())))
    assert reordered == BASE_INPUT
    assert _fast_key(reordered) != _fast_key(BASE_INPUT)
    cached = CachedPolicyEngine(engine, DecisionCache(16))
    first, second = cached.decide(BASE_INPUT), cached.decide(reordered)
    assert (cached.cache.hits, cached.cache.misses) == (0, 2)
    assert dataclasses.replace(second, decision_id=first.decision_id) == first


def test_an_input_that_is_not_json_is_refused_not_raised_as_type_error(
    engine: EmbeddedPolicyEngine,
) -> None:
    cached = CachedPolicyEngine(engine, DecisionCache(16))
    for bad in (make_input(now=object()), make_input(request={1: 2})):
        with pytest.raises(PolicyEvaluationError):
            cached.decide(bad)
    assert len(cached.cache) == 0
