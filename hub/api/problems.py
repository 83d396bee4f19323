"""The one place where errors become RFC 9457 problem details."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from consent.errors import (
    ConsentError,
    ConsentNotFoundError,
    FairUseExceededError,
    InvalidConsentError,
    InvalidConsentTransitionError,
    NotificationNotFoundError,
    UnsafeWebhookError,
    WebhookNotFoundError,
    WideningError,
)
from hub.crypto.errors import SubjectShreddedError
from hub.errors import (
    PROBLEM_BASE,
    ConflictError,
    FieldError,
    HubError,
    NotFoundError,
    ValidationFailedError,
)
from hub.policy import PolicyError
from hub.registry.errors import PolicyRefusedError

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("tollhouse.api")

_STATUS_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-failed", "Validation failed"),
    429: ("rate-limited", "Too many requests"),
}


def problem_response(
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    request: Request,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def _from_hub_error(request: Request, exc: HubError) -> Response:
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationFailedError):
        extra["errors"] = [{"field": e.field, "message": e.message} for e in exc.errors]
    # --- registry (issue 9): a refused proposal names the policy rules' reasons ---
    if isinstance(exc, PolicyRefusedError):
        extra["reasons"] = list(exc.reasons)
    return problem_response(
        status=exc.status,
        slug=exc.slug,
        title=exc.title,
        detail=exc.detail,
        request=request,
        headers=exc.headers or None,
        **extra,
    )


def _map_consent_error(exc: ConsentError) -> HubError:
    # --- consent errors (issue 4) ---
    error: HubError
    if isinstance(exc, ConsentNotFoundError):
        return NotFoundError("No consent with this id is visible to you.")
    if isinstance(exc, NotificationNotFoundError):
        return NotFoundError("No notification with this id is visible to you.")
    if isinstance(exc, WebhookNotFoundError):
        return NotFoundError("No webhook endpoint with this id is visible to you.")
    if isinstance(exc, InvalidConsentTransitionError):
        error = ConflictError(str(exc))
        error.slug = "invalid-consent-transition"
        return error
    if isinstance(exc, InvalidConsentError):
        errors = [FieldError(exc.field, str(exc))] if exc.field else []
        error = ValidationFailedError(str(exc), errors)
        if isinstance(exc, FairUseExceededError):
            error.slug = "fair-use-exceeded"
        elif isinstance(exc, WideningError):
            error.slug = "consent-widening"
        else:
            error.slug = "invalid-consent"
        return error
    if isinstance(exc, UnsafeWebhookError):
        error = ValidationFailedError(str(exc), [FieldError("url", str(exc))])
        error.slug = "unsafe-webhook-url"
        return error
    return ValidationFailedError("The consent request is invalid.")


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or ".".join(str(p) for p in loc)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(HubError)
    async def hub_error(request: Request, exc: HubError) -> Response:
        return _from_hub_error(request, exc)

    @app.exception_handler(ConsentError)
    async def consent_error(request: Request, exc: ConsentError) -> Response:
        return _from_hub_error(request, _map_consent_error(exc))

    @app.exception_handler(SubjectShreddedError)
    async def shredded(request: Request, exc: SubjectShreddedError) -> Response:
        return _from_hub_error(request, NotFoundError("The subject's data was erased."))

    @app.exception_handler(PolicyError)
    async def policy_error(request: Request, exc: PolicyError) -> Response:
        log.error("policy evaluation failed: %s", type(exc).__name__)
        return problem_response(
            status=503,
            slug="policy-unavailable",
            title="Policy engine unavailable",
            detail="No decision could be made, so nothing was released.",
            request=request,
        )

    @app.exception_handler(RequestValidationError)
    async def request_validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": _field_path(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        return problem_response(
            status=422,
            slug="validation-failed",
            title="Validation failed",
            detail=f"{len(errors)} problem(s) in the request.",
            request=request,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        slug, title = _STATUS_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem_response(
            status=exc.status_code,
            slug=slug,
            title=title,
            detail=detail,
            request=request,
            headers=dict(exc.headers or {}) or None,
        )

    # --- hardening (issue 12): an overloaded or unreachable database is a 503 to retry, not a
    # 500 (pool exhausted, SQLite "database is locked", connection refused or lost) ---
    @app.exception_handler(PoolTimeoutError)
    @app.exception_handler(OperationalError)
    async def database_busy(request: Request, exc: Exception) -> Response:
        log.warning("database unavailable: %s", type(exc).__name__)
        return problem_response(
            status=503,
            slug="unavailable",
            title="Service unavailable",
            detail="The hub's database is busy or unreachable; nothing was changed. Retry later.",
            request=request,
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return problem_response(
            status=500,
            slug="internal",
            title="Internal error",
            detail="The hub could not complete the request; nothing was changed.",
            request=request,
        )
