"""Choosing an engine from settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from hub.policy.cache import CachedPolicyEngine, DecisionCache
from hub.policy.embedded import EmbeddedPolicyEngine
from hub.policy.errors import PolicyLoadError
from hub.policy.interfaces import PolicyEngine

EngineKind = Literal["embedded", "opa"]


def load_policy_engine(
    *,
    kind: EngineKind = "embedded",
    policies_dir: Path = Path("policies"),
    opa_url: str | None = None,
    cache_size: int = 4096,
    validate: bool = True,
) -> PolicyEngine:
    """The engine the hub decides with, wrapped in a decision cache (``cache_size=0``: none).

    ``embedded``: regorus on ``policies_dir``; with ``validate`` the Rego unit tests must pass
    first (:class:`PolicyValidationError` otherwise). ``opa``: an OPA (or ``tollhouse policy
    serve``) server at ``opa_url`` that already holds the policies.
    """
    engine: PolicyEngine
    if kind == "embedded":
        embedded = EmbeddedPolicyEngine(policies_dir)
        if validate:
            embedded.validate()
        engine = embedded
    elif kind == "opa":
        if not opa_url:
            raise PolicyLoadError("the opa engine needs opa_url")
        from hub.policy.opa import OpaPolicyEngine

        engine = OpaPolicyEngine(opa_url)
    else:
        raise PolicyLoadError(f"unknown policy engine kind: {kind!r}")
    if cache_size > 0:
        return CachedPolicyEngine(engine, DecisionCache(cache_size))
    return engine
