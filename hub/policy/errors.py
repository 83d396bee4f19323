"""Typed errors of the policy engines.

::

    PolicyError                   base of everything raised here
    +-- PolicyLoadError           policies or data could not be read, parsed or compiled
    |   +-- PolicyValidationError the bundle compiled but its Rego unit tests failed
    +-- PolicyEvaluationError     a decision could not be made (engine error, bad output,
                                  unreachable server); the caller must deny

No engine ever answers "allow" when something went wrong: it raises instead.
"""

from __future__ import annotations


class PolicyError(Exception):
    """Base class of the policy engines' errors."""


class PolicyLoadError(PolicyError):
    """The policy bundle could not be loaded or compiled."""


class PolicyValidationError(PolicyLoadError):
    """The policy bundle compiled but failed its own Rego unit tests."""

    def __init__(self, message: str, failed_tests: tuple[str, ...]) -> None:
        super().__init__(message)
        self.failed_tests = failed_tests


class PolicyEvaluationError(PolicyError):
    """A decision could not be made. The caller denies."""
