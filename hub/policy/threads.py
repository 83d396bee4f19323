"""Per-thread regorus engines.

``regorus.Engine`` is unsendable: it must be used, cloned *and dropped* on the thread that
created it (dropping it elsewhere raises "is unsendable, but is being dropped on another
thread" and leaks it). So engines live in one module-level ``threading.local``: each thread
only ever touches its own map, a thread's engines die with it (on that thread), and an
engine retired by a reload is evicted lazily by its own thread. Owners (an
:class:`EmbeddedPolicyEngine`, the policy server's store) never hold engines themselves, only
their keys.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

_local = threading.local()

ENGINES_PER_THREAD = 4


def _engines() -> OrderedDict[str, Any]:
    engines: OrderedDict[str, Any] | None = getattr(_local, "engines", None)
    if engines is None:
        engines = OrderedDict()
        _local.engines = engines
    return engines


def thread_engine(key: str, build: Callable[[], Any]) -> Any:
    """This thread's engine for ``key``, built on first use; old keys are evicted (LRU)."""
    engines = _engines()
    engine = engines.get(key)
    if engine is None:
        engine = build()
        engines[key] = engine
        while len(engines) > ENGINES_PER_THREAD:
            engines.popitem(last=False)
    else:
        engines.move_to_end(key)
    return engine


def discard_thread_engine(key: str) -> None:
    """Forget this thread's engine for ``key`` (after an evaluation error, say)."""
    _engines().pop(key, None)
