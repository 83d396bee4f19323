"""Waiting, in a test, until another PostgreSQL transaction blocks on a lock."""

from __future__ import annotations

import threading
import time

from sqlalchemy import Engine, text

_WAITING = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


def waits_for_a_lock(engine: Engine, done: threading.Event) -> bool:
    """Whether, before ``done`` is set, some session of this database waits for a lock
    (polled from a connection of its own every 10 ms)."""
    with engine.connect() as probe:
        while not done.is_set():
            waiting = probe.execute(_WAITING).scalar_one()
            probe.rollback()
            if waiting:
                return True
            time.sleep(0.01)
    return False
