"""Token buckets in the database, with small local leases to keep the database cost down.

The bucket is GCRA (the generic cell rate algorithm): each (partner, route class) row holds a
theoretical arrival time ``tat``. Taking ``n`` tokens is one upsert::

    INSERT INTO rate_limit_buckets VALUES (:key, :class, :now + :cost)
    ON CONFLICT (bucket_key, route_class) DO UPDATE
       SET tat = max(tat, :now) + :cost
     WHERE max(tat, :now) + :cost - :now <= :tolerance
    RETURNING tat

A returned row means granted. The upsert is atomic on PostgreSQL (the conflicting row is locked)
and on SQLite (one writer), so every process and host shares one bucket.

Leases: when a bucket is large, a process takes up to ``lease`` tokens in one statement and
spends them locally for at most ``lease_seconds``. Tokens are debited from the shared bucket
before they are spent, so leasing never lets a partner exceed its limit; at worst a lease that
expires unused costs the partner those tokens. A lease is at most a twentieth of the burst, so
small buckets (burst < 40) are never leased and low limits are exact.

Besides :meth:`RateLimiter.check`, a few exact operations (never leased) for limits that must
reserve before they know what a request will cost (the token endpoint's failure buckets,
:mod:`hub.ratelimit.token_endpoint`): :meth:`~RateLimiter.take_all` (one token of each of
several buckets, or none), :meth:`~RateLimiter.give_back`, :meth:`~RateLimiter.charge` (spend
what a bucket holds, never refused), :meth:`~RateLimiter.peek` (read only) and
:meth:`~RateLimiter.forget_full`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Double, Engine, Table, bindparam, case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from hub.ratelimit.errors import RateLimitedError
from hub.ratelimit.limits import RateLimit, RouteClass
from hub.ratelimit.models import RateLimitBucket

_TABLE = cast(Table, RateLimitBucket.__table__)
#: A lease is at most this share of the bucket, so that several processes leasing at once
#: cannot drain a bucket between them.
_LEASE_SHARE = 20


@dataclass
class _Lease:
    tokens: int
    expires: float


class RateLimiter:
    """Checks and debits a partner's bucket for a route class; raises :class:`RateLimitedError`."""

    def __init__(
        self,
        engine: Engine,
        *,
        enabled: bool = True,
        lease: int = 10,
        lease_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.enabled = enabled
        self.lease = max(1, lease)
        self.lease_seconds = lease_seconds
        self.clock = clock
        self._leases: dict[tuple[str, str], _Lease] = {}
        self._lock = threading.Lock()
        self._statement = _upsert(engine.dialect.name)
        self._saturating = _saturating_upsert(engine.dialect.name)
        self.statements = 0  # database round trips, for the benchmark and tests

    def lease_size(self, limit: RateLimit) -> int:
        return max(1, min(self.lease, limit.burst // _LEASE_SHARE))

    def check(
        self,
        key: str,
        route_class: RouteClass,
        limit: RateLimit,
        *,
        session: Session | None = None,
    ) -> None:
        """Spend one token of ``key``'s bucket for ``route_class``, or raise (429).

        With ``session`` (a request's), the session is committed, the debit runs in a new
        transaction on the same connection and is committed at once: the spend stands whatever
        the request does next, the bucket row is locked only for that instant, a request never
        holds two pooled connections, and on SQLite no second connection waits for the write
        lock the request already holds. Without, it runs in a transaction of its own.
        """
        if not self.enabled:
            return
        now = self.clock()
        slot = (key, route_class)
        with self._lock:
            lease = self._leases.get(slot)
            if lease is not None and lease.tokens > 0 and lease.expires > now:
                lease.tokens -= 1
                return
        size = self.lease_size(limit)
        with self._transaction(session) as connection:
            granted = self._take(connection, key, route_class, limit, size, now)
            if not granted and size > 1:
                size = 1
                granted = self._take(connection, key, route_class, limit, 1, now)
            retry_after = (
                0.0 if granted else self._retry_after(connection, key, route_class, limit, now)
            )
        if not granted:
            raise RateLimitedError(
                f"Too many '{route_class}' requests; retry later.", retry_after=retry_after
            )
        if size > 1:
            with self._lock:
                held = self._leases.get(slot)
                if held is not None and held.expires > now:
                    held.tokens += size - 1  # another thread leased at the same time
                else:
                    self._leases[slot] = _Lease(tokens=size - 1, expires=now + self.lease_seconds)

    def peek(self, key: str, route_class: RouteClass, limit: RateLimit) -> float:
        """Seconds until ``key``'s bucket holds a token (0.0: it holds one now). Spends nothing
        and takes no lock: the answer may be stale by the time it is used."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        with self.engine.connect() as connection:
            self.statements += 1
            tat = connection.scalar(
                select(_TABLE.c.tat).where(
                    _TABLE.c.bucket_key == key, _TABLE.c.route_class == route_class
                )
            )
        if tat is None:
            return 0.0
        return max(0.0, max(float(tat), now) + limit.interval - limit.tolerance - now)

    def take_all(self, route_class: RouteClass, buckets: Sequence[tuple[str, RateLimit]]) -> None:
        """Spend one token of every bucket, or of none (one transaction): raise
        :class:`RateLimitedError` with the wait of the first bucket that is empty. Exact:
        never leased, so concurrent takes cannot overdraw."""
        if not self.enabled or not buckets:
            return
        now = self.clock()
        refused: tuple[str, RateLimit] | None = None
        retry_after = 0.0
        with self.engine.connect() as connection:
            with connection.begin() as transaction:
                self._relax(connection)
                for key, limit in sorted(buckets, key=lambda bucket: bucket[0]):
                    if not self._take(connection, key, route_class, limit, 1, now):
                        refused = (key, limit)
                        break
                if refused is not None:
                    key, limit = refused
                    retry_after = self._retry_after(connection, key, route_class, limit, now)
                    transaction.rollback()  # nothing taken from the buckets before it
        if refused is not None:
            raise RateLimitedError(
                f"Too many '{route_class}' requests; retry later.", retry_after=retry_after
            )

    def give_back(self, route_class: RouteClass, buckets: Sequence[tuple[str, RateLimit]]) -> None:
        """Return one token to each bucket (a reservation that was not needed); a bucket is
        never fuller than full."""
        if not self.enabled or not buckets:
            return
        now = self.clock()
        with self._transaction(None) as connection:
            for key, limit in sorted(buckets, key=lambda bucket: bucket[0]):
                self.statements += 1
                lowered = _TABLE.c.tat - limit.interval
                connection.execute(
                    update(_TABLE)
                    .where(_TABLE.c.bucket_key == key, _TABLE.c.route_class == route_class)
                    .values(tat=case((lowered > now, lowered), else_=now))
                )

    def charge(
        self, route_class: RouteClass, buckets: Sequence[tuple[str, RateLimit, int]]
    ) -> None:
        """Spend ``n`` tokens of each bucket, or what it holds if fewer: never refused, an
        empty bucket simply stays empty (one transaction)."""
        if not self.enabled or not buckets:
            return
        now = self.clock()
        with self._transaction(None) as connection:
            for key, limit, n in sorted(buckets, key=lambda bucket: bucket[0]):
                cost = max(0, n) * limit.interval
                self.statements += 1
                connection.execute(
                    self._saturating,
                    {
                        "key": key,
                        "route_class": route_class,
                        "now": now,
                        "cost": cost,
                        "ceiling": now + limit.tolerance,
                        "first_tat": now + min(cost, limit.tolerance),
                    },
                )

    def forget_full(self, route_class: RouteClass, key_prefix: str) -> int:
        """Delete the buckets of ``route_class`` whose key starts with ``key_prefix`` and that
        are full again (``tat <= now``): a missing row is a full bucket, so nothing changes but
        the table's size. For buckets keyed by something unbounded (addresses, claimed ids)."""
        if not self.enabled:
            return 0
        now = self.clock()
        with self._transaction(None) as connection:
            self.statements += 1
            result = connection.execute(
                delete(_TABLE).where(
                    _TABLE.c.route_class == route_class,
                    _TABLE.c.bucket_key.startswith(key_prefix, autoescape=True),
                    _TABLE.c.tat <= now,
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)

    def forget_leases(self) -> None:
        with self._lock:
            self._leases.clear()

    @contextmanager
    def _transaction(self, session: Session | None) -> Iterator[Connection]:
        """A short transaction of its own. On PostgreSQL its commit does not wait for the WAL
        flush (``synchronous_commit off``): a crash may forget the last few debits, never
        show a debit to a process that could not see it, and the flush was most of the cost."""
        if session is None:
            with self.engine.begin() as connection:
                self._relax(connection)
                yield connection
            return
        session.commit()  # what the request did so far keeps its own durability
        connection = session.connection()
        self._relax(connection)
        yield connection
        session.commit()

    def _relax(self, connection: Connection) -> None:
        if self.engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")

    def _take(
        self,
        connection: Connection,
        key: str,
        route_class: str,
        limit: RateLimit,
        n: int,
        now: float,
    ) -> bool:
        cost = n * limit.interval
        self.statements += 1
        row = connection.execute(
            self._statement,
            {
                "key": key,
                "route_class": route_class,
                "now": now,
                "cost": cost,
                "first_tat": now + cost,
                "tolerance": limit.tolerance,
            },
        ).first()
        return row is not None

    def _retry_after(
        self, connection: Connection, key: str, route_class: str, limit: RateLimit, now: float
    ) -> float:
        self.statements += 1
        tat = connection.scalar(
            select(_TABLE.c.tat).where(
                _TABLE.c.bucket_key == key, _TABLE.c.route_class == route_class
            )
        )
        if tat is None:
            return limit.interval
        return max(float(tat), now) + limit.interval - limit.tolerance - now


def _bucket_insert(dialect: str) -> tuple[Any, Any, Any]:
    """What both bucket statements share: an insert of a new bucket (``first_tat``), the
    bound ``now`` and the ``tat`` after spending ``cost`` from a bucket that exists."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now: Any = bindparam("now", type_=Double())
    start = case((_TABLE.c.tat > now, _TABLE.c.tat), else_=now)
    new_tat = start + bindparam("cost", type_=Double())
    statement = insert(_TABLE).values(
        bucket_key=bindparam("key"),
        route_class=bindparam("route_class"),
        tat=bindparam("first_tat", type_=Double()),
    )
    return statement, now, new_tat


def _upsert(dialect: str) -> Executable:
    """The take statement, built once per dialect (parameters: key, route_class, now, cost,
    first_tat, tolerance)."""
    statement, now, new_tat = _bucket_insert(dialect)
    take: Executable = statement.on_conflict_do_update(
        index_elements=[_TABLE.c.bucket_key, _TABLE.c.route_class],
        set_={"tat": new_tat},
        where=(new_tat - now) <= bindparam("tolerance", type_=Double()),
    ).returning(_TABLE.c.tat)
    return take


def _saturating_upsert(dialect: str) -> Executable:
    """The charge statement: like :func:`_upsert` without the refusal, the new ``tat`` capped at
    ``ceiling`` (now + tolerance: an empty bucket). Parameters: key, route_class, now, cost,
    ceiling, first_tat."""
    statement, _, new_tat = _bucket_insert(dialect)
    ceiling: Any = bindparam("ceiling", type_=Double())
    charge: Executable = statement.on_conflict_do_update(
        index_elements=[_TABLE.c.bucket_key, _TABLE.c.route_class],
        set_={"tat": case((new_tat > ceiling, ceiling), else_=new_tat)},
    )
    return charge
