"""The hub's typed errors. Services raise these; ``hub.api.problems`` renders them.

Every error has a stable ``type`` (a URI ending in a slug), an HTTP status and a title, as
RFC 9457 problem details. Subclasses in each area (registry, records, release...) narrow them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PROBLEM_BASE = "https://tollhouse.dev/problems/"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One bad input: where (a JSON path such as ``records[3].fields.income``) and what."""

    field: str
    message: str


class HubError(Exception):
    """Base of every error the hub reports to a caller."""

    slug = "internal"
    status = 500
    title = "Internal error"

    def __init__(self, detail: str = "", *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug


class BadRequestError(HubError):
    slug = "bad-request"
    status = 400
    title = "Bad request"


class InvalidCursorError(HubError):
    slug = "invalid-cursor"
    status = 400
    title = "Invalid cursor"


class UnauthorizedError(HubError):
    slug = "unauthorized"
    status = 401
    title = "Authentication required"

    def __init__(self, detail: str = "", *, error: str = "invalid_token") -> None:
        super().__init__(
            detail, headers={"WWW-Authenticate": f'Bearer realm="tollhouse", error="{error}"'}
        )


class ForbiddenError(HubError):
    slug = "forbidden"
    status = 403
    title = "Forbidden"


class InsufficientScopeError(ForbiddenError):
    slug = "insufficient-scope"
    title = "Insufficient scope"


class NotFoundError(HubError):
    slug = "not-found"
    status = 404
    title = "Not found"


class ConflictError(HubError):
    slug = "conflict"
    status = 409
    title = "Conflict"


class PayloadTooLargeError(HubError):
    slug = "payload-too-large"
    status = 413
    title = "Payload too large"


class ValidationFailedError(HubError):
    slug = "validation-failed"
    status = 422
    title = "Validation failed"

    def __init__(self, detail: str, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(detail)
        self.errors = list(errors)


class ServiceUnavailableError(HubError):
    slug = "unavailable"
    status = 503
    title = "Service unavailable"
