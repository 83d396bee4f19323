"""Per-partner rate limits (token buckets kept in the database, shared by every hub process)
and velocity limits on identity lookups.

Public surface: :class:`RateLimit`, :data:`RouteClass`, :class:`RateLimiter`,
:class:`LookupGuard`, :class:`RateLimitedError`, :class:`PlaceholderIdentifierError`,
:class:`TokenEndpointLimiter` (the token endpoint's buckets).
"""

from __future__ import annotations

from hub.ratelimit.errors import PlaceholderIdentifierError, RateLimitedError
from hub.ratelimit.limits import DEFAULT_RATE_LIMITS, ROUTE_CLASSES, RateLimit, RouteClass
from hub.ratelimit.lookups import LookupGuard, LookupVelocityError, is_placeholder
from hub.ratelimit.service import RateLimiter
from hub.ratelimit.token_endpoint import TokenEndpointLimiter

__all__ = [
    "DEFAULT_RATE_LIMITS",
    "ROUTE_CLASSES",
    "LookupGuard",
    "LookupVelocityError",
    "PlaceholderIdentifierError",
    "RateLimit",
    "RateLimitedError",
    "RateLimiter",
    "RouteClass",
    "TokenEndpointLimiter",
    "is_placeholder",
]
