"""The regorus side: building engines from a bundle and running the Rego unit tests.

``regorus.Engine`` is unsendable: using (or cloning) it from a thread other than the one that
created it raises ``pyo3_runtime.PanicException``, a ``BaseException``. Engines built here must
stay on the thread that called :func:`new_engine`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import regorus

from hub.policy.bundle import PolicyBundle, PolicyModule
from hub.policy.errors import PolicyLoadError

DECISION_RULE = "data.tollhouse.release.decision"
EXPLAIN_RULE = "data.tollhouse.explain.explanation"

_PACKAGE = re.compile(r"^package\s+([A-Za-z_][\w.]*)", re.MULTILINE)
_TEST_RULE = re.compile(r"^(test_\w+)\b", re.MULTILINE)
_DATA_REF = re.compile(r"\bdata((?:\.[A-Za-z_]\w*)+)")
_DYNAMIC_DATA = re.compile(r"\bdata\s*\[")


def engine_message(error: BaseException) -> str:
    """regorus errors end with a Rust backtrace; keep the part a human reads."""
    return str(error).split("Stack backtrace:", 1)[0].strip()


def new_engine(bundle: PolicyBundle, *, with_tests: bool = False, rule: str | None = None) -> Any:
    """A regorus engine holding the bundle's modules and data (and tests, if asked).

    Given ``rule``, only the modules evaluating it can reach (:func:`modules_for`): regorus
    walks every loaded module on each first reference to a package, ~7 µs of a decision per
    module it does not need.
    """
    engine = regorus.Engine()
    modules = modules_for(bundle, rule) if rule is not None else bundle.modules
    modules += bundle.tests if with_tests else ()
    try:
        for module in modules:
            engine.add_policy(module.path, module.text)
        engine.add_data_json(bundle.data_json())
        return engine
    except RuntimeError as error:
        message = engine_message(error)
    # The refused engine must die here, on its own thread, not later inside the exception's
    # traceback wherever the cyclic GC happens to collect it.
    del engine
    raise PolicyLoadError(f"policy does not compile: {message}")


def modules_for(bundle: PolicyBundle, rule: str) -> tuple[PolicyModule, ...]:
    """The modules evaluating ``rule`` (``data.<path>``) can reach, in bundle order.

    A module is reached when a reached path names its package, a rule in it or a prefix of it:
    the rule itself, then every ``data.<path>`` written in a reached module (imports, full
    paths, even comments: over-including is harmless). A module that indexes ``data``
    dynamically (``data[...]``) could reach anything: then every module is kept.
    """
    packages = [(module, _package_of(module)) for module in bundle.modules]
    paths = {rule.removeprefix("data.")}
    kept: set[str] = set()
    while True:
        reached = [
            (module, package)
            for module, package in packages
            if module.path not in kept and any(_reaches(path, package) for path in paths)
        ]
        if not reached:
            return tuple(module for module, _ in packages if module.path in kept)
        for module, _ in reached:
            if _DYNAMIC_DATA.search(module.text):
                return bundle.modules
            kept.add(module.path)
            paths.update(ref.lstrip(".") for ref in _DATA_REF.findall(module.text))


def _reaches(path: str, package: str) -> bool:
    return path == package or path.startswith(package + ".") or package.startswith(path + ".")


def _package_of(module: PolicyModule) -> str:
    package = _PACKAGE.search(module.text)
    if package is None:
        raise PolicyLoadError(f"{module.path}: no package declaration")
    return package.group(1)


@dataclass(frozen=True)
class RegoTest:
    """One ``test_*`` rule: its full rule path and the file that defines it."""

    rule: str
    path: str


@dataclass(frozen=True)
class RegoTestResult:
    test: RegoTest
    passed: bool
    error: str | None = None


def discover_tests(bundle: PolicyBundle) -> tuple[RegoTest, ...]:
    """Every ``test_*`` rule in the bundle's ``*_test.rego`` files, in file order."""
    found: dict[str, RegoTest] = {}
    for module in bundle.tests:
        found.update((test.rule, test) for test in _tests_in(module))
    return tuple(found.values())


def _tests_in(module: PolicyModule) -> list[RegoTest]:
    package = _package_of(module)
    return [
        RegoTest(rule=f"data.{package}.{name}", path=module.path)
        for name in dict.fromkeys(_TEST_RULE.findall(module.text))
    ]


def run_test(engine: Any, test: RegoTest) -> RegoTestResult:
    """Evaluate one test rule on an engine built ``with_tests=True``; true means passed."""
    try:
        value = engine.eval_rule(test.rule)
    except RuntimeError as error:
        return RegoTestResult(test, passed=False, error=engine_message(error))
    return RegoTestResult(test, passed=value is True)


def run_tests(bundle: PolicyBundle) -> tuple[RegoTestResult, ...]:
    """Compile the bundle with its tests and run every test rule, each on a fresh clone
    (an evaluation error can leave an engine's rule cache dirty for the next query)."""
    engine = new_engine(bundle, with_tests=True)
    return tuple(run_test(engine.clone(), test) for test in discover_tests(bundle))
