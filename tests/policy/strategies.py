"""Hypothesis strategies for policy inputs: mostly plausible, sometimes broken."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from tests.policy.conftest import POLICIES_DIR

_TAXONOMY = POLICIES_DIR / "taxonomy"
PURPOSES = sorted(json.loads((_TAXONOMY / "purposes" / "data.json").read_text()))
CATEGORIES = sorted(json.loads((_TAXONOMY / "categories" / "data.json").read_text()))
ROLES = sorted(json.loads((_TAXONOMY / "roles" / "data.json").read_text()))
STATUSES = ["active", "paused", "withdrawn", "revoked", "expired", "missing"]
PARTNERS = ["ptn_a", "ptn_b"]
JURISDICTIONS = ["CN", "DE"]
FIELD_NAMES = [f"f{i}" for i in range(8)]

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def timestamps() -> st.SearchStrategy[Any]:
    moments = st.integers(min_value=-400, max_value=400).map(
        lambda days: (_EPOCH + timedelta(days=days)).isoformat().replace("+00:00", "Z")
    )
    return st.one_of(
        moments,
        moments.map(lambda text: text.replace("Z", "+08:00")),
        st.sampled_from(["soon", "2026-02-01", None, 12]),
    )


def _maybe(key_strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(key_strategy, st.just(_ABSENT))


_ABSENT = object()


def _object(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {name: _maybe(strategy) if name != "_" else strategy for name, strategy in fields.items()}
    ).map(lambda d: {k: v for k, v in d.items() if v is not _ABSENT})


def policy_inputs() -> st.SearchStrategy[dict[str, Any]]:
    common = st.sampled_from
    categories = st.one_of(st.sampled_from(CATEGORIES), st.just("faceprint"))
    return _object(
        partner=_object(
            id=common(PARTNERS),
            role=st.one_of(common(ROLES), st.just("broker")),
            jurisdiction=common(JURISDICTIONS),
        ),
        purpose=st.one_of(common(PURPOSES), st.just("curiosity")),
        agreement=_object(
            id=st.just("agr_1"),
            status=common(["active", "active", "suspended"]),
            recipient=common(PARTNERS),
            purpose=common(PURPOSES),
            valid_from=timestamps(),
            valid_until=timestamps(),
            fields=st.lists(common(FIELD_NAMES), unique=True),
            cross_border=st.booleans(),
        ),
        dataset=_object(
            id=st.just("ds_1"),
            provider=common(PARTNERS),
            fields=st.dictionaries(common(FIELD_NAMES), categories, max_size=8),
        ),
        consent=_object(
            status=st.one_of(common(STATUSES), st.just("bogus")),
            categories=st.lists(categories, unique=True),
            expires_at=timestamps(),
            sensitive=st.booleans(),
            cross_border=st.booleans(),
        ),
        subject=_object(jurisdiction=common(JURISDICTIONS)),
        now=timestamps(),
        request=_object(
            fetches_today=st.integers(min_value=0, max_value=60_000),
            data_range_days=st.integers(min_value=0, max_value=4000),
        ),
    )


_PURPOSE_DATA = json.loads((_TAXONOMY / "purposes" / "data.json").read_text())


@st.composite
def coherent_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """A plausible request for a real purpose, with a few things possibly wrong."""
    purpose = draw(st.sampled_from(PURPOSES))
    definition = _PURPOSE_DATA[purpose]
    role = draw(st.sampled_from(definition["roles"]))
    wanted = definition["categories"] * 4 + ["faceprint", "biometric", "free_text", "contact"]
    fields = draw(
        st.dictionaries(st.sampled_from(FIELD_NAMES), st.sampled_from(wanted), min_size=1)
    )
    names = sorted(fields)
    in_agreement = draw(st.one_of(st.just(names), st.lists(st.sampled_from(names), unique=True)))
    every_category = sorted(set(fields.values()))
    granted = draw(st.one_of(st.just(every_category), st.lists(st.sampled_from(every_category))))
    abroad = draw(st.sampled_from([False, False, False, True]))
    moment = draw(st.integers(min_value=0, max_value=30))
    until = draw(st.integers(min_value=1, max_value=120))
    return {
        "partner": {"id": "ptn_a", "role": role, "jurisdiction": "DE" if abroad else "CN"},
        "purpose": purpose,
        "agreement": {
            "id": "agr_1",
            "status": draw(st.sampled_from(["active"] * 5 + ["suspended"])),
            "recipient": draw(st.sampled_from(["ptn_a"] * 5 + ["ptn_b"])),
            "valid_from": "2026-01-01T00:00:00Z",
            "valid_until": _day(until),
            "fields": in_agreement,
            "cross_border": draw(st.booleans()),
        },
        "dataset": {"id": "ds_1", "provider": "ptn_b", "fields": fields},
        "consent": {
            "status": draw(st.sampled_from(["active"] * 5 + STATUSES)),
            "categories": granted,
            "expires_at": draw(st.one_of(st.none(), st.integers(0, 120).map(_day))),
            "sensitive": draw(st.sampled_from([True, True, False])),
            "cross_border": draw(st.booleans()),
        },
        "subject": {"jurisdiction": "CN"},
        "now": _day(moment),
    }


def _day(days: int) -> str:
    return (_EPOCH + timedelta(days=days)).isoformat().replace("+00:00", "Z")
