"""Every ``test_*`` rule of ``policies/**/*_test.rego`` as its own pytest item, via regorus."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from hub.policy import load_bundle
from hub.policy.rego import RegoTest, discover_tests, new_engine, run_test
from tests.policy.conftest import POLICIES_DIR

BUNDLE = load_bundle(POLICIES_DIR)
TESTS = discover_tests(BUNDLE)


@cache
def _compiled() -> Any:
    # Built and used on pytest's main thread only (regorus engines are unsendable).
    return new_engine(BUNDLE, with_tests=True)


def test_rego_tests_were_found() -> None:
    assert len(TESTS) >= 80
    packages = {test.rule.rsplit(".", 1)[0] for test in TESTS}
    under_test = {module.path.removesuffix(".rego") for module in BUNDLE.modules}
    with_tests = {test.path.removesuffix("_test.rego") for test in TESTS}
    assert under_test <= with_tests, "every policy module has a *_test.rego beside it"
    assert all(package.endswith("_test") for package in packages)


@pytest.mark.parametrize("rego_test", TESTS, ids=[t.rule.removeprefix("data.") for t in TESTS])
def test_rego(rego_test: RegoTest) -> None:
    result = run_test(_compiled().clone(), rego_test)
    assert result.passed, f"{rego_test.rule} ({rego_test.path}) failed: {result.error or 'false'}"


def test_every_violation_rule_is_tested() -> None:
    """Each reason id emitted by a policy module appears in some Rego test file.

    A reason id is any quoted ``area.reason`` string of a module: emitted by a ``contains``
    rule or listed in a table (``fields.reasons``, ``consent.status_reasons``)."""
    import re

    emitted = set()
    for module in BUNDLE.modules:
        emitted |= set(re.findall(r'"([a-z_]+\.[a-z_]+)"', module.text))
    tested = "\n".join(module.text for module in BUNDLE.tests)
    assert emitted, "no reason ids found"
    untested = sorted(reason for reason in emitted if f'"{reason}"' not in tested)
    assert untested == []
