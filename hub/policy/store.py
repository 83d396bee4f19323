"""Hot reload: the serving embedded engine, replaced only by a validated one."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.policy.bundle import load_bundle
from hub.policy.embedded import EmbeddedPolicyEngine
from hub.policy.errors import PolicyLoadError, PolicyValidationError
from hub.policy.interfaces import Decision


@dataclass(frozen=True)
class ReloadOutcome:
    changed: bool
    revision: str
    previous_revision: str
    tests_run: int


class PolicyStore:
    """A :class:`PolicyEngine` whose policies can be reloaded from disk while serving.

    :meth:`reload` reads ``policies_dir``, compiles it and runs its Rego unit tests on a new
    engine; only if all of that succeeds does it swap the new engine in. On any failure it
    raises (:class:`PolicyLoadError` / :class:`PolicyValidationError`) and the previous
    engine keeps serving: a broken policy never replaces a working one. The constructor
    applies the same validation, so a store never starts on a broken bundle.
    """

    def __init__(self, policies_dir: Path) -> None:
        self.policies_dir = Path(policies_dir)
        self._lock = threading.Lock()
        self._engine, _ = self._validated_engine()

    @property
    def engine(self) -> EmbeddedPolicyEngine:
        return self._engine

    @property
    def revision(self) -> str:
        return self._engine.revision

    def ready(self) -> bool:
        return self._engine.ready()

    def decide(self, policy_input: Mapping[str, Any]) -> Decision:
        return self._engine.decide(policy_input)

    def explain(self, policy_input: Mapping[str, Any]) -> Mapping[str, Any]:
        return self._engine.explain(policy_input)

    def reload(self) -> ReloadOutcome:
        """Validate the policies on disk and swap them in; unchanged revisions are a no-op."""
        with self._lock:
            previous = self._engine.revision
            if load_bundle(self.policies_dir).revision == previous:
                return ReloadOutcome(False, previous, previous, 0)
            engine, tests_run = self._validated_engine()
            self._engine = engine
            return ReloadOutcome(True, engine.revision, previous, tests_run)

    def try_reload(self) -> tuple[ReloadOutcome | None, str]:
        """:meth:`reload`, with any failure returned as text instead of raised.

        A refused candidate engine is referenced from the exception's traceback, and regorus
        engines must be dropped on the thread that made them; so the exception must not travel
        (nor be chained) to another thread. Callers on thread pools use this.
        """
        try:
            return self.reload(), ""
        except PolicyLoadError as exc:
            return None, str(exc)

    def _validated_engine(self) -> tuple[EmbeddedPolicyEngine, int]:
        engine = EmbeddedPolicyEngine.from_bundle(load_bundle(self.policies_dir))
        results = engine.validate()
        if not engine.ready():
            raise PolicyValidationError("the new policy does not deny the empty input", ())
        return engine, len(results)
