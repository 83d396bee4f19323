"""The interactive API documentation, served by the hub itself (issue 12, hardening).

Swagger UI (``/docs``) and ReDoc (``/redoc``) load their bundles from ``/docs/static`` (the
assets the ``fastapi-offline`` package ships), never from a CDN. Each page's Content-Security
-Policy admits exactly its own inline start-up script by SHA-256 hash: no ``'unsafe-inline'``
for scripts. ReDoc styles itself with injected ``<style>`` elements, so its page (only) allows
inline styles.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

STATIC_PREFIX = "/docs/static"
STATIC_DIR = Path(str(files("fastapi_offline") / "static"))
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)
_INLINE_STYLE = re.compile(rb"<style>(.*?)</style>", re.DOTALL)
_CLOSED = "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def _hashes(pattern: re.Pattern[bytes], html: bytes) -> str:
    digests = (hashlib.sha256(body).digest() for body in pattern.findall(html))
    return " ".join(f"'sha256-{base64.b64encode(d).decode()}'" for d in digests)


def page_csp(html: bytes, *, inline_styles: bool = False) -> str:
    """The policy for one documentation page: its own scripts and the hub's, nothing else."""
    styles = "'unsafe-inline'" if inline_styles else _hashes(_INLINE_STYLE, html)
    directives = [
        "default-src 'none'",
        f"script-src 'self' {_hashes(_INLINE_SCRIPT, html)}".strip(),
        f"style-src 'self' {styles}".strip(),
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "worker-src blob:",
        _CLOSED,
    ]
    return "; ".join(directives)


def _page(html: bytes, *, inline_styles: bool = False) -> HTMLResponse:
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": page_csp(html, inline_styles=inline_styles),
            "Cache-Control": "no-store",
        },
    )


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs``, ``/docs/oauth2-redirect``, ``/redoc`` and their assets (create the app
    with ``docs_url=None, redoc_url=None``)."""
    openapi_url = app.openapi_url or "/openapi.json"
    swagger = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{app.title} - Swagger UI",
        oauth2_redirect_url="/docs/oauth2-redirect",
        swagger_js_url=f"{STATIC_PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC_PREFIX}/swagger-ui.css",
        swagger_favicon_url=f"{STATIC_PREFIX}/favicon.png",
    ).body
    redirect = get_swagger_ui_oauth2_redirect_html().body
    redoc = get_redoc_html(
        openapi_url=openapi_url,
        title=f"{app.title} - ReDoc",
        redoc_js_url=f"{STATIC_PREFIX}/redoc.standalone.js",
        redoc_favicon_url=f"{STATIC_PREFIX}/favicon.png",
        with_google_fonts=False,
    ).body

    async def swagger_ui() -> HTMLResponse:
        return _page(bytes(swagger))

    async def oauth2_redirect() -> HTMLResponse:
        return _page(bytes(redirect))

    async def redoc_page() -> HTMLResponse:
        return _page(bytes(redoc), inline_styles=True)

    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="docs-static")
    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        "/docs/oauth2-redirect", oauth2_redirect, methods=["GET"], include_in_schema=False
    )
    app.add_api_route("/redoc", redoc_page, methods=["GET"], include_in_schema=False)
