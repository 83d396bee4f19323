"""The embedded engine: regorus in-process, one compiled engine per thread."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson

from hub.policy.bundle import PolicyBundle, load_bundle
from hub.policy.errors import PolicyEvaluationError, PolicyValidationError
from hub.policy.interfaces import Decision, decision_from_result
from hub.policy.rego import (
    DECISION_RULE,
    EXPLAIN_RULE,
    RegoTestResult,
    engine_message,
    new_engine,
    run_tests,
)
from hub.policy.threads import discard_thread_engine, thread_engine

_JSON_OPTIONS = orjson.OPT_UTC_Z

# The RFC 3339 strings parsed here: a subset of what regorus' time.parse_rfc3339_ns accepts
# (uppercase T and Z, at most nine fraction digits); anything else is left to the policy.
_INSTANT = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(?:Z|([+-])([0-9]{2}):([0-9]{2}))"
)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_NS_PER_SECOND = 1_000_000_000
_INT64_MAX = 2**63 - 1
_PARSED_LIMIT = 4096
_parsed: dict[str, int | None] = {}


class EmbeddedPolicyEngine:
    """Decides with regorus inside the hub process.

    The bundle is read and compiled once, in the constructor (a broken policy raises
    :class:`PolicyLoadError` there). ``regorus.Engine`` cannot cross threads, so each thread
    that calls :meth:`decide` lazily gets its own engine built from the same loaded texts and
    data (see :mod:`hub.policy.threads`); no engine ever leaves the thread that built it.
    Safe to share between threads and event loops.
    """

    def __init__(self, policies_dir: Path) -> None:
        self._init(load_bundle(policies_dir))

    @classmethod
    def from_bundle(cls, bundle: PolicyBundle) -> EmbeddedPolicyEngine:
        engine = cls.__new__(cls)
        engine._init(bundle)
        return engine

    def _init(self, bundle: PolicyBundle) -> None:
        self._bundle = bundle
        self._key = f"embedded:{bundle.revision}:{secrets.token_hex(8)}"
        # Every module compiles (a broken one fails here, reachable from a rule or not); the
        # engines kept per thread load only the modules of their rule.
        new_engine(bundle)
        self._thread_engine()

    @property
    def revision(self) -> str:
        return self._bundle.revision

    @property
    def bundle(self) -> PolicyBundle:
        return self._bundle

    def ready(self) -> bool:
        """True when this thread's engine answers: the empty input must be denied."""
        try:
            return not self.decide({}).allow
        except PolicyEvaluationError:
            return False

    def validate(self) -> tuple[RegoTestResult, ...]:
        """Compile the bundle with its Rego unit tests and run them; raise if any fails."""
        results = run_tests(self._bundle)
        failed = tuple(result.test.rule for result in results if not result.passed)
        if failed:
            raise PolicyValidationError(
                f"{len(failed)} of {len(results)} Rego tests failed: {', '.join(failed[:5])}",
                failed,
            )
        return results

    def decide(self, policy_input: Mapping[str, Any]) -> Decision:
        result = self._evaluate(policy_input, DECISION_RULE, as_json=False)
        return decision_from_result(result, self._bundle.revision)

    def explain(self, policy_input: Mapping[str, Any]) -> Mapping[str, Any]:
        """The decision plus per-field reasons and the purpose's fair-use caps (JSON types)."""
        result = self._evaluate(policy_input, EXPLAIN_RULE, as_json=True)
        if not isinstance(result, Mapping):
            raise PolicyEvaluationError("policy returned no explanation")
        return result

    def _evaluate(self, policy_input: Mapping[str, Any], rule: str, *, as_json: bool) -> Any:
        try:
            input_json = orjson.dumps(policy_input, option=_JSON_OPTIONS)
        except TypeError as error:
            raise PolicyEvaluationError(f"policy input is not JSON: {error}") from error
        times = _instants(policy_input)
        if times:
            input_json = input_json[:-1] + b',"times_ns":' + orjson.dumps(times) + b"}"
        key, engine = self._thread_engine(rule)
        try:
            engine.set_input_json(input_json.decode())
            if as_json:
                return orjson.loads(engine.eval_rule_as_json(rule))
            return engine.eval_rule(rule)
        except RuntimeError as error:
            message = engine_message(error)
        # An evaluation error may leave cached rule state behind: rebuild next time. Once
        # discarded, this frame holds the engine's last reference; it must not travel in the
        # exception's traceback, or the cyclic GC may drop it on another thread (unsendable).
        discard_thread_engine(key)
        del engine
        raise PolicyEvaluationError(f"policy evaluation failed: {message}")

    def _thread_engine(self, rule: str = DECISION_RULE) -> tuple[str, Any]:
        """This thread's engine for ``rule``: only the modules it can reach (decisions never
        load ``tollhouse.explain``), one engine per rule and thread."""
        key = f"{self._key}:{rule}"
        return key, thread_engine(key, lambda: new_engine(self._bundle, rule=rule))


def _instants(policy_input: Mapping[str, Any]) -> dict[str, int]:
    """``input.times_ns`` for the timestamps a decision compares (see
    policies/tollhouse/lib/timestamps.rego): parsed here, each ~1 µs (and most repeat from
    one decision to the next), rather than in regorus, ~8 µs each."""
    if "times_ns" in policy_input:
        return {}
    agreement = policy_input.get("agreement")
    consent = policy_input.get("consent")
    texts = [policy_input.get("now")]
    if isinstance(agreement, Mapping):
        texts += (agreement.get("valid_from"), agreement.get("valid_until"))
    if isinstance(consent, Mapping):
        texts.append(consent.get("expires_at"))
    times: dict[str, int] = {}
    for text in texts:
        if isinstance(text, str):
            instant = _parsed[text] if text in _parsed else _remember(text)
            if instant is not None:
                times[text] = instant
    return times


def _remember(text: str) -> int | None:
    if len(_parsed) >= _PARSED_LIMIT:
        _parsed.clear()
    instant = _parsed[text] = instant_ns(text)
    return instant


def instant_ns(text: str) -> int | None:
    """``time.parse_rfc3339_ns(text)`` for the strings :data:`_INSTANT` matches, None for the
    rest (and for what regorus would refuse: an invalid date or time, a leap second, an
    offset of 24 hours or more, an instant past int64 nanoseconds) and for instants before
    1970, which regorus returns as floating-point numbers."""
    match = _INSTANT.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, sign, offset_hours, offset_minutes = (
        match.groups()
    )
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    except ValueError:
        return None
    seconds = (moment.toordinal() - _EPOCH_ORDINAL) * 86400 + moment.hour * 3600
    seconds += moment.minute * 60 + moment.second
    if sign is not None:
        if int(offset_hours) > 23 or int(offset_minutes) > 59:
            return None
        offset = int(offset_hours) * 3600 + int(offset_minutes) * 60
        seconds -= offset if sign == "+" else -offset
    nanoseconds = seconds * _NS_PER_SECOND
    if fraction is not None:
        nanoseconds += int(fraction.ljust(9, "0"))
    if not 0 <= nanoseconds <= _INT64_MAX:
        return None
    return nanoseconds
