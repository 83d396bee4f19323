"""The decision's common-case path: each package's ``clear`` implies it has no violation.

``release.request_violations`` is the empty set when every ``clear`` holds, and the union of
the packages' ``violations`` otherwise (``policies/tollhouse/release/release.rego``). A
``clear`` that held while its package had a violation would allow what the violation denies;
these tests check the implication and the resulting set over generated inputs.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hub.policy import load_bundle
from hub.policy.rego import new_engine
from tests.policy.conftest import BASE_INPUT, POLICIES_DIR, make_input
from tests.policy.strategies import coherent_inputs, policy_inputs

PACKAGES = ("agreement", "consent", "purpose", "cross_border")
EXAMPLES = int(os.environ.get("TOLLHOUSE_DIFFERENTIAL_EXAMPLES", "500"))


@cache
def _compiled() -> Any:
    # Built and used on pytest's main thread only (regorus engines are unsendable).
    return new_engine(load_bundle(POLICIES_DIR))


def _evaluate(policy_input: dict[str, Any], rules: list[str]) -> list[Any] | None:
    """Each rule's value (None when undefined), or None when the input is an evaluation error."""
    engine = _compiled().clone()
    engine.set_input(policy_input)
    try:
        return [engine.eval_rule(f"data.tollhouse.{rule}") for rule in rules]
    except RuntimeError:
        return None


def _rules() -> list[str]:
    return [
        "release.request_violations",
        "release.input_violations",
        *(f"{package}.{rule}" for package in PACKAGES for rule in ("clear", "violations")),
    ]


def test_the_base_input_takes_the_common_path() -> None:
    values = _evaluate(BASE_INPUT, [f"{package}.clear" for package in PACKAGES])
    assert values == [True] * len(PACKAGES)


@pytest.mark.parametrize(
    ("sections", "package"),
    [
        ({"agreement": {"status": "terminated"}}, "agreement"),
        ({"now": "2026-03-01T00:00:00Z"}, "agreement"),
        ({"consent": {"expires_at": "2026-01-15T00:00:00Z"}}, "consent"),
        ({"consent": {"expires_at": "2026-12-31"}}, "consent"),
        ({"consent": {"starts_at": "2025-01-01T00:00:00Z"}}, "purpose"),
        ({"request": {"fetches_today": 5000}}, "purpose"),
        ({"subject": {"jurisdiction": "DE"}}, "cross_border"),
    ],
)
def test_a_violation_fails_its_package_clear(sections: dict[str, Any], package: str) -> None:
    values = _evaluate(make_input(**sections), [f"{package}.clear", f"{package}.violations"])
    assert values is not None
    clear, violations = values
    assert violations, "the example must violate"
    assert clear is None


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(policy_input=st.one_of(policy_inputs(), coherent_inputs()))
def test_clear_implies_no_violation(policy_input: dict[str, Any]) -> None:
    values = _evaluate(policy_input, _rules())
    if values is None:
        event("evaluation error")
        return
    request_violations, input_violations, *per_package = values
    union = set(input_violations)
    for package, clear, violations in zip(
        PACKAGES, per_package[::2], per_package[1::2], strict=True
    ):
        assert clear in (True, None)
        if clear:
            assert violations == set(), f"{package}.clear holds with violations {violations}"
        union |= violations
    event(f"request violations: {'none' if not union else 'some'}")
    assert request_violations == union
