"""What a rate limit is: a refill rate and a burst (the bucket's capacity), per route class.

Kept free of the hub's other modules so that :mod:`hub.settings` can import it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

#: ``pull``: record pulls; ``publish``: record publishing; ``lookup``: finding a consumer by ID
#: number, mobile or VIN; ``token``: the token endpoint; ``api``: every other partner call.
RouteClass = Literal["pull", "publish", "lookup", "token", "api"]
ROUTE_CLASSES: tuple[RouteClass, ...] = get_args(RouteClass)


class RateLimit(BaseModel):
    """A token bucket: ``burst`` requests at once, refilled at ``per_minute``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_minute: float = Field(gt=0, le=1_000_000, description="Sustained requests per minute.")
    burst: int = Field(ge=1, le=100_000, description="Requests allowed at once (capacity).")

    @property
    def interval(self) -> float:
        """Seconds between two requests at the sustained rate (the cost of one request)."""
        return 60.0 / self.per_minute

    @property
    def tolerance(self) -> float:
        """How far ahead of now the bucket's theoretical arrival time may run (GCRA)."""
        return self.burst * self.interval


DEFAULT_RATE_LIMITS: dict[RouteClass, RateLimit] = {
    "pull": RateLimit(per_minute=600, burst=100),
    "publish": RateLimit(per_minute=300, burst=50),
    "lookup": RateLimit(per_minute=60, burst=20),
    "token": RateLimit(per_minute=30, burst=10),
    "api": RateLimit(per_minute=1200, burst=200),
}

RateLimits = dict[RouteClass, RateLimit]
_OVERRIDES: TypeAdapter[RateLimits] = TypeAdapter(RateLimits)


def parse_overrides(document: Any) -> RateLimits:
    """A partner's registry setting (``partners.rate_limits``), validated; raises ValueError."""
    if document is None:
        return {}
    try:
        return _OVERRIDES.validate_python(document)
    except ValidationError as exc:
        raise ValueError(str(exc)) from exc


_log = logging.getLogger("tollhouse.ratelimit")


def limit_for(
    overrides: Mapping[str, Any] | None,
    route_class: RouteClass,
    default: RateLimit,
    *,
    partner_id: str = "",
) -> RateLimit:
    """A partner's registry setting (``partners.rate_limits``) for ``route_class`` if it has a
    valid one, else ``default``; a malformed setting is logged and ignored."""
    if overrides:
        try:
            override = parse_overrides(overrides).get(route_class)
        except ValueError:
            _log.warning("ignoring malformed rate_limits of partner %s", partner_id)
            override = None
        if override is not None:
            return override
    return default
