"""Typed errors of the de-identification package.

Exception tree::

    DeidError                      base of everything raised by ``hub.deid``
    ├── InvalidIdentifierError     a value cannot be parsed as the identifier it claims to be
    ├── UnknownTransformError      apply_transform() got an action/category pair it does not handle
    └── TransformInputError        a transform got a value of the wrong type or shape

Messages never contain the offending value: it may be personal data.
"""

from __future__ import annotations

__all__ = [
    "DeidError",
    "InvalidIdentifierError",
    "TransformInputError",
    "UnknownTransformError",
]


class DeidError(Exception):
    """Base class of every error raised by ``hub.deid``."""


class InvalidIdentifierError(DeidError, ValueError):
    """A value cannot be parsed as the identifier kind it was given as."""


class UnknownTransformError(DeidError, ValueError):
    """``apply_transform`` was given an action or category it does not handle."""


class TransformInputError(DeidError, ValueError):
    """A transform was given a value of the wrong type or shape."""
