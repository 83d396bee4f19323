"""The token endpoint's rate limits, keyed by what a request proves, not by the client id it
claims (``hub.ratelimit.token_endpoint``).

A client id is not a secret: failures are paid by the (claimed client, source address) and the
source address's buckets, reserved before any credential is checked; successes by the
authenticated partner's own bucket. Driven through :meth:`HubAuthorizationServer.issue_token`
with a limiter of the test's own (low limits, a clock of its own); the HTTP route is covered in
``test_rate_limits.py``.
"""

from __future__ import annotations

import base64
import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from starlette.datastructures import Headers

from hub.auth.server import HubAuthorizationServer, TokenRequest, TokenResponse
from hub.ratelimit import RateLimit, RateLimitedError, RateLimiter, TokenEndpointLimiter
from hub.ratelimit.models import RateLimitBucket
from hub.ratelimit.token_endpoint import (
    CLIENT_FACTOR,
    FAILURE_PREFIX,
    SOURCE_FACTOR,
    source_network,
)
from tests.support.hub import TEST_ISSUER, HubEnv

LENDER = "lender-jinqiao"
OTHER = "lender-pearl"
NO_REFILL = 1 / 1440  # one token a day: within a test, only the burst counts
BURST = 3
ATTACKER = "203.0.113.7"
PARTNER_HOST = "198.51.100.20"
#: Each test's clock starts far from the others' (and far ahead of the real clock the rest of
#: the module's hub uses), so buckets left by earlier tests are full again.
_EPOCHS = itertools.count()


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Endpoint:
    hub: HubEnv
    server: HubAuthorizationServer
    limiter: TokenEndpointLimiter
    clock: FakeClock

    def request(self, ref: str, source: str, *, secret: str | None = None) -> int:
        """The status of a token request as ``ref`` from ``source`` (429 when refused)."""
        partner = self.hub.partner(ref)
        raw = f"{partner['client_id']}:{secret or partner['client_secret']}".encode()
        return self.request_as({"authorization": "Basic " + base64.b64encode(raw).decode()}, source)

    def request_as(self, headers: dict[str, str], source: str, **form: str) -> int:
        try:
            response: TokenResponse = self.server.issue_token(
                TokenRequest(
                    method="POST",
                    url=TEST_ISSUER + "/oauth/token",
                    headers=Headers(headers),
                    form={"grant_type": "client_credentials", **form},
                    source=source,
                )
            )
        except RateLimitedError as refused:
            assert refused.retry_after >= 1
            return 429
        return response.status


@pytest.fixture()
def endpoint(hub: HubEnv, monkeypatch: pytest.MonkeyPatch) -> Endpoint:
    clock = FakeClock(1e10 + next(_EPOCHS) * 1e8)
    limiter = TokenEndpointLimiter(
        RateLimiter(hub.runtime.engine, clock=clock),
        token_limit=RateLimit(per_minute=NO_REFILL, burst=BURST),
    )
    server = hub.runtime.authorization_server
    monkeypatch.setattr(server, "token_limiter", limiter)
    return Endpoint(hub=hub, server=server, limiter=limiter, clock=clock)


def test_bad_secrets_from_one_address_leave_the_partner_its_tokens_elsewhere(
    endpoint: Endpoint,
) -> None:
    attacks = [endpoint.request(LENDER, ATTACKER, secret="guess") for _ in range(10)]
    assert attacks == [401] * BURST + [429] * (10 - BURST)
    # the real partner, from its own address: its own bucket, untouched by the attack
    assert [endpoint.request(LENDER, PARTNER_HOST) for _ in range(BURST)] == [200] * BURST
    # ... which its successes do spend
    assert endpoint.request(LENDER, PARTNER_HOST) == 429


def test_a_refused_address_is_refused_before_its_credentials_are_checked(
    endpoint: Endpoint,
) -> None:
    for _ in range(BURST):
        assert endpoint.request(LENDER, ATTACKER, secret="guess") == 401
    # even the right secret: checking it is what a guesser wants
    assert endpoint.request(LENDER, ATTACKER) == 429


def test_a_success_gives_its_reservation_back(endpoint: Endpoint) -> None:
    statuses = [endpoint.request(LENDER, PARTNER_HOST, secret="stale") for _ in range(BURST - 1)]
    statuses += [endpoint.request(LENDER, PARTNER_HOST) for _ in range(BURST)]
    # the failure bucket still holds the one token the failures left
    statuses += [endpoint.request(LENDER, PARTNER_HOST, secret="stale") for _ in range(2)]
    assert statuses == [401] * (BURST - 1) + [200] * BURST + [401, 429]


def test_one_address_trying_many_client_ids_is_bounded_by_the_address(
    endpoint: Endpoint,
) -> None:
    attempts = SOURCE_FACTOR * BURST + 2
    statuses = [endpoint.request_as({}, ATTACKER, client_id=f"nobody-{i}") for i in range(attempts)]
    assert statuses[: SOURCE_FACTOR * BURST] == [401] * (SOURCE_FACTOR * BURST)
    assert statuses[SOURCE_FACTOR * BURST :] == [429, 429]
    assert endpoint.request(LENDER, PARTNER_HOST) == 200
    assert endpoint.request(OTHER, "198.51.100.21") == 200


def test_guessing_one_clients_secret_from_many_addresses_is_slowed_not_a_lockout(
    endpoint: Endpoint,
) -> None:
    # every address stays under its own limits; together they empty the client's failure bucket
    for i in range(CLIENT_FACTOR * BURST):
        assert endpoint.request(LENDER, f"192.0.2.{i + 1}", secret="guess") == 401
    # under attack: a new address gets one guess, not the pair's whole burst
    assert endpoint.request(LENDER, "203.0.113.99", secret="guess") == 401
    assert endpoint.request(LENDER, "203.0.113.99", secret="guess") == 429
    # the partner's own successes never depend on the client's failure bucket
    assert endpoint.request(LENDER, PARTNER_HOST) == 200
    # another client is not under attack
    statuses = [endpoint.request(OTHER, "203.0.113.98", secret="guess") for _ in range(BURST)]
    assert statuses == [401] * BURST


def test_concurrent_guesses_cannot_overdraw_the_reservation(endpoint: Endpoint) -> None:
    with ThreadPoolExecutor(6) as pool:
        statuses = list(
            pool.map(lambda _: endpoint.request(LENDER, ATTACKER, secret="guess"), range(12))
        )
    assert sorted(statuses) == [401] * BURST + [429] * (12 - BURST), statuses


def test_ipv6_addresses_are_keyed_by_their_64() -> None:
    assert source_network("2001:db8:1:2:aaaa::1") == source_network("2001:db8:1:2:bbbb::2")
    assert source_network("2001:db8:1:2::1") != source_network("2001:db8:1:3::1")
    assert source_network("::ffff:192.0.2.1") == "192.0.2.1"
    assert source_network("192.0.2.1") == "192.0.2.1"
    assert source_network("testclient") == "testclient"
    assert source_network(None) == "unknown"


def test_an_ipv6_attacker_cannot_escape_its_bucket_by_changing_address(
    endpoint: Endpoint,
) -> None:
    statuses = [
        endpoint.request(LENDER, f"2001:db8:7:7::{i + 1:x}", secret="guess") for i in range(5)
    ]
    assert statuses == [401] * BURST + [429, 429]


def test_failure_buckets_are_purged_once_full_again(endpoint: Endpoint) -> None:
    start = endpoint.clock.now
    endpoint.request(LENDER, ATTACKER, secret="guess")
    limiter = endpoint.limiter.limiter

    def failure_rows() -> int:
        """This test's failure buckets (other tests' clocks are far from this one's)."""
        with endpoint.hub.session() as session:
            count = session.scalar(
                select(func.count())
                .select_from(RateLimitBucket)
                .where(
                    RateLimitBucket.bucket_key.startswith(FAILURE_PREFIX),
                    RateLimitBucket.tat.between(start, start + 1e7),
                )
            )
        return int(count or 0)

    assert failure_rows() == 3  # pair, source, client
    limiter.forget_full("token", FAILURE_PREFIX)
    assert failure_rows() == 3  # not full yet: kept
    endpoint.clock.now += 1e7  # every bucket full again
    limiter.forget_full("token", FAILURE_PREFIX)
    assert failure_rows() == 0
