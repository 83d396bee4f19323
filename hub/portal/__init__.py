"""The consumer portal (issue 5): sign-in with a one-time code, consents in plain words,
grant/deny/pause/resume/withdraw, in Chinese (default for CN subjects) and English.

Server-rendered pages under ``/portal`` that work without JavaScript. The web layer lives in
the hub (it reads the audit ledger and the consumer's own sealed records); consent rules stay
in :mod:`consent`.
"""

from __future__ import annotations

from typing import cast
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.portal.auth import SessionStore, SignIn
from hub.portal.consumer import ConsumerPortal
from hub.portal.errors import PortalError
from hub.portal.i18n import Catalogs
from hub.portal.mydata import MyData
from hub.portal.notifier import build_notifier
from hub.portal.rights import ConsumerRights
from hub.portal.router import router
from hub.portal.settings import PortalSettings
from hub.portal.web import (
    PREFIX,
    STATIC_DIR,
    HttpHandler,
    Portal,
    html_for_portal,
    make_templates,
    portal_error_handler,
)
from hub.runtime import Runtime

__all__ = ["Portal", "PortalSettings", "build_portal", "mount_portal"]


def build_portal(runtime: Runtime, settings: PortalSettings | None = None) -> Portal:
    settings = settings or PortalSettings()
    sessions = SessionStore(settings)
    return Portal(
        settings=settings,
        sessions=sessions,
        sign_in=SignIn(
            settings=settings,
            protector=runtime.protector,
            notifier=build_notifier(settings, runtime.settings.data_dir),
            keys_dir=runtime.settings.keys_dir,
            sessions=sessions,
        ),
        consumer=ConsumerPortal(runtime.consents),
        mydata=MyData(
            consents=runtime.consents,
            protector=runtime.protector,
            jwks=runtime.signing_keys.public_jwks,
        ),
        rights=ConsumerRights(runtime.protector, runtime.consents),
        catalogs=Catalogs.load(),
        templates=make_templates(),
        secure_cookies=urlsplit(runtime.settings.issuer).scheme == "https",
    )


def mount_portal(app: FastAPI, runtime: Runtime, portal: Portal | None = None) -> None:
    app.state.portal = portal or build_portal(runtime)
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="portal-static")
    app.add_exception_handler(PortalError, portal_error_handler)
    # Bad form values and unknown pages under /portal: an HTML page in the consumer's language
    # (same 4xx); the API keeps its problem+json handlers (installed before the portal).
    validation, http_error = html_for_portal(
        cast(HttpHandler | None, app.exception_handlers.get(RequestValidationError)),
        cast(HttpHandler | None, app.exception_handlers.get(StarletteHTTPException)),
    )
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http_error)
