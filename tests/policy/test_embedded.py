from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.policy import (
    ACTIONS,
    Decision,
    EmbeddedPolicyEngine,
    PolicyEngine,
    PolicyEvaluationError,
    PolicyLoadError,
    PolicyValidationError,
    load_bundle,
    load_policy_engine,
)
from tests.policy.conftest import BASE_INPUT, make_input


def test_allows_the_base_input_with_obligations(engine: EmbeddedPolicyEngine) -> None:
    decision = engine.decide(BASE_INPUT)
    assert decision.allow is True
    assert dict(decision.obligations) == {
        "name": "keep",
        "vin": "keep",
        "income": "keep",
        "card": "encrypt_for_recipient",
        "id_number": "encrypt_for_recipient",
    }
    assert decision.reasons == ()
    assert sorted(decision.released_fields()) == ["card", "id_number", "income", "name", "vin"]


def test_decision_shape(engine: EmbeddedPolicyEngine, policies_dir: Path) -> None:
    first, second = engine.decide(BASE_INPUT), engine.decide(BASE_INPUT)
    assert isinstance(engine, PolicyEngine)
    assert re.fullmatch(r"dec_[A-Za-z0-9_-]{16}", first.decision_id)
    assert first.decision_id != second.decision_id
    assert re.fullmatch(r"[0-9a-f]{64}", first.policy_revision)
    assert first.policy_revision == engine.revision == load_bundle(policies_dir).revision
    assert set(first.obligations.values()) <= ACTIONS
    with pytest.raises(TypeError):
        first.obligations["name"] = "drop"  # type: ignore[index]


@pytest.mark.parametrize(
    ("sections", "reason"),
    [
        ({"purpose": "curiosity"}, "purpose.unknown"),
        ({"partner": {"role": "broker"}}, "role.unknown"),
        ({"partner": {"role": "dealer"}}, "purpose.not_allowed_for_role"),
        ({"agreement": {"status": "terminated"}}, "agreement.inactive"),
        ({"agreement": {"recipient": "ptn_other"}}, "agreement.not_recipient"),
        ({"now": "2026-03-01T00:00:00Z"}, "agreement.expired"),
        ({"consent": {"status": "withdrawn"}}, "consent.withdrawn"),
        ({"consent": {"status": "paused"}}, "consent.paused"),
        ({"consent": {"status": "missing"}}, "consent.missing"),
        ({"consent": {"expires_at": "2026-01-15T00:00:00Z"}}, "consent.expired"),
        ({"subject": {"jurisdiction": "DE"}}, "cross_border.no_consent"),
        ({"dataset": {"id": "d", "fields": {"face": "faceprint"}}}, "category.unknown"),
        ({"now": "yesterday"}, "input.invalid_now"),
    ],
)
def test_denies_by_default(
    engine: EmbeddedPolicyEngine, sections: dict[str, object], reason: str
) -> None:
    decision = engine.decide(make_input(**sections))
    assert decision.allow is False
    assert reason in decision.reasons
    assert set(decision.obligations.values()) <= {"drop"}


def test_empty_input_is_denied(engine: EmbeddedPolicyEngine) -> None:
    decision = engine.decide({})
    assert decision.allow is False
    assert dict(decision.obligations) == {}
    assert {"purpose.unknown", "consent.missing", "agreement.missing"} <= set(decision.reasons)


def test_identity_not_needed_deidentifies(engine: EmbeddedPolicyEngine) -> None:
    decision = engine.decide(
        make_input(
            partner={"role": "regulator", "id": "ptn_reg"},
            purpose="regulatory_reporting",
            agreement={
                "recipient": "ptn_reg",
                "purpose": "regulatory_reporting",
                "fields": ["model", "loan_status", "city", "name"],
            },
            dataset={
                "id": "ds",
                "fields": {
                    "model": "vehicle",
                    "loan_status": "loan",
                    "city": "location_coarse",
                    "name": "identity",
                },
            },
            consent={"categories": ["vehicle", "loan", "location_coarse", "identity"]},
        )
    )
    assert decision.allow is True
    assert dict(decision.obligations) == {
        "model": "keep",
        "loan_status": "keep",
        "city": "keep",
        "name": "drop",
    }
    assert decision.reasons == ("minimisation.field_not_needed",)


def test_accepts_aware_datetimes(engine: EmbeddedPolicyEngine) -> None:
    decision = engine.decide(make_input(now=datetime(2026, 2, 1, tzinfo=UTC)))
    assert decision.allow is True


def test_naive_datetime_is_not_a_timestamp(engine: EmbeddedPolicyEngine) -> None:
    decision = engine.decide(make_input(now=datetime(2026, 2, 1)))  # noqa: DTZ001
    assert decision.allow is False
    assert "input.invalid_now" in decision.reasons


def test_non_json_input_raises(engine: EmbeddedPolicyEngine) -> None:
    with pytest.raises(PolicyEvaluationError):
        engine.decide(make_input(now=object()))


def test_unparseable_timestamp_of_the_right_shape_raises_and_engine_recovers(
    engine: EmbeddedPolicyEngine,
) -> None:
    with pytest.raises(PolicyEvaluationError) as caught:
        engine.decide(make_input(now="2026-13-45T00:00:00Z"))
    assert "Stack backtrace" not in str(caught.value)
    assert engine.decide(BASE_INPUT).allow is True


def test_explain(engine: EmbeddedPolicyEngine) -> None:
    explanation = engine.explain(make_input(consent={"sensitive": False}))
    assert explanation["decision"]["allow"] is True
    assert explanation["field_reasons"]["card"] == ["sensitive.no_separate_consent"]
    assert explanation["fair_use"] == {
        "fetches_per_day": 5000,
        "max_data_range_days": 730,
        "max_duration_days": 90,
    }


def test_ready_and_validate(engine: EmbeddedPolicyEngine) -> None:
    assert engine.ready() is True
    results = engine.validate()
    assert len(results) >= 80
    assert all(result.passed for result in results)


def test_decides_on_many_threads(engine: EmbeddedPolicyEngine) -> None:
    expected = engine.decide(BASE_INPUT)
    threads: set[int] = set()

    def decide(_: int) -> Decision:
        threads.add(threading.get_ident())
        return engine.decide(BASE_INPUT)

    with ThreadPoolExecutor(max_workers=4) as pool:
        decisions = list(pool.map(decide, range(200)))
    assert len(threads) > 1
    assert all(d.obligations == expected.obligations for d in decisions)
    assert len({d.decision_id for d in decisions}) == 200


def test_missing_directory_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError):
        EmbeddedPolicyEngine(tmp_path / "nowhere")


def test_syntax_error_is_a_load_error(policies_copy: Path) -> None:
    (policies_copy / "tollhouse" / "broken.rego").write_text("package tollhouse.broken\nx := {\n")
    with pytest.raises(PolicyLoadError, match="does not compile"):
        EmbeddedPolicyEngine(policies_copy)


def test_bad_data_document_is_a_load_error(policies_copy: Path) -> None:
    (policies_copy / "taxonomy" / "roles" / "data.json").write_text("[oops")
    with pytest.raises(PolicyLoadError):
        EmbeddedPolicyEngine(policies_copy)


def test_failing_rego_test_fails_validation(policies_copy: Path) -> None:
    rego = policies_copy / "tollhouse" / "consent" / "consent.rego"
    rego.write_text(rego.read_text().replace('"paused"', '"on_hold"', 1))
    engine = EmbeddedPolicyEngine(policies_copy)
    with pytest.raises(PolicyValidationError) as caught:
        engine.validate()
    assert "data.tollhouse.consent_test.test_status_reasons" in caught.value.failed_tests


def test_revision_is_stable_and_content_addressed(policies_copy: Path) -> None:
    first = load_bundle(policies_copy).revision
    assert load_bundle(policies_copy).revision == first
    (policies_copy / "tollhouse" / "release" / "extra_test.rego").write_text(
        "package tollhouse.extra_test\n\ntest_nothing if true\n"
    )
    assert load_bundle(policies_copy).revision == first, "tests do not change the revision"
    data = policies_copy / "taxonomy" / "roles" / "data.json"
    data.write_text(data.read_text().replace('"regulator"', '"regulator", "broker"'))
    assert load_bundle(policies_copy).revision != first


def test_load_policy_engine_embedded(policies_dir: Path) -> None:
    engine = load_policy_engine(kind="embedded", policies_dir=policies_dir)
    assert engine.ready()
    assert engine.decide(BASE_INPUT).allow is True


def test_load_policy_engine_rejects_bad_settings(policies_dir: Path) -> None:
    with pytest.raises(PolicyLoadError):
        load_policy_engine(kind="opa", policies_dir=policies_dir, opa_url=None)
    with pytest.raises(PolicyLoadError):
        load_policy_engine(kind="sidecar", policies_dir=policies_dir)  # type: ignore[arg-type]


def _engines_reachable_from(error: BaseException) -> list[object]:
    """regorus engines that an exception keeps alive through its tracebacks' frames."""
    found: list[object] = []
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        tb = current.__traceback__
        while tb is not None:
            found += [v for v in tb.tb_frame.f_locals.values() if type(v).__name__ == "Engine"]
            tb = tb.tb_next
        pending += [current.__cause__, current.__context__]
    return found


def test_a_failed_evaluation_does_not_carry_its_engine_away(
    engine: EmbeddedPolicyEngine,
) -> None:
    # An engine is unsendable: if an exception kept it alive, the cyclic GC could drop it on
    # another thread, where it leaks with an "unsendable" warning.
    with pytest.raises(PolicyEvaluationError) as caught:
        engine._evaluate(BASE_INPUT, "not a rule path", as_json=False)
    assert _engines_reachable_from(caught.value) == []


def test_a_refused_policy_does_not_carry_its_engine_away(policies_copy: Path) -> None:
    (policies_copy / "broken.rego").write_text("package broken\nallow if {", encoding="utf-8")
    with pytest.raises(PolicyLoadError) as caught:
        EmbeddedPolicyEngine(policies_copy)
    assert _engines_reachable_from(caught.value) == []


def test_decisions_load_only_the_modules_they_can_reach(policies_copy: Path) -> None:
    """A decision engine leaves out ``tollhouse.explain`` (and any module nothing on the
    decision path refers to); it follows references transitively, and keeps everything when
    a reached module indexes ``data`` dynamically."""
    from hub.policy.rego import DECISION_RULE, EXPLAIN_RULE, modules_for

    def paths(rule: str) -> set[str]:
        return {module.path for module in modules_for(load_bundle(policies_copy), rule)}

    every = {module.path for module in load_bundle(policies_copy).modules}
    assert paths(DECISION_RULE) == every - {"tollhouse/explain/explain.rego"}
    assert paths(EXPLAIN_RULE) == every
    assert paths("data.tollhouse.lib.timestamps.now_ns") == {"tollhouse/lib/timestamps.rego"}

    extra = policies_copy / "tollhouse" / "extra"
    extra.mkdir()
    (extra / "a.rego").write_text("package tollhouse.extra.a\n\nx := data.tollhouse.extra.b.y\n")
    (extra / "b.rego").write_text("package tollhouse.extra.b\n\ny := 1\n")
    assert "tollhouse/extra/a.rego" not in paths(DECISION_RULE)
    release = policies_copy / "tollhouse" / "release" / "release.rego"
    release.write_text(release.read_text() + "\nextra := data.tollhouse.extra.a.x\n")
    assert {"tollhouse/extra/a.rego", "tollhouse/extra/b.rego"} <= paths(DECISION_RULE)
    assert "tollhouse/explain/explain.rego" not in paths(DECISION_RULE)
    (extra / "b.rego").write_text('package tollhouse.extra.b\n\ny := data["tollhouse"]\n')
    assert paths(DECISION_RULE) == every | {"tollhouse/extra/a.rego", "tollhouse/extra/b.rego"}


def test_a_broken_module_off_the_decision_path_still_fails_the_load(
    policies_copy: Path,
) -> None:
    explain = policies_copy / "tollhouse" / "explain" / "explain.rego"
    explain.write_text(explain.read_text() + "\nbroken := {\n")
    with pytest.raises(PolicyLoadError, match="does not compile"):
        EmbeddedPolicyEngine(policies_copy)
