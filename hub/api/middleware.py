"""Pure ASGI middleware: request ids, body cap, security headers, request logs and metrics."""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.errors import PROBLEM_BASE
from hub.observability import observe_request

log = structlog.get_logger("tollhouse.http")

#: The API answers JSON only: nothing may be loaded, framed or run from its responses.
API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
#: ``/docs`` and ``/redoc`` send their own policy (``hub.api.docs``: assets served by the hub,
#: inline scripts admitted by hash); a response that sets a policy keeps it.
HSTS = b"max-age=63072000; includeSubDomains"


def security_headers(path: str, *, hsts: bool) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"cross-origin-resource-policy", b"same-origin"),
        (b"content-security-policy", API_CSP),
    ]
    if hsts:
        headers.append((b"strict-transport-security", HSTS))
    return headers


class RequestContextMiddleware:
    """Gives every request an id (echoed as ``X-Request-ID`` and bound to every log line of the
    request), caps the request body, adds security headers to every response (HSTS when the
    hub's public URL is https), and logs and counts each request by its route template (never
    the raw path or query string, which may carry identifiers)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, hsts: bool = False) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.hsts = hsts
        # The same for every response: built once, copied into each request's list.
        self._security_headers = tuple(security_headers("", hsts=hsts))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        extra_headers = [(b"x-request-id", request_id.encode()), *self._security_headers]
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            status = await self._handle(scope, receive, send, request_id, extra_headers)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            seconds = time.perf_counter() - started
            observe_request(scope.get("method", ""), template, status, seconds)
            log.info(
                "request",
                method=scope.get("method", ""),
                route=template,
                status=status,
                duration_ms=round(seconds * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        request_id: str,
        extra_headers: list[tuple[bytes, bytes]],
    ) -> int:
        status = 500
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await self._too_large(scope, send, request_id, extra_headers)
            return 413

        received = 0
        limit = self.max_body_bytes
        too_large = False
        started = False

        async def capped_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _BodyTooLarge()
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal status, started
            if too_large and not started:
                # The framework turned the cut-off body into its own error (a 400 "error
                # parsing the body"); the caller gets the 413 instead.
                return
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                existing = list(message.get("headers", []))
                names = {k.lower() for k, _ in existing}
                extra = [(k, v) for k, v in extra_headers if k not in names]
                if b"cache-control" not in names:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = existing + extra
            await send(message)

        try:
            await self.app(scope, capped_receive, send_with_headers)
        except _BodyTooLarge:
            too_large = True
        if too_large and not started:
            await self._too_large(scope, send, request_id, extra_headers)
            return 413
        return status

    async def _too_large(
        self, scope: Scope, send: Send, request_id: str, extra_headers: list[tuple[bytes, bytes]]
    ) -> None:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + "payload-too-large",
            "title": "Payload too large",
            "status": 413,
            "detail": f"The request body exceeds {self.max_body_bytes} bytes.",
            "instance": scope.get("path", ""),
            "request_id": request_id,
        }
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"cache-control", b"no-store"),
                    (b"connection", b"close"),
                    *extra_headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": orjson.dumps(body)})


class _BodyTooLarge(Exception):
    pass
