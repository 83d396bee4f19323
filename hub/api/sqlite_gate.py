"""One database request at a time when the hub runs on SQLite (the embedded default).

SQLite has one writer, and every pull writes an audit event. If requests waited for the write
lock inside worker threads, fifty waiting requests would hold every thread of the pool while
the request that holds the lock needs one more thread to commit: throughput collapses (the
HTTP benchmark measured 66 req/s at one connection and 0.2 req/s at fifty). Waiting here, on
the event loop, holds no thread. PostgreSQL deployments do not install this gate.
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


class SQLiteGate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # One lock per event loop: test clients may run several loops over an app's lifetime.
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_FREE_PREFIXES):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        async with lock:
            await self.app(scope, receive, send)
