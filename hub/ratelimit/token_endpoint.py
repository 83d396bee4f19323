"""The token endpoint's limits, keyed by what a request proves rather than what it claims.

A client id is not a secret. Charging the bucket of the client a token request *names*, before
it authenticates, let anyone who knew a partner's id empty that partner's bucket with garbage
secrets and lock it out of tokens. Here:

* **Success** spends from the authenticated partner's own ``token`` bucket (its registry
  setting, else the settings' limit), charged once the client has authenticated: only a
  holder of the partner's credentials can empty it.
* **Failure** is paid from buckets keyed by where it comes from. Before any credential is
  checked, a request reserves one token of its (claimed client, source address) bucket and one
  of its source address's bucket (every client id it tries), in one transaction: if either is
  empty, 429 with no credential checked. A request that then authenticates gets both tokens
  back; any other outcome keeps them. So a flood of bad secrets for client X from address A
  empties only A's buckets: X still gets tokens from B. The reservation is exact (taken before
  the slow credential check, not read and charged after), so concurrent guesses cannot
  overdraw it.
* **Distributed guessing** (many addresses, one client): every failure also charges a bucket
  per claimed client, across all sources, with a higher ceiling (``CLIENT_FACTOR`` times the
  pair limit). That bucket never refuses anything itself: refusing on it would hand the
  lockout back to anyone with enough addresses. While it is empty the client counts as under
  attack, and each further failure against it costs its (client, source) bucket the pair's
  whole burst, so every attacking address is held to one guess per refill of its bucket
  (``per_minute / burst`` guesses a minute instead of ``per_minute``).

Trade-offs: an address that shares its egress (NAT, proxy) with an attacker shares its
buckets: a partner behind the same address as a flood of failures against its own id, or any
id, is refused until they refill (the per-source ceiling is ``SOURCE_FACTOR`` times the pair's
so that several clients behind one gateway do not trip it by honest mistakes). A partner under
distributed attack whose own address also fails now and then (a stale secret after rotation)
pays the under-attack price on those failures only; its successes never depend on the
per-client bucket. IPv6 sources are keyed by their /64, the smallest block one host usually
holds; the source is the ASGI client address, so behind a reverse proxy the server must be
told to trust its forwarding headers. Success rides on the client's registry limits; failure
limits derive from the settings' ``token`` limit. Buckets keyed by addresses and claimed ids are
purged once they are full again (a missing row is a full bucket).
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hub.ratelimit.limits import RateLimit, RouteClass, limit_for
from hub.ratelimit.service import RateLimiter

ROUTE_CLASS: RouteClass = "token"
#: Every failure bucket's key starts with this (partner ids never do): the purge's prefix.
FAILURE_PREFIX = "authfail:"
#: The per-source failure bucket is this many times the per-(client, source) one.
SOURCE_FACTOR = 3
#: The per-client failure bucket (all sources) is this many times the per-(client, source) one.
CLIENT_FACTOR = 10
#: One failure in this many purges failure buckets that are full again.
PURGE_ONE_IN = 50
_MAX_PER_MINUTE = 1_000_000.0
_MAX_BURST = 100_000


def _scaled(limit: RateLimit, factor: int) -> RateLimit:
    return RateLimit(
        per_minute=min(limit.per_minute * factor, _MAX_PER_MINUTE),
        burst=min(limit.burst * factor, _MAX_BURST),
    )


def source_network(host: str | None) -> str:
    """The address a failure bucket is keyed by: an IPv4 address (also when IPv4-mapped), an
    IPv6 address's /64, or (not an address: a test client, a Unix socket) the text itself."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", errors="replace")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class TokenAttempt:
    """A token request admitted past its failure buckets (one token of each reserved)."""

    pair_key: str
    source_key: str
    client_key: str


class TokenEndpointLimiter:
    """The token endpoint's buckets (module docstring); a no-op when the limiter is disabled."""

    def __init__(self, limiter: RateLimiter, *, token_limit: RateLimit) -> None:
        self.limiter = limiter
        self.token_limit = token_limit
        self.pair_limit = token_limit
        self.source_limit = _scaled(token_limit, SOURCE_FACTOR)
        self.client_limit = _scaled(token_limit, CLIENT_FACTOR)

    @property
    def enabled(self) -> bool:
        return self.limiter.enabled

    def admit(self, claimed_client_id: str | None, source: str | None) -> TokenAttempt | None:
        """Reserve a failure token of the (claimed client, source) and the source buckets, or
        raise :class:`~hub.ratelimit.RateLimitedError` (429) before any credential is checked.
        None when limits are off."""
        if not self.enabled:
            return None
        network = source_network(source)
        client = _digest(claimed_client_id or "")
        attempt = TokenAttempt(
            pair_key=f"{FAILURE_PREFIX}{client}@{_digest(network)}",
            source_key=f"{FAILURE_PREFIX}@{network}",
            client_key=f"{FAILURE_PREFIX}{client}",
        )
        self.limiter.take_all(
            ROUTE_CLASS,
            [(attempt.pair_key, self.pair_limit), (attempt.source_key, self.source_limit)],
        )
        return attempt

    def authenticated(
        self,
        attempt: TokenAttempt | None,
        *,
        partner_id: str,
        overrides: Mapping[str, Any] | None,
    ) -> None:
        """The client proved who it is: the reservation goes back, and one token of the
        partner's own bucket is spent (429 when it is empty)."""
        if not self.enabled:
            return
        if attempt is not None:
            self.limiter.give_back(
                ROUTE_CLASS,
                [(attempt.pair_key, self.pair_limit), (attempt.source_key, self.source_limit)],
            )
        limit = limit_for(overrides, ROUTE_CLASS, self.token_limit, partner_id=partner_id)
        self.limiter.check(partner_id, ROUTE_CLASS, limit)

    def failed(self, attempt: TokenAttempt | None) -> None:
        """The request did not authenticate: the reservation is kept, the client's own failure
        bucket charged, and (while that bucket is empty) the pair's whole burst taken."""
        if attempt is None or not self.enabled:
            return
        under_attack = self.limiter.peek(attempt.client_key, ROUTE_CLASS, self.client_limit) > 0
        charges: list[tuple[str, RateLimit, int]] = [(attempt.client_key, self.client_limit, 1)]
        if under_attack:
            charges.append((attempt.pair_key, self.pair_limit, self.pair_limit.burst))
        self.limiter.charge(ROUTE_CLASS, charges)
        if secrets.randbelow(PURGE_ONE_IN) == 0:
            self.limiter.forget_full(ROUTE_CLASS, FAILURE_PREFIX)
