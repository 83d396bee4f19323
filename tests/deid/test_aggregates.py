"""k-anonymity: no published group is smaller than k, and suppressed counts cannot be
subtracted out of the total to reveal a small group."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.deid.aggregates import dimension_value, k_anonymous_counts, refused_dimension

rows = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(["x", "y", "z"])),
    max_size=300,
)


@given(rows=rows, k=st.integers(min_value=2, max_value=25))
def test_no_published_group_is_smaller_than_k(rows: list[tuple[str, str]], k: int) -> None:
    result = k_anonymous_counts(rows, dimensions=("p", "q"), k=k)
    assert all(group.count >= k for group in result.groups)
    published = sum(g.count for g in result.groups)
    if result.total is not None:
        assert result.suppressed_records is not None
        assert result.total == published + result.suppressed_records
        assert result.suppressed_records == 0 or result.suppressed_records >= k
    else:
        assert result.suppressed_records is None


def test_groups_are_exact_where_published() -> None:
    data = [("a", "x")] * 12 + [("b", "x")] * 3
    result = k_anonymous_counts(data, dimensions=("p", "q"), k=10)
    assert [(g.values, g.count) for g in result.groups] == [(("a", "x"), 12)]
    assert result.total is None and result.suppressed_groups == 1


@pytest.mark.parametrize(
    ("category", "field", "refused"),
    [
        ("identity_document", "id_number", True),
        ("vehicle_identifier", "vin", True),
        ("identity", "applicant_name", True),
        ("identity", "birth_date", False),
        ("contact", "mobile", True),
        ("contact", "address", False),
        ("loan", "amount_cny", False),
        ("free_text", "remarks", True),
    ],
)
def test_identifying_dimensions_are_refused(category: str, field: str, refused: bool) -> None:
    assert (refused_dimension(category, field) is not None) is refused


@pytest.mark.parametrize(
    ("category", "field", "value", "expected"),
    [
        ("loan", "applied_on", "2026-03-14", "2026-03"),
        ("contact", "address", "上海市静安区南京西路1号", "上海市"),
        ("loan", "outcome", "approved", "approved"),
        ("loan", "term_months", None, "(unknown)"),
    ],
)
def test_dimension_values_are_generalised(
    category: str, field: str, value: object, expected: str
) -> None:
    assert dimension_value(category, field, value, as_of=date(2026, 11, 25)) == expected
