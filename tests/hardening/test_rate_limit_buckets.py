"""The database token buckets (``hub.ratelimit``): exact on small buckets, shared by every
engine (two pools, two processes) over one database, leases never over-grant."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from hub.ratelimit import RateLimit, RateLimitedError, RateLimiter
from hub.store.db import make_engine
from hub.store.migrate import upgrade
from tests.support.databases import TestDatabases

#: Refills one token a day: within a test, only the burst counts.
NO_REFILL = 1 / 1440


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def url(databases: TestDatabases) -> str:
    url = databases.new("buckets")
    upgrade(url)
    return url


@pytest.fixture()
def engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _granted(limiter: RateLimiter, key: str, limit: RateLimit, attempts: int) -> int:
    granted = 0
    for _ in range(attempts):
        try:
            limiter.check(key, "api", limit)
        except RateLimitedError:
            continue
        granted += 1
    return granted


def test_a_burst_then_429_with_retry_after_then_refill(engine: Engine) -> None:
    clock = FakeClock()
    limiter = RateLimiter(engine, clock=clock)
    limit = RateLimit(per_minute=60, burst=3)  # one token a second
    for _ in range(3):
        limiter.check("ptn_refill", "api", limit)
    with pytest.raises(RateLimitedError) as refused:
        limiter.check("ptn_refill", "api", limit)
    assert refused.value.status == 429
    assert refused.value.headers == {"Retry-After": "1"}
    clock.now += 1.0
    limiter.check("ptn_refill", "api", limit)
    with pytest.raises(RateLimitedError):
        limiter.check("ptn_refill", "api", limit)
    clock.now += 60  # a full bucket again, never more than the burst
    assert _granted(limiter, "ptn_refill", limit, 10) == 3


def test_buckets_are_per_key_and_per_route_class(engine: Engine) -> None:
    limiter = RateLimiter(engine, clock=FakeClock())
    limit = RateLimit(per_minute=NO_REFILL, burst=2)
    assert _granted(limiter, "ptn_a", limit, 5) == 2
    assert _granted(limiter, "ptn_b", limit, 5) == 2
    limiter.check("ptn_a", "pull", limit)  # another class, another bucket


def test_retry_after_is_the_wait_for_one_token(engine: Engine) -> None:
    limiter = RateLimiter(engine, clock=FakeClock())
    limit = RateLimit(per_minute=2, burst=1)  # one token every 30 s
    limiter.check("ptn_wait", "api", limit)
    with pytest.raises(RateLimitedError) as refused:
        limiter.check("ptn_wait", "api", limit)
    assert refused.value.retry_after == 30


def test_two_pools_share_one_bucket(url: str) -> None:
    """Two engines are two connection pools, as in two hub processes."""
    first, second = make_engine(url), make_engine(url)
    try:
        limit = RateLimit(per_minute=NO_REFILL, burst=7)
        a, b = RateLimiter(first), RateLimiter(second)
        granted = 0
        for i in range(20):
            try:
                (a if i % 2 else b).check("ptn_shared", "api", limit)
                granted += 1
            except RateLimitedError:
                pass
        assert granted == 7
    finally:
        first.dispose()
        second.dispose()


def test_concurrent_threads_never_overspend(engine: Engine) -> None:
    limiter = RateLimiter(engine)
    limit = RateLimit(per_minute=NO_REFILL, burst=40)
    counts: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        n = _granted(limiter, "ptn_threads", limit, 15)
        with lock:
            counts.append(n)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 40


def _spend_in_a_process(url: str, attempts: int) -> int:
    engine = make_engine(url)
    try:
        limiter = RateLimiter(engine)
        return _granted(
            limiter, "ptn_processes", RateLimit(per_minute=NO_REFILL, burst=25), attempts
        )
    finally:
        engine.dispose()


def test_two_processes_share_one_bucket(url: str) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        results = pool.starmap(_spend_in_a_process, [(url, 30), (url, 30)])
    assert sum(results) == 25


def test_leases_cut_statements_and_never_over_grant(url: str) -> None:
    first, second = make_engine(url), make_engine(url)
    try:
        limit = RateLimit(per_minute=NO_REFILL, burst=400)  # lease = min(10, 400 // 20)
        a, b = RateLimiter(first, lease=10), RateLimiter(second, lease=10)
        assert a.lease_size(limit) == 10
        assert _granted(a, "ptn_lease", limit, 100) == 100
        assert a.statements == 10
        granted = _granted(a, "ptn_lease", limit, 400) + _granted(b, "ptn_lease", limit, 400)
        assert 100 + granted <= 400  # what a holds unspent is lost to b, never created
        assert 100 + granted >= 400 - 10
    finally:
        first.dispose()
        second.dispose()


def test_small_buckets_are_not_leased(engine: Engine) -> None:
    limiter = RateLimiter(engine, lease=50)
    assert limiter.lease_size(RateLimit(per_minute=60, burst=19)) == 1
    assert limiter.lease_size(RateLimit(per_minute=60, burst=100)) == 5


def test_disabled_limiter_touches_nothing(engine: Engine) -> None:
    limiter = RateLimiter(engine, enabled=False)
    assert _granted(limiter, "ptn_off", RateLimit(per_minute=NO_REFILL, burst=1), 5) == 5
    assert limiter.statements == 0
