"""``input.times_ns``: the embedded engine parses the timestamps a decision compares in Python
(``hub.policy.embedded.instant_ns``) and the policy looks them up instead of parsing them.

A parse that disagreed with regorus' ``time.parse_rfc3339_ns`` would move an expiry or an
agreement's period; these tests compare the two over generated strings.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import regorus
from hypothesis import event, given, settings
from hypothesis import strategies as st

from hub.policy import EmbeddedPolicyEngine
from hub.policy.embedded import instant_ns
from tests.policy.conftest import BASE_INPUT


@cache
def _parser() -> Any:
    # Built and used on pytest's main thread only (regorus engines are unsendable).
    engine = regorus.Engine()
    engine.add_policy(
        "parse.rego",
        (
            "package parse\n\n"
            "agrees if {\n"
            "\tns := time.parse_rfc3339_ns(input.text)\n"
            "\tns == input.ns\n"
            "\tns < input.next\n"
            "\tinput.next - ns == 1\n"
            "}\n"
        ),
    )
    return engine


def _regorus_agrees(text: str, parsed: int) -> bool:
    """Rego itself compares: ``parsed`` (a JSON number, as in ``input.times_ns``) equals what
    regorus parses, and orders the same against a neighbour."""
    engine = _parser()
    engine.set_input_json(json.dumps({"text": text, "ns": parsed, "next": parsed + 1}))
    try:
        return engine.eval_rule("data.parse.agrees") is True
    except RuntimeError:
        return False


def _two(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda value: f"{value:02d}")


@st.composite
def _timestamps(draw: st.DrawFn) -> str:
    year = draw(
        st.sampled_from([0, 1, 1677, 1678, 1969, 1970, 2026, 2262, 2263, 9999])
        | st.integers(0, 9999)
    )
    date = f"{year:04d}-{draw(_two(0, 13))}-{draw(_two(0, 32))}"
    time = f"{draw(_two(0, 25))}:{draw(_two(0, 61))}:{draw(_two(0, 61))}"
    digits = draw(st.text("0123456789", min_size=1, max_size=10))
    fraction = draw(st.sampled_from(["", f".{digits}"]))
    sign = draw(st.sampled_from("+-"))
    offset = f"{sign}{draw(_two(0, 25))}:{draw(_two(0, 61))}"
    zone = draw(st.sampled_from(["Z", "z", "+00:00", "-00:00", offset]))
    return f"{date}T{time}{fraction}{zone}"


@settings(max_examples=3000, deadline=None)
@given(_timestamps())
def test_instant_ns_equals_regorus_parse_whenever_it_answers(text: str) -> None:
    parsed = instant_ns(text)
    event("parsed" if parsed is not None else "left to the policy")
    if parsed is not None:
        assert _regorus_agrees(text, parsed)


def test_instant_ns_examples() -> None:
    assert instant_ns("2026-02-01T08:00:00.5+08:00") == 1769904000500000000
    assert instant_ns("2262-04-11T23:47:16.854775807Z") == 2**63 - 1
    assert instant_ns("2262-04-11T23:47:16.854775808Z") is None
    assert instant_ns("2026-13-01T00:00:00Z") is None
    assert instant_ns("2016-12-31T23:59:60Z") is None
    assert instant_ns("2026-02-01") is None
    assert instant_ns("1969-12-31T23:59:59Z") is None


def test_the_policy_uses_the_instants_it_is_given(engine: EmbeddedPolicyEngine) -> None:
    policy_input = json.loads(json.dumps(BASE_INPUT))
    assert engine.decide(policy_input).allow
    # A caller's own times_ns is taken as given (the embedded engine adds none then): a `now`
    # placed after the consent's expiry denies.
    expires = instant_ns(policy_input["consent"]["expires_at"])
    assert expires is not None
    policy_input["times_ns"] = {policy_input["now"]: expires}
    decision = engine.decide(policy_input)
    assert not decision.allow
    assert "consent.expired" in decision.reasons
