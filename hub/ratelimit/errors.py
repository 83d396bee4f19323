"""Typed errors of rate and velocity limits (rendered by ``hub.api.problems``)."""

from __future__ import annotations

import math

from hub.errors import FieldError, HubError, ValidationFailedError


class RateLimitedError(HubError):
    """429: the partner's bucket for this route class is empty; retry after ``retry_after``."""

    slug = "rate-limited"
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(detail, headers={"Retry-After": str(self.retry_after)})


class PlaceholderIdentifierError(ValidationFailedError):
    """422: an identity lookup with a placeholder (all zeros, one repeated digit, a well-known
    test number) is refused before any index is consulted."""

    slug = "placeholder-identifier"

    def __init__(self, kind: str) -> None:
        super().__init__(
            "Placeholder identifiers are refused.",
            [FieldError(f"subject.{kind}", "a placeholder or test value, not a real identifier")],
        )
