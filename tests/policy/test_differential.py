"""Same input, same decision: embedded regorus vs the OPA REST engine (and the cache)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hub.policy import (
    CachedPolicyEngine,
    DecisionCache,
    EmbeddedPolicyEngine,
    OpaPolicyEngine,
    PolicyEvaluationError,
)
from tests.policy.servers import LoopbackServer
from tests.policy.strategies import coherent_inputs, policy_inputs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def opa(policy_server: LoopbackServer) -> OpaPolicyEngine:
    return OpaPolicyEngine(policy_server.url)


@pytest.fixture(scope="module")
def cached(engine: EmbeddedPolicyEngine) -> CachedPolicyEngine:
    return CachedPolicyEngine(engine, DecisionCache(100_000))


def _outcome(engine: Any, policy_input: dict[str, Any]) -> tuple[Any, ...]:
    try:
        decision = engine.decide(policy_input)
    except PolicyEvaluationError:
        return ("error",)
    return (decision.allow, dict(decision.obligations), decision.reasons)


#: 500 keep `make test` fast; `make soak` (or this variable) runs thousands.
EXAMPLES = int(os.environ.get("TOLLHOUSE_DIFFERENTIAL_EXAMPLES", "500"))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(policy_input=st.one_of(policy_inputs(), coherent_inputs()))
def test_embedded_opa_and_cached_agree(
    engine: EmbeddedPolicyEngine,
    opa: OpaPolicyEngine,
    cached: CachedPolicyEngine,
    policy_input: dict[str, Any],
) -> None:
    embedded = _outcome(engine, policy_input)
    event(f"allow={embedded[0]}")
    assert _outcome(opa, policy_input) == embedded
    assert _outcome(cached, policy_input) == embedded
    if embedded[0] is False:
        assert set(embedded[1].values()) <= {"drop"}
