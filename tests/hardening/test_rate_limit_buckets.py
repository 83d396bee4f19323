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


# -- the exact operations the token endpoint's failure buckets use ------------------------------


def test_take_all_takes_from_every_bucket_or_from_none(engine: Engine) -> None:
    limiter = RateLimiter(engine, clock=FakeClock())
    small = RateLimit(per_minute=NO_REFILL, burst=1)
    large = RateLimit(per_minute=NO_REFILL, burst=5)
    limiter.take_all("token", [("all_small", small), ("all_large", large)])
    for _ in range(3):
        with pytest.raises(RateLimitedError) as refused:
            limiter.take_all("token", [("all_small", small), ("all_large", large)])
        assert refused.value.retry_after > 0
    # the refusals took nothing from the large bucket: 4 of its 5 tokens are left
    assert _granted_token(limiter, "all_large", large, 10) == 4


def _granted_token(limiter: RateLimiter, key: str, limit: RateLimit, attempts: int) -> int:
    granted = 0
    for _ in range(attempts):
        try:
            limiter.take_all("token", [(key, limit)])
        except RateLimitedError:
            continue
        granted += 1
    return granted


def test_give_back_returns_a_token_but_never_overfills(engine: Engine) -> None:
    limiter = RateLimiter(engine, clock=FakeClock())
    limit = RateLimit(per_minute=NO_REFILL, burst=2)
    assert _granted_token(limiter, "give_back", limit, 5) == 2
    limiter.give_back("token", [("give_back", limit)])
    assert _granted_token(limiter, "give_back", limit, 5) == 1
    for _ in range(5):
        limiter.give_back("token", [("give_back", limit)])
    assert _granted_token(limiter, "give_back", limit, 5) == 2  # full, not fuller


def test_charge_spends_what_a_bucket_holds_and_is_never_refused(engine: Engine) -> None:
    clock = FakeClock()
    limiter = RateLimiter(engine, clock=clock)
    limit = RateLimit(per_minute=60, burst=4)  # one token a second
    assert limiter.peek("charged", "token", limit) == 0.0  # no row: full
    limiter.charge("token", [("charged", limit, 3)])
    assert limiter.peek("charged", "token", limit) == 0.0  # one left
    limiter.charge("token", [("charged", limit, 100)])  # more than it holds: emptied, no error
    assert limiter.peek("charged", "token", limit) == pytest.approx(1.0)
    clock.now += 1.0
    assert limiter.peek("charged", "token", limit) == 0.0
    assert _granted_token(limiter, "charged", limit, 5) == 1  # capped at empty: not in debt


def test_forget_full_deletes_only_full_buckets_under_the_prefix(engine: Engine) -> None:
    clock = FakeClock()
    limiter = RateLimiter(engine, clock=clock)
    limit = RateLimit(per_minute=60, burst=4)
    limiter.charge("token", [("gone:a", limit, 1), ("gone:b", limit, 4), ("kept:c", limit, 1)])
    clock.now += 2.0  # gone:a is full again, gone:b is not
    assert limiter.forget_full("token", "gone:") == 1
    assert limiter.peek("gone:b", "token", limit) == 0.0  # still there, 2 tokens left
    limiter.charge("token", [("gone:b", limit, 2)])
    assert limiter.peek("gone:b", "token", limit) > 0
    clock.now += 60
    assert limiter.forget_full("token", "gone:") == 1
    assert limiter.forget_full("token", "kept:") == 1
