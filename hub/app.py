"""The FastAPI application: routers mounted in one place."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from hub import __version__
from hub.api.db_gate import DatabaseGate
from hub.api.docs import install_docs
from hub.api.middleware import RequestContextMiddleware
from hub.api.openapi import install_openapi
from hub.api.problems import install_problem_handlers, problem_response
from hub.api.routes import (
    agreements,
    audit,
    consents,
    datasets,
    decisions,
    health,
    oauth,
    partners,
    rights,
    statistics,
    webhooks,
)
from hub.observability import (
    DatabaseCollector,
    configure_logging,
    is_loopback_request,
    metrics_response,
)
from hub.policy import PolicyStore
from hub.policy.watch import watch_policies
from hub.portal import mount_portal
from hub.regulator import mount_regulator
from hub.runtime import Runtime
from hub.settings import Settings, get_settings

DESCRIPTION = """
Tollhouse brokers data between OEMs, dealers, lenders and insurers. Nothing leaves the hub until
it has passed the consumer's **consent**, the **Rego policy** over the data-sharing agreement,
**field protection** (decryption at rest, de-identification) and the **audit log**.

Partners get an access token at `POST /oauth/token` (client credentials) and call the `/v1` API
with it. Every error is RFC 9457 `application/problem+json` with a stable `type`.
"""


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or get_settings()
    if settings.insecure_transport:
        # Plain http is allowed for local development and behind a TLS-terminating proxy.
        os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
    runtime = runtime or Runtime.build(settings)
    app = FastAPI(
        lifespan=_policy_watch(runtime),
        docs_url=None,  # hardening (issue 12): served by hub.api.docs, assets local, CSP hashes
        redoc_url=None,
        title="Tollhouse",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=[
            {"name": "oauth", "description": "Tokens and discovery."},
            {"name": "agreements", "description": "Pull records under your agreements."},
            {"name": "datasets", "description": "Publish records into your datasets."},
            {"name": "audit", "description": "The access log, for regulators."},
            {"name": "decisions", "description": "Explain decisions; reload the policies."},
            {"name": "statistics", "description": "k-anonymous aggregates for regulators."},
            {"name": "consents", "description": "Consent requests, consents and receipts."},
            {"name": "webhooks", "description": "Consent notifications for recipients."},
            {"name": "partners", "description": "The operator's partner registry (admin)."},
            {"name": "health", "description": "Liveness and readiness."},
        ],
    )
    app.state.runtime = runtime
    install_problem_handlers(app)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        hsts=settings.issuer.startswith("https://"),
    )
    sqlite = runtime.engine.dialect.name == "sqlite"
    app.add_middleware(DatabaseGate, permits=1 if sqlite else settings.db_concurrency)
    for module in (
        health,
        oauth,
        agreements,
        datasets,
        audit,
        consents,
        webhooks,
        decisions,
        statistics,
        partners,
        rights,
    ):
        app.include_router(module.router)
        if module is agreements:
            app.include_router(agreements.pull_router)
    install_docs(app)  # /docs, /redoc (issue 12)
    install_openapi(app)  # the problem+json answers, documented (issue 12)
    mount_portal(app, runtime)  # the consumer portal (issue 5): /portal
    mount_regulator(app, runtime)  # the regulator dashboard (issue 13): /regulator
    _install_observability(app, settings, runtime)
    return app


Lifespan = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]


def _policy_watch(runtime: Runtime) -> Lifespan | None:
    """While the app runs, reload the embedded policies when their files change."""
    store, interval = runtime.explainer, runtime.settings.policy_watch_seconds
    if not isinstance(store, PolicyStore) or interval <= 0:
        return None

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(watch_policies(store, interval_seconds=interval))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return lifespan


# --- hardening (issue 12): JSON logs and GET /metrics (docs/OPERATIONS.md) ---
def _install_observability(app: FastAPI, settings: Settings, runtime: Runtime) -> None:
    configure_logging(settings.log_level)
    if settings.metrics == "off":
        return
    collector = DatabaseCollector(runtime.session_factory)
    open_to_all = settings.metrics == "open"

    async def metrics(request: Request) -> Response:
        if not open_to_all and not is_loopback_request(request):
            return problem_response(
                status=404, slug="not-found", title="Not found", detail="Not Found", request=request
            )
        return await run_in_threadpool(metrics_response, collector)

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)


def create_served_app() -> FastAPI:
    """The app as ``tollhouse serve`` runs it: :func:`create_app`, then the objects built so far
    (models, policies, recognizers, templates) are frozen out of the cyclic garbage collector,
    which otherwise spends 15-25% of a pull re-scanning them (bench/README.md)."""
    served = create_app()
    gc.freeze()
    return served
