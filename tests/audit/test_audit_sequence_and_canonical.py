"""The append path's shortcuts: indices remembered within a transaction (and savepoint), and
canonical bytes written by orjson where that is the RFC 8785 form."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from hub.audit import InvalidEventError, append_event, append_events, log_size
from hub.audit.events import canonicalize
from hub.audit.service import leaf_hashes
from tests.audit.audit_helpers import release_event

_keys = st.text(max_size=6) | st.sampled_from(["a", "b", "\ue000", "\U0001f600", "é", "A"])
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.sampled_from([2**53 - 1, -(2**53 - 1), 2**53, -(2**53)])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(event=st.dictionaries(_keys, _values, max_size=6))
def test_canonical_bytes_are_rfc8785(event: dict[str, Any]) -> None:
    event = {k: v for k, v in event.items() if k not in ("event_id", "index", "time")}
    doc = {**event, "event_id": "evt_x", "index": 7, "time": "2026-11-25T00:00:00.000000Z"}
    try:
        expected: bytes | None = rfc8785.dumps(doc)
    except (rfc8785.CanonicalizationError, TypeError, ValueError):
        expected = None
    if expected is None:
        with pytest.raises(InvalidEventError):
            canonicalize(event, event_id="evt_x", index=7, time=doc["time"])
    else:
        assert canonicalize(event, event_id="evt_x", index=7, time=doc["time"]) == expected


def test_indices_stay_gap_free_across_savepoints(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as s:
        assert append_event(s, release_event(0)).index == 0
        assert append_event(s, release_event(1)).index == 1
        nested = s.begin_nested()
        assert append_event(s, release_event(2)).index == 2
        nested.rollback()  # index 2 is free again
        assert append_event(s, release_event(3)).index == 2
        with s.begin_nested():
            assert [a.index for a in append_events(s, [release_event(4), release_event(5)])] == [
                3,
                4,
            ]
        assert append_event(s, release_event(6)).index == 5
        s.begin_nested().rollback()  # a savepoint with no append in it
        assert append_event(s, release_event(7)).index == 6
        s.rollback()  # and the whole transaction: nothing was stored
    with session_factory() as s:
        assert log_size(s) == 0
        assert append_event(s, release_event(8)).index == 0
        s.commit()
        assert append_event(s, release_event(9)).index == 1  # a new transaction reads again
        s.commit()
        assert len(leaf_hashes(s, 0, 2)) == 2


def test_a_refused_event_does_not_advance_the_index(session: Session) -> None:
    assert append_event(session, release_event(0)).index == 0
    with pytest.raises(InvalidEventError):
        append_events(session, [release_event(1), {**release_event(2), "big": "x" * 300_000}])
    assert append_event(session, release_event(3)).index == 1
