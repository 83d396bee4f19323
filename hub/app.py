"""The FastAPI application: routers mounted in one place."""

from __future__ import annotations

import os

from fastapi import FastAPI

from hub import __version__
from hub.api.middleware import RequestContextMiddleware
from hub.api.problems import install_problem_handlers
from hub.api.routes import (
    agreements,
    audit,
    consents,
    datasets,
    decisions,
    health,
    oauth,
    partners,
    statistics,
    webhooks,
)
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
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
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
    ):
        app.include_router(module.router)
    return app
