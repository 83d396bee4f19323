"""The log scrubber's pre-check skips only strings that no scrub pattern could change."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from hub.observability import _SCRUB, _scrub

# Characters the patterns care about, so that generated strings often come close to a match.
_ALPHABET = st.sampled_from(list("0123456789XxABHJNPRZIOQaz@.-_+ 86eyJ/{}") + ["一", "١"])


def _scrub_every_pattern(value: str) -> str:
    for pattern, replacement in _SCRUB:
        value = pattern.sub(replacement, value)
    return value


@given(st.text(alphabet=_ALPHABET, max_size=60))
@example("/v1/agreements/{agreement_id}/records/{record_key}")
@example("LSVAU2180N2183294")  # a VIN
@example("11010519491231002X")  # a PRC ID number
@example("+86 13812345678")
@example("a.b@example.cn")
@example("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln")
@example("١٣٨١٢٣٤٥٦٧٨")  # Arabic-Indic digits are \\d too
def test_same_result_as_every_pattern(value: str) -> None:
    assert _scrub(value) == _scrub_every_pattern(value)


def test_sensitive_values_are_still_scrubbed() -> None:
    assert _scrub("vin LSVAU2180N2183294, mobile 13812345678") == "vin [vin], mobile [mobile]"
