"""The contract every policy engine meets, and the decision it returns."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Protocol, runtime_checkable

from hub.policy.errors import PolicyEvaluationError

ACTIONS: Final = frozenset(
    {"keep", "drop", "mask", "pseudonymize", "generalize", "encrypt_for_recipient"}
)


@dataclass(frozen=True)
class Decision:
    """One policy decision: whether to release, what to do to each field, and why.

    ``obligations`` maps every dataset field to one of :data:`ACTIONS`; when ``allow`` is
    false every field is ``drop``. ``reasons`` are stable rule ids, sorted. ``decision_id`` is
    new for every ``decide`` call (cached or not); ``policy_revision`` is the sha256 of the
    policy bundle that decided.
    """

    allow: bool
    obligations: Mapping[str, str]
    reasons: tuple[str, ...]
    decision_id: str
    policy_revision: str

    def released_fields(self) -> tuple[str, ...]:
        """The fields that leave the hub in some form (everything not dropped)."""
        if not self.allow:
            return ()
        return tuple(name for name, action in self.obligations.items() if action != "drop")


@runtime_checkable
class PolicyEngine(Protocol):
    """Decides a release. Raises :class:`PolicyEvaluationError` rather than failing open."""

    @property
    def revision(self) -> str: ...

    def decide(self, policy_input: Mapping[str, Any]) -> Decision: ...

    def ready(self) -> bool: ...


def new_decision_id() -> str:
    return f"dec_{secrets.token_urlsafe(12)}"


def decision_from_result(result: Any, revision: str) -> Decision:
    """Check the shape of ``data.tollhouse.release.decision`` and wrap it as a Decision.

    Anything unexpected (undefined, wrong types, unknown action) is an evaluation error:
    a malformed answer is never read as permission.
    """
    if not isinstance(result, Mapping):
        raise PolicyEvaluationError("policy returned no decision object")
    allow = result.get("allow")
    obligations = result.get("obligations")
    reasons = result.get("reasons")
    if not isinstance(allow, bool):
        raise PolicyEvaluationError("policy decision has no boolean 'allow'")
    if not isinstance(obligations, Mapping) or not all(
        isinstance(name, str) and action in ACTIONS for name, action in obligations.items()
    ):
        raise PolicyEvaluationError("policy decision has malformed 'obligations'")
    if not isinstance(reasons, list | tuple) or not all(isinstance(r, str) for r in reasons):
        raise PolicyEvaluationError("policy decision has malformed 'reasons'")
    return Decision(
        allow=allow,
        obligations=MappingProxyType(dict(obligations)),
        reasons=tuple(reasons),
        decision_id=new_decision_id(),
        policy_revision=revision,
    )
