"""Reload the policies when their files change, without ever failing open.

A background task asks the store to reload every few seconds; an unchanged bundle is a cheap
no-op (one hash of the files), a changed one is compiled and its Rego unit tests run before it
replaces the serving engine, and a broken one is logged and ignored.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool

from hub.policy.store import PolicyStore

log = logging.getLogger("tollhouse.policy")


async def watch_policies(store: PolicyStore, *, interval_seconds: float) -> None:
    """Run until cancelled."""
    last_failure = ""
    while True:
        await asyncio.sleep(interval_seconds)
        outcome, failure = await run_in_threadpool(store.try_reload)
        if outcome is not None and outcome.changed:
            log.info("policies reloaded: revision %s", outcome.revision)
        elif outcome is None and failure != last_failure:
            last_failure = failure
            log.error("changed policies refused; still serving %s: %s", store.revision, failure)
