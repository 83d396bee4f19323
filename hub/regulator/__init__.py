"""The regulator dashboard (issue 13): server-rendered pages under ``/regulator`` for partners
holding ``audit:read`` (regulators, the operator): statistics charts, a search over the access
log, a subject-pseudonym lookup, withdrawals not yet acknowledged, and "verify the log".

Sign-in uses the partner's OAuth client id and secret, checked like the token endpoint checks
them; sessions are signed cookies that signing out revokes on the server
(:mod:`hub.regulator.sessions`, table ``regulator_revoked_sessions``). The web machinery
(templates, catalogs, page headers, stylesheet) is the consumer portal's (:mod:`hub.portal`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from hub.portal.i18n import Catalogs
from hub.portal.web import make_templates
from hub.regulator.errors import RegulatorError
from hub.regulator.router import router
from hub.regulator.sessions import SessionCodec
from hub.regulator.settings import RegulatorSettings
from hub.regulator.web import (
    LOCALE_DIR,
    PREFIX,
    STATIC_DIR,
    TEMPLATES_DIR,
    Dashboard,
    regulator_error_handler,
)
from hub.runtime import Runtime

__all__ = ["Dashboard", "RegulatorSettings", "build_dashboard", "mount_regulator"]


def build_dashboard(runtime: Runtime, settings: RegulatorSettings | None = None) -> Dashboard:
    settings = settings or RegulatorSettings()
    return Dashboard(
        settings=settings,
        sessions=SessionCodec(settings, runtime.settings.keys_dir),
        catalogs=Catalogs.load(LOCALE_DIR),
        templates=make_templates(TEMPLATES_DIR),
        secure_cookies=urlsplit(runtime.settings.issuer).scheme == "https",
    )


def mount_regulator(app: FastAPI, runtime: Runtime, dashboard: Dashboard | None = None) -> None:
    app.state.regulator = dashboard or build_dashboard(runtime)
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="regulator-static")
    app.add_exception_handler(RegulatorError, regulator_error_handler)
