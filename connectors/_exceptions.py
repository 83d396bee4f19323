"""Exceptions raised by the Tollhouse connector SDK.

The whole tree, in one place::

    HubError                      base of everything the SDK raises on purpose
    ├── TransportError            the hub could not be reached, after the retries ran out
    │   ├── ConnectError          connection refused / reset / DNS failure
    │   └── Timeout               connect, read, write or pool timeout
    ├── DecodeError               a response outside the contract (bad JSON, missing keys)
    ├── DecryptionError           an encrypt_for_recipient field could not be decrypted
    ├── OAuthError                the token endpoint refused us (RFC 6749 ``{"error", ...}``)
    └── ProblemError              any other error response (RFC 9457 problem+json), by status:
        ├── BadRequest            400
        │   └── InvalidCursor     400 invalid-cursor
        ├── Unauthorized          401 unauthorized (after one token refresh)
        ├── Forbidden             403 forbidden
        │   ├── InsufficientScope 403 insufficient-scope
        │   └── ConsentRequired   403 consent-required
        ├── NotFound              404 not-found
        ├── Conflict              409 conflict
        ├── PayloadTooLarge       413 payload-too-large
        ├── ValidationFailed      422 validation-failed (``.errors``: one FieldError per bad field)
        ├── RateLimited           429 rate-limited (``.retry_after`` seconds), after the retries
        └── ServerError           5xx

A problem whose ``type`` slug is unknown maps to the class for its status (for example an unknown
403 slug raises ``Forbidden``), and a status with no class of its own raises ``ProblemError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BadRequest",
    "Conflict",
    "ConnectError",
    "ConsentRequired",
    "DecodeError",
    "DecryptionError",
    "FieldError",
    "Forbidden",
    "HubError",
    "InsufficientScope",
    "InvalidCursor",
    "NotFound",
    "OAuthError",
    "PayloadTooLarge",
    "ProblemError",
    "RateLimited",
    "ServerError",
    "Timeout",
    "TransportError",
    "Unauthorized",
    "ValidationFailed",
]

PROBLEM_TYPE_PREFIX = "https://tollhouse.dev/problems/"


class HubError(Exception):
    """Base class of every exception the SDK raises on purpose."""


class TransportError(HubError):
    """The hub could not be reached, after the retry policy gave up."""


class ConnectError(TransportError):
    """Connection refused, reset or not resolvable."""


class Timeout(TransportError):
    """A connect, read, write or pool timeout."""


class DecodeError(HubError):
    """A response that does not follow the hub's contract."""


class DecryptionError(HubError):
    """An encrypted field could not be decrypted with the partner's key."""


class OAuthError(HubError):
    """The token endpoint answered with an RFC 6749 error."""

    def __init__(self, error: str, description: str | None = None, status: int | None = None):
        self.error = error
        self.description = description
        self.status = status
        text = f"{error}: {description}" if description else error
        super().__init__(text)


@dataclass(frozen=True, slots=True)
class FieldError:
    """One entry of a problem's ``errors`` list, e.g. ``records[3].fields.income``."""

    field: str
    message: str


class ProblemError(HubError):
    """An RFC 9457 problem answered by the hub (or an error status without a problem body)."""

    slug: str | None = None

    def __init__(
        self,
        status: int,
        title: str,
        *,
        type: str = "about:blank",
        detail: str | None = None,
        instance: str | None = None,
        errors: tuple[FieldError, ...] = (),
        retry_after: float | None = None,
        problem: Mapping[str, Any] | None = None,
    ):
        self.status = status
        self.title = title
        self.type = type
        self.detail = detail
        self.instance = instance
        self.errors = errors
        self.retry_after = retry_after
        self.problem: Mapping[str, Any] = problem if problem is not None else {}
        super().__init__(f"{status} {title}" + (f": {detail}" if detail else ""))


class BadRequest(ProblemError):
    """400."""


class InvalidCursor(BadRequest):
    """400 invalid-cursor: the cursor is malformed, expired or for another agreement."""

    slug = "invalid-cursor"


class Unauthorized(ProblemError):
    """401: the access token was refused even after a refresh."""

    slug = "unauthorized"


class Forbidden(ProblemError):
    """403."""

    slug = "forbidden"


class InsufficientScope(Forbidden):
    """403 insufficient-scope: the token lacks a scope the call needs."""

    slug = "insufficient-scope"


class ConsentRequired(Forbidden):
    """403 consent-required: no consent covers this subject, recipient and purpose."""

    slug = "consent-required"


class NotFound(ProblemError):
    """404."""

    slug = "not-found"


class Conflict(ProblemError):
    """409."""

    slug = "conflict"


class PayloadTooLarge(ProblemError):
    """413: send smaller batches."""

    slug = "payload-too-large"


class ValidationFailed(ProblemError):
    """422: ``errors`` lists each bad field; nothing was stored."""

    slug = "validation-failed"


class RateLimited(ProblemError):
    """429: still rate limited after the retries; ``retry_after`` is the hub's last hint."""

    slug = "rate-limited"


class ServerError(ProblemError):
    """5xx."""


_BY_SLUG: dict[str, type[ProblemError]] = {
    cls.slug: cls
    for cls in (
        InvalidCursor,
        Unauthorized,
        Forbidden,
        InsufficientScope,
        ConsentRequired,
        NotFound,
        Conflict,
        PayloadTooLarge,
        ValidationFailed,
        RateLimited,
    )
    if cls.slug is not None
}

_BY_STATUS: dict[int, type[ProblemError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationFailed,
    429: RateLimited,
}


def problem_class(type_uri: str, status: int) -> type[ProblemError]:
    """The exception class for a problem ``type`` and HTTP status."""
    if type_uri.startswith(PROBLEM_TYPE_PREFIX):
        cls = _BY_SLUG.get(type_uri[len(PROBLEM_TYPE_PREFIX) :])
        if cls is not None:
            return cls
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, ProblemError)
