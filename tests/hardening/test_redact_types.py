"""The redaction processor's shortcuts (strings scrubbed directly, numbers and None left as they
are) give what cleaning every value gives."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hub.observability import SENSITIVE_KEYS, _clean, redact

_TEXT = st.text(alphabet=list("0123456789XABHJNPRZ@.-eyJ {}a") + ["一"], max_size=30)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)
_KEYS = st.sampled_from(["event", "route", "status", "Token", "email", "request_id", "x"]) | _TEXT


def _every_value_cleaned(event: dict[str, Any]) -> dict[str, Any]:
    return {k: "[redacted]" if k.lower() in SENSITIVE_KEYS else _clean(v) for k, v in event.items()}


@given(st.dictionaries(_KEYS, _VALUES, max_size=8))
def test_same_as_cleaning_every_value(event: dict[str, Any]) -> None:
    expected = _every_value_cleaned(event)
    result = dict(redact(None, "info", dict(event)))
    assert result == expected
    assert list(result) == list(expected)


def test_a_request_line() -> None:
    event = {"route": "/v1/x/{id}", "status": 200, "duration_ms": 1.5, "vin": "x", "n": None}
    assert redact(None, "info", event) == {
        "route": "/v1/x/{id}",
        "status": 200,
        "duration_ms": 1.5,
        "vin": "[redacted]",
        "n": None,
    }
    assert redact(None, "info", {"detail": "mobile 13812345678"}) == {"detail": "mobile [mobile]"}
