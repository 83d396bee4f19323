from __future__ import annotations

from pathlib import Path

import pytest

from hub.policy import PolicyLoadError, PolicyStore, PolicyValidationError
from tests.policy.conftest import BASE_INPUT


def _rename_reason(policies: Path, old: str, new: str) -> None:
    rego = policies / "tollhouse" / "consent" / "consent.rego"
    text = rego.read_text()
    assert old in text, f"{old!r} is not in consent.rego: the test would change nothing"
    rego.write_text(text.replace(old, new))


def test_reload_without_changes_is_a_no_op(policies_copy: Path) -> None:
    store = PolicyStore(policies_copy)
    outcome = store.reload()
    assert not outcome.changed
    assert outcome.revision == store.revision


def test_reload_swaps_in_a_valid_change(policies_copy: Path) -> None:
    store = PolicyStore(policies_copy)
    before = store.revision
    purposes = policies_copy / "taxonomy" / "purposes" / "data.json"
    purposes.write_text(purposes.read_text().replace("Register and service", "Register, service"))
    outcome = store.reload()
    assert outcome.changed and outcome.previous_revision == before
    assert outcome.tests_run >= 80
    assert store.revision == outcome.revision != before
    assert store.decide(BASE_INPUT).policy_revision == outcome.revision


def test_broken_policy_never_replaces_a_working_one(policies_copy: Path) -> None:
    store = PolicyStore(policies_copy)
    before = store.revision
    (policies_copy / "tollhouse" / "oops.rego").write_text("package tollhouse.oops\nx := \n")
    with pytest.raises(PolicyLoadError):
        store.reload()
    assert store.revision == before
    assert store.decide(BASE_INPUT).allow is True


def test_policy_failing_its_tests_is_refused(policies_copy: Path) -> None:
    store = PolicyStore(policies_copy)
    before = store.revision
    # Compiles, but now a withdrawn consent would not be denied: the Rego tests catch it.
    _rename_reason(policies_copy, '"withdrawn": "consent.withdrawn",', "")
    with pytest.raises(PolicyValidationError) as caught:
        store.reload()
    assert caught.value.failed_tests
    assert store.revision == before
    assert store.ready()


def test_store_refuses_to_start_on_a_failing_bundle(policies_copy: Path) -> None:
    _rename_reason(policies_copy, '"paused"', '"on_hold"')
    with pytest.raises(PolicyValidationError):
        PolicyStore(policies_copy)


def test_explain_through_the_store(policies_copy: Path) -> None:
    store = PolicyStore(policies_copy)
    assert store.explain(BASE_INPUT)["decision"]["allow"] is True
