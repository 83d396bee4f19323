"""Structured JSON logs (structlog) and Prometheus metrics.

Logs: one JSON object per line on stderr, with ``request_id`` bound for the whole request
(``structlog.contextvars``); the standard-library loggers (``tollhouse.*``, uvicorn) go through
the same renderer. A redaction processor drops fields whose names say they carry secrets or
personal data and scrubs values shaped like tokens, PRC ID numbers, VINs, mobile numbers and
e-mail addresses, so a careless ``log.info(...)`` cannot leak them.

Metrics (``GET /metrics``, text exposition format): HTTP requests and latency per route
template, audit events (decisions) by kind and outcome, and the webhook outbox backlog. The
last two are read from the database at scrape time: they are global, not per process.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import orjson
import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import Response

from consent.models import NotificationStatus, WebhookDelivery
from hub.audit.models import AuditEvent

__all__ = [
    "REGISTRY",
    "configure_logging",
    "is_loopback_request",
    "metrics_response",
    "observe_request",
    "redact",
]

# ---- logging ----------------------------------------------------------------------------------

#: Field names whose values never reach a log line.
SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "access_token",
        "token",
        "client_secret",
        "secret",
        "password",
        "client_assertion",
        "assertion",
        "cookie",
        "id_number",
        "mobile",
        "phone",
        "email",
        "identifier",
        "vin",
        "name",
        "address",
        "birth_date",
        "subject",
        "fields",
        "private_key",
        "key",
    }
)
_SCRUB = [
    # JWTs / JWS / JWE compact serialisations
    (re.compile(r"eyJ[\w-]{4,}\.[\w-]*\.[\w-]*(?:\.[\w-]*\.[\w-]*)?"), "[jwt]"),
    # PRC resident ID numbers (18 characters, last a digit or X)
    (re.compile(r"(?<![\w])\d{17}[\dXx](?![\w])"), "[id-number]"),
    # VINs (17 characters, no I, O, Q)
    (re.compile(r"(?<![\w])[A-HJ-NPR-Z0-9]{17}(?![\w])"), "[vin]"),
    # PRC mobile numbers
    (re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d{9}(?!\d)"), "[mobile]"),
    # e-mail addresses
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[email]"),
]


#: What every pattern of ``_SCRUB`` needs: ``eyJ`` (JWT), ``@`` (e-mail), or 11 characters in a
#: row from a VIN's alphabet or digits (an ID number has 17 digits, a mobile number 11, a VIN
#: 17 such characters). A string with none of them is left as it is by every pattern, so the
#: check spares the five substitutions for most log values (methods, routes, ids, timestamps).
_DIGITS_OR_VIN_RUN = re.compile(r"[A-HJ-NPR-Z\d]{11}")


def _scrub(value: str) -> str:
    if "@" not in value and "eyJ" not in value and _DIGITS_OR_VIN_RUN.search(value) is None:
        return value
    for pattern, replacement in _SCRUB:
        value = pattern.sub(replacement, value)
    return value


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _scrub(value)
    if isinstance(value, Mapping):
        return {
            k: ("[redacted]" if str(k).lower() in SENSITIVE_KEYS else _clean(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


#: Values :func:`_clean` returns as they are, recognised by exact type without its checks.
_PLAIN_TYPES = frozenset({int, float, bool, type(None)})


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: drop sensitive fields, scrub sensitive-looking values."""
    for key, value in event_dict.items():  # values replaced in place: the keys do not change
        if key.lower() in SENSITIVE_KEYS:
            event_dict[key] = "[redacted]"
        elif type(value) is str:
            event_dict[key] = _scrub(value)
        elif type(value) not in _PLAIN_TYPES:
            event_dict[key] = _clean(value)
    return event_dict


def _render(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> str:
    return orjson.dumps(event_dict, default=str).decode()


_HANDLER_NAME = "tollhouse-json"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record (test runners and
    process managers swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for structlog and standard-library loggers. Idempotent."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    # Authlib logs every issued token at DEBUG: never below INFO, whatever the root level.
    logging.getLogger("authlib").setLevel(logging.INFO)
    if any(h.get_name() == _HANDLER_NAME for h in root.handlers):
        return
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _render],
        )
    )
    root.addHandler(handler)
    root.setLevel(level.upper())
    # The JSON lines print no call site, thread or process: the standard library's documented
    # optimisation flags spare every record looking them up (the call site is a walk up the
    # stack, ~5 us a request line).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # uvicorn's access log would print raw query strings; the hub logs each request itself.
    logging.getLogger("uvicorn.access").disabled = True


# ---- metrics ----------------------------------------------------------------------------------

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "tollhouse_http_requests",
    "HTTP requests by method, route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "tollhouse_http_request_duration_seconds",
    "Time from the first byte of the request to the end of the response, per route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


#: The labelled children per (method, route, status): ``labels()`` validates and looks them up
#: under a lock on every call; the children themselves are what it returns every time. Bounded
#: like the labels: known methods, route templates, status codes.
_CHILDREN: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one request. Labels stay bounded: route templates, known methods only."""
    method = method if method in _METHODS else "OTHER"
    children = _CHILDREN.get((method, route, status))
    if children is None:
        children = (REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route))
        _CHILDREN[(method, route, status)] = children
    children[0].inc()
    children[1].observe(seconds)


class DatabaseCollector(Collector):
    """Audit events (every decision) by kind and outcome, and the webhook outbox backlog.

    Audit events are counted incrementally: each scrape reads only events above the highest
    index seen so far, so a scrape stays cheap as the log grows.
    """

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._sessions = session_factory
        self._seen = -1
        self._counts: dict[tuple[str, str], int] = {}

    def collect(self) -> Iterable[Any]:
        audit = CounterMetricFamily(
            "tollhouse_audit_events",
            "Audit events (release decisions, explanations, consent changes...) by kind and "
            "outcome, read from the audit log (global across processes).",
            labels=["kind", "outcome"],
        )
        backlog = GaugeMetricFamily(
            "tollhouse_webhook_outbox_backlog",
            "Webhook deliveries waiting to be sent (pending).",
        )
        try:
            with self._sessions() as session:
                rows = session.execute(
                    select(
                        AuditEvent.kind,
                        AuditEvent.outcome,
                        func.count(),
                        func.max(AuditEvent.index),
                    )
                    .where(AuditEvent.index > self._seen)
                    .group_by(AuditEvent.kind, AuditEvent.outcome)
                ).all()
                pending = session.scalar(
                    select(func.count())
                    .select_from(WebhookDelivery)
                    .where(WebhookDelivery.status == NotificationStatus.PENDING)
                )
        except Exception:  # the database is down: /readyz says so, metrics stay partial
            logging.getLogger("tollhouse.metrics").warning("metrics: database not reachable")
            yield audit
            return
        top = self._seen
        for kind, outcome, count, highest in rows:
            key = (str(kind), str(outcome or ""))
            self._counts[key] = self._counts.get(key, 0) + int(count)
            top = max(top, int(highest))
        self._seen = top
        for (kind, outcome), count in sorted(self._counts.items()):
            audit.add_metric([kind, outcome], count)
        yield audit
        backlog.add_metric([], int(pending or 0))
        yield backlog


def metrics_response(database: DatabaseCollector) -> Response:
    """The exposition text: this process's HTTP metrics (or every worker's, when
    ``PROMETHEUS_MULTIPROC_DIR`` is set) and the database-derived metrics."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    scratch = CollectorRegistry()
    scratch.register(database)
    body += generate_latest(scratch)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


_FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def is_loopback_request(request: Request) -> bool:
    """A request from this host that did not come through a proxy."""
    if any(h in request.headers for h in _FORWARDING_HEADERS):
        return False
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
