"""Policy decisions: the Rego rulebook in ``policies/``, embedded (regorus) or on OPA.

Public surface::

    Decision, PolicyEngine                          the contract (interfaces.py)
    EmbeddedPolicyEngine(policies_dir)              regorus in-process, one engine per thread
    OpaPolicyEngine(url)                            an OPA server's REST Data API
    load_policy_engine(kind=..., policies_dir=..., opa_url=...)
    PolicyStore(policies_dir).reload()              validated hot reload
    DecisionCache, CachedPolicyEngine, canonical_digest, decision_cache_key
    load_bundle, build_bundle, push_bundle          the bundle on disk, as tar.gz, into OPA
    hub.policy.opa_server.create_opa_app / serve    the OPA-compatible server
    PolicyError > PolicyLoadError > PolicyValidationError; PolicyError > PolicyEvaluationError
"""

from __future__ import annotations

from hub.policy.bundle import PolicyBundle, build_bundle, load_bundle
from hub.policy.cache import (
    CachedPolicyEngine,
    DecisionCache,
    canonical_digest,
    decision_cache_key,
)
from hub.policy.embedded import EmbeddedPolicyEngine
from hub.policy.errors import (
    PolicyError,
    PolicyEvaluationError,
    PolicyLoadError,
    PolicyValidationError,
)
from hub.policy.factory import load_policy_engine
from hub.policy.interfaces import ACTIONS, Decision, PolicyEngine
from hub.policy.opa import OpaPolicyEngine, push_bundle
from hub.policy.store import PolicyStore, ReloadOutcome

__all__ = [
    "ACTIONS",
    "CachedPolicyEngine",
    "Decision",
    "DecisionCache",
    "EmbeddedPolicyEngine",
    "OpaPolicyEngine",
    "PolicyBundle",
    "PolicyEngine",
    "PolicyError",
    "PolicyEvaluationError",
    "PolicyLoadError",
    "PolicyStore",
    "PolicyValidationError",
    "ReloadOutcome",
    "build_bundle",
    "canonical_digest",
    "decision_cache_key",
    "load_bundle",
    "load_policy_engine",
    "push_bundle",
]
