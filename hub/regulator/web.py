"""The dashboard's web plumbing: templates, the per-request context (signed session, language,
CSRF), cookies, and the one place where dashboard errors become HTML pages.

Reuses the portal's machinery: its Jinja2 environment factory, message catalogs and locale
choice (:mod:`hub.portal.i18n`), its page headers (strict CSP, no framing, no caching) and its
stylesheet (served under ``/portal/static``); the dashboard adds its own templates, catalogs and
a small stylesheet for tables and charts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Form, Request
from jinja2 import Environment
from starlette.responses import HTMLResponse, RedirectResponse, Response

from hub.api.deps import SessionDep
from hub.portal.i18n import LOCALES, Catalogs, pick_locale
from hub.portal.web import LANGUAGE_NAMES, PAGE_HEADERS
from hub.portal.web import PREFIX as PORTAL_PREFIX
from hub.regulator.errors import CsrfError, RegulatorError, SignInRequiredError
from hub.regulator.sessions import RegulatorSession, SessionCodec
from hub.regulator.settings import RegulatorSettings
from hub.regulator.signin import Regulator, current_regulator

PREFIX = "/regulator"
TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
LOCALE_DIR = Path(__file__).parent / "locale"


@dataclass
class Dashboard:
    """Everything the dashboard builds once per process."""

    settings: RegulatorSettings
    sessions: SessionCodec
    catalogs: Catalogs
    templates: Environment
    secure_cookies: bool

    @property
    def cookie_name(self) -> str:
        return "__Host-tollhouse_regulator" if self.secure_cookies else "tollhouse_regulator"


def get_dashboard(request: Request) -> Dashboard:
    dashboard: Dashboard = request.app.state.regulator
    return dashboard


DashboardDep = Annotated[Dashboard, Depends(get_dashboard)]


@dataclass
class Context:
    """The request as the dashboard sees it (plain values, usable after a rollback)."""

    dashboard: Dashboard
    request: Request
    session: RegulatorSession | None
    regulator: Regulator | None
    locale: str
    #: A session to set in the response's cookie (new or changed), or ``None``.
    new_session: RegulatorSession | None = None
    clear_cookie: bool = False

    @property
    def csrf_token(self) -> str:
        current = self.new_session or self.session
        return current.csrf_token if current else ""

    def gettext(self, message: str) -> str:
        text: str = self.dashboard.catalogs.get(self.locale).gettext(message)
        return text

    def render(self, template: str, *, status: int = 200, **values: Any) -> Response:
        _ = self.gettext
        page = self.dashboard.templates.get_template(template).render(
            _=_,
            gettext=_,
            locale=self.locale,
            html_lang="zh-CN" if self.locale == "zh_CN" else "en",
            languages=[(code, LANGUAGE_NAMES[code]) for code in LOCALES],
            csrf_token=self.csrf_token,
            regulator=self.regulator,
            path=self.request.url.path,
            prefix=PREFIX,
            portal_prefix=PORTAL_PREFIX,
            **values,
        )
        return self.finish(HTMLResponse(page, status_code=status))

    def redirect(self, url: str) -> RedirectResponse:
        response = RedirectResponse(url, status_code=303)
        self.finish(response)
        return response

    def finish(self, response: Response) -> Response:
        dashboard = self.dashboard
        response.headers.update(PAGE_HEADERS)
        if self.clear_cookie and self.new_session is None:
            response.delete_cookie(
                dashboard.cookie_name, path="/", secure=dashboard.secure_cookies, httponly=True
            )
        if self.new_session is not None:
            response.set_cookie(
                dashboard.cookie_name,
                dashboard.sessions.encode(self.new_session),
                path="/",
                httponly=True,
                samesite="strict",
                secure=dashboard.secure_cookies,
            )
        return response


def get_context(request: Request, dashboard: DashboardDep, session: SessionDep) -> Context:
    value = dashboard.sessions.decode(request.cookies.get(dashboard.cookie_name))
    regulator = None
    if value is not None and value.partner_id is not None:
        if value.session_id is not None and value.secret_id is not None:  # always, see from_json
            regulator = current_regulator(
                session,
                partner_id=value.partner_id,
                epoch=value.epoch,
                session_id=value.session_id,
                secret_id=value.secret_id,
            )
        # Signed out elsewhere, suspended, scope withdrawn, epoch bumped or secret rotated
        # away: no session (the sign-in page, the cookie cleared).
        if regulator is None:
            value = None
    context = Context(
        dashboard=dashboard,
        request=request,
        session=value,
        regulator=regulator,
        locale=pick_locale(
            value.locale if value else None,
            jurisdiction=None,
            default=dashboard.settings.default_locale,
        ),
        clear_cookie=value is None and dashboard.cookie_name in request.cookies,
    )
    request.state.regulator_context = context
    return context


ContextDep = Annotated[Context, Depends(get_context)]


# The dependencies below read only what ``get_context`` loaded (and sign an anonymous session
# in memory): ``async``, so each costs no thread hop (FastAPI runs a sync one in the pool).
async def with_session(context: ContextDep) -> Context:
    """Pages with a form: make sure there is a session (anonymous if need be) for its CSRF."""
    if context.session is None:
        context.new_session = context.dashboard.sessions.anonymous()
    return context


FormPage = Annotated[Context, Depends(with_session)]


async def checked(
    context: ContextDep, csrf_token: Annotated[str | None, Form(max_length=128)] = None
) -> Context:
    """Every form post: the session's CSRF token must come back (403 otherwise)."""
    if not context.dashboard.sessions.check_csrf(context.session, csrf_token):
        raise CsrfError()
    return context


Checked = Annotated[Context, Depends(checked)]


@dataclass(frozen=True)
class SignedIn:
    context: Context
    regulator: Regulator
    session: RegulatorSession


def _signed_in(context: Context) -> SignedIn:
    if context.regulator is None or context.session is None:
        raise SignInRequiredError()
    return SignedIn(context, context.regulator, context.session)


async def signed_in(context: ContextDep) -> SignedIn:
    return _signed_in(context)


async def checked_signed_in(context: Checked) -> SignedIn:
    return _signed_in(context)


SignedInDep = Annotated[SignedIn, Depends(signed_in)]
CheckedSignedIn = Annotated[SignedIn, Depends(checked_signed_in)]


def safe_next(url: str | None) -> str:
    """Only a path inside the dashboard, never another site."""
    if not url or not url.startswith(PREFIX + "/") or url.startswith("//") or "\\" in url:
        return f"{PREFIX}/overview"
    return url.split("?", 1)[0]


async def regulator_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegulatorError)
    context: Context | None = getattr(request.state, "regulator_context", None)
    dashboard: Dashboard = request.app.state.regulator
    if context is None:
        context = Context(
            dashboard=dashboard,
            request=request,
            session=None,
            regulator=None,
            locale=dashboard.settings.default_locale,
        )
    if isinstance(exc, SignInRequiredError):
        return context.redirect(f"{PREFIX}/sign-in")
    context.new_session = None
    return context.render("error.html", status=exc.status, message=context.gettext(exc.message))
