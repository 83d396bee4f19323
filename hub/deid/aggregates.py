"""k-anonymous aggregates: counts over generalised dimensions, small groups suppressed.

A group (one combination of dimension values) is published only if at least ``k`` records fall
in it. Suppressed groups are summed into one figure, published only when that sum is itself at
least ``k`` (otherwise it could be subtracted out of a total to single someone out), and never
broken down.

Dimension values are generalised before counting: dates to months, amounts to bands, addresses
to cities, coordinates to a 0.1 degree grid, birth dates to age bands. Categories that identify
a person or an account are refused as dimensions outright.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from hub.deid.transforms import apply_transform, city_from_address, date_to_month

#: Categories that may never be a dimension: their values single out people or accounts.
IDENTIFYING_CATEGORIES: Final = frozenset(
    {"identity_document", "vehicle_identifier", "financial_account", "free_text", "biometric"}
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
UNKNOWN: Final = "(unknown)"


@dataclass(frozen=True, slots=True)
class Group:
    values: tuple[str, ...]
    count: int


@dataclass(frozen=True, slots=True)
class KAnonymousCounts:
    dimensions: tuple[str, ...]
    k: int
    groups: tuple[Group, ...]
    total: int | None
    suppressed_groups: int
    suppressed_records: int | None


def refused_dimension(category: str, field: str) -> str | None:
    """Why a field cannot be a dimension, or ``None`` if it can."""
    if category in IDENTIFYING_CATEGORIES:
        return f"{field} ({category}) identifies people or accounts"
    if category == "identity" and "birth" not in field:
        return f"{field} ({category}) identifies people"
    if category == "contact" and "address" not in field:
        return f"{field} ({category}) identifies people"
    return None


def dimension_value(category: str, field: str, value: Any, *, as_of: date) -> str:
    """The generalised value a record contributes to one dimension."""
    if value is None:
        return UNKNOWN
    if isinstance(value, str) and "address" in field:
        return city_from_address(value) or UNKNOWN
    if isinstance(value, str) and _DATE.match(value):
        if category == "identity":
            band = apply_transform("generalize", category, value, field=field, as_of=as_of)
            return str(band) if band is not None else UNKNOWN
        return date_to_month(value) or UNKNOWN
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        band = apply_transform("generalize", category, value, field=field, as_of=as_of)
        return str(band) if band is not None else UNKNOWN
    return str(value)


def k_anonymous_counts(
    rows: Iterable[Sequence[str]], *, dimensions: Sequence[str], k: int
) -> KAnonymousCounts:
    """Count rows per combination of values; publish only groups of at least ``k``."""
    if k < 2:
        raise ValueError("k must be at least 2")
    counter: Counter[tuple[str, ...]] = Counter(tuple(r) for r in rows)
    kept = sorted(
        (Group(values, n) for values, n in counter.items() if n >= k), key=lambda g: g.values
    )
    small = [n for n in counter.values() if n < k]
    suppressed = sum(small)
    publish_suppressed = suppressed == 0 or suppressed >= k
    total = sum(counter.values())
    return KAnonymousCounts(
        dimensions=tuple(dimensions),
        k=k,
        groups=tuple(kept),
        total=total if publish_suppressed else None,
        suppressed_groups=len(small),
        suppressed_records=suppressed if publish_suppressed else None,
    )
