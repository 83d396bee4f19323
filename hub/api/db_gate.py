"""How many requests may use the database at once, per process.

**SQLite** (the embedded default): one. SQLite has one writer, and every pull writes an audit
event. If requests waited for the write lock inside worker threads, fifty waiting requests would
hold every thread of the pool while the request that holds the lock needs one more thread to
commit: throughput collapses (the HTTP benchmark measured 66 req/s at one connection and 0.2
req/s at fifty). Waiting here, on the event loop, holds no thread.

**PostgreSQL**: a few (``TOLLHOUSE_DB_CONCURRENCY``, 8 by default). Without a limit every
connection's request runs in a thread of its own (up to the thread pool's 40), and they contend
for the GIL between each round trip to the database: at fifty connections one worker served
fewer requests, each at more CPU, than with eight admitted at a time, and its p99 latency was
twice as long (``bench/README.md``, sixth round). Requests past the limit wait on the event
loop, in arrival order.
"""

from __future__ import annotations

import asyncio
import weakref

from starlette.types import ASGIApp, Receive, Scope, Send

#: Paths that never touch the database.
_FREE_PREFIXES = (
    "/healthz",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/.well-known/",
    "/metrics",
    "/portal/static/",
)


class DatabaseGate:
    """Admits at most ``permits`` requests at a time past this middleware (paths that never
    touch the database pass freely)."""

    def __init__(self, app: ASGIApp, *, permits: int) -> None:
        if permits < 1:
            raise ValueError("a database gate needs at least one permit")
        self.app = app
        self.permits = permits
        # One semaphore per event loop: test clients may run several loops over an app's
        # lifetime, and an asyncio primitive belongs to the loop it first waited on.
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_FREE_PREFIXES):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(self.permits)
        async with gate:
            await self.app(scope, receive, send)
