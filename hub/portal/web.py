"""The portal's web plumbing: templates, the per-request context (session, language, CSRF),
cookies, and the one place where portal errors become HTML pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Form, Request
from fastapi.exceptions import RequestValidationError
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response

from hub.api.deps import RuntimeDep, SessionDep
from hub.portal.auth import SessionStore, SignIn
from hub.portal.consumer import ConsumerPortal, Gettext
from hub.portal.errors import CsrfError, PortalError, PortalNotFoundError, SignInRequiredError
from hub.portal.i18n import LOCALES, N_, Catalogs, pick_locale
from hub.portal.models import PortalSession
from hub.portal.mydata import MyData
from hub.portal.notifier import Message
from hub.portal.rights import ConsumerRights
from hub.portal.settings import PortalSettings
from hub.records.models import DataSubject

PREFIX = "/portal"
TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
LANGUAGE_NAMES = {"zh_CN": "中文", "en": "English"}
#: Headers of every page (the portal's and the regulator dashboard's): no caching, no framing,
#: a strict CSP (no inline script or style, nothing from another origin).
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}


@dataclass
class Portal:
    """Everything the portal builds once per process."""

    settings: PortalSettings
    sessions: SessionStore
    sign_in: SignIn
    consumer: ConsumerPortal
    mydata: MyData
    rights: ConsumerRights
    catalogs: Catalogs
    templates: Environment
    secure_cookies: bool

    @property
    def cookie_name(self) -> str:
        # The __Host- prefix pins the cookie to this host and path "/" and requires Secure.
        return "__Host-tollhouse_portal" if self.secure_cookies else "tollhouse_portal"

    def code_message(self, to: str, code: str, jurisdiction: str | None) -> Message:
        locale = pick_locale(None, jurisdiction=jurisdiction, default=self.settings.default_locale)
        _ = self.catalogs.get(locale).gettext
        minutes = self.settings.code_ttl_seconds // 60
        return Message(
            to=to,
            subject=_("Your Tollhouse sign-in code"),
            body=_(
                "Your Tollhouse sign-in code is {code}. It expires in {minutes} minutes. "
                "Nobody from Tollhouse will ever ask you for it."
            ).format(code=code, minutes=minutes),
        )


def make_templates(directory: Path = TEMPLATES_DIR) -> Environment:
    """The Jinja2 environment (autoescaped, gettext) for a directory of templates; the regulator
    dashboard (:mod:`hub.regulator`) builds its own with it."""
    return Environment(
        loader=FileSystemLoader(directory),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )


def get_portal(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


PortalDep = Annotated[Portal, Depends(get_portal)]


@dataclass
class Context:
    """The request as the portal sees it. Holds plain values (not ORM rows) so that the error
    pages can use them after the database session has been rolled back."""

    portal: Portal
    request: Request
    row: PortalSession | None
    locale: str
    subject_id: str | None
    csrf_token: str
    new_cookie: str | None = None
    clear_cookie: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def gettext(self) -> Gettext:
        return self.portal.catalogs.get(self.locale).gettext

    def render(self, template: str, *, status: int = 200, **values: Any) -> Response:
        _ = self.gettext
        page = self.portal.templates.get_template(template).render(
            _=_,
            gettext=_,
            locale=self.locale,
            html_lang="zh-CN" if self.locale == "zh_CN" else "en",
            languages=[(code, LANGUAGE_NAMES[code]) for code in LOCALES],
            csrf_token=self.csrf_token,
            signed_in=self.subject_id is not None,
            path=self.request.url.path,
            prefix=PREFIX,
            **values,
        )
        return self.finish(HTMLResponse(page, status_code=status))

    def redirect(self, url: str) -> RedirectResponse:
        response = RedirectResponse(url, status_code=303)
        self.finish(response)
        return response

    def finish(self, response: Response) -> Response:
        portal = self.portal
        response.headers.update(PAGE_HEADERS)
        if self.clear_cookie:
            response.delete_cookie(
                portal.cookie_name, path="/", secure=portal.secure_cookies, httponly=True
            )
        if self.new_cookie is not None:
            response.set_cookie(
                portal.cookie_name,
                self.new_cookie,
                path="/",
                httponly=True,
                samesite="lax",
                secure=portal.secure_cookies,
            )
        return response


def get_context(
    request: Request, portal: PortalDep, session: SessionDep, runtime: RuntimeDep
) -> Context:
    row = portal.sessions.find(session, request.cookies.get(portal.cookie_name))
    subject_id = row.subject_id if row else None
    jurisdiction = (
        session.scalar(select(DataSubject.jurisdiction).where(DataSubject.id == subject_id))
        if subject_id
        else None
    )
    context = Context(
        portal=portal,
        request=request,
        row=row,
        locale=pick_locale(
            row.locale if row else None,
            jurisdiction=jurisdiction,
            default=portal.settings.default_locale,
        ),
        subject_id=subject_id,
        csrf_token=row.csrf_token if row else "",
    )
    request.state.portal_context = context
    return context


ContextDep = Annotated[Context, Depends(get_context)]


def with_session(context: ContextDep, session: SessionDep) -> Context:
    """Pages that show a form: make sure there is a session (anonymous if need be) whose CSRF
    token the form can carry."""
    if context.row is None:
        issued = context.portal.sessions.issue(session, locale=None)
        context.row = issued.row
        context.csrf_token = issued.row.csrf_token
        context.new_cookie = issued.cookie
    return context


FormPage = Annotated[Context, Depends(with_session)]


# The checks below read only what ``get_context`` loaded: ``async``, so each costs no thread
# hop (FastAPI runs a sync dependency in the thread pool).
async def checked(
    context: ContextDep, csrf_token: Annotated[str | None, Form(max_length=128)] = None
) -> Context:
    """Every form post: the session's CSRF token must come back (403 otherwise)."""
    if not context.portal.sessions.check_csrf(context.row, csrf_token):
        raise CsrfError()
    return context


Checked = Annotated[Context, Depends(checked)]


@dataclass(frozen=True)
class Consumer:
    context: Context
    subject_id: str


def _consumer(context: Context) -> Consumer:
    if context.subject_id is None:
        raise SignInRequiredError()
    return Consumer(context, context.subject_id)


async def signed_in(context: ContextDep) -> Consumer:
    return _consumer(context)


async def checked_consumer(context: Checked) -> Consumer:
    return _consumer(context)


SignedIn = Annotated[Consumer, Depends(signed_in)]
CheckedConsumer = Annotated[Consumer, Depends(checked_consumer)]


def safe_next(url: str | None) -> str:
    """Only a path inside the portal, never another site."""
    if not url:
        return f"{PREFIX}/home"
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path.startswith(PREFIX + "/"):
        return f"{PREFIX}/home"
    return parts.path


async def portal_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PortalError)
    context: Context | None = getattr(request.state, "portal_context", None)
    portal: Portal = request.app.state.portal
    if context is None:
        context = Context(
            portal=portal,
            request=request,
            row=None,
            locale=portal.settings.default_locale,
            subject_id=None,
            csrf_token="",
        )
    # The database work of this request was rolled back: a session issued in it does not exist.
    context.new_cookie = None
    if isinstance(exc, SignInRequiredError):
        return context.redirect(f"{PREFIX}/sign-in")
    return context.render("error.html", status=exc.status, message=context.gettext(exc.message))


#: The portal's form fields in plain words, for the error page of a value the form refused.
FORM_FIELDS: dict[str, str] = {
    "identifier": N_("Mobile number or e-mail"),
    "mobile": N_("Mobile number"),
    "code": N_("6-digit code"),
    "categories": N_("Which data may they read?"),
    "duration_days": N_("Number of days"),
    "fetches_per_day": N_("Fetches a day"),
    "locale": N_("Language"),
    "outcome": N_("Show"),
    "dataset": N_("Record"),
    "record": N_("Record"),
    "field": N_("Which information is wrong?"),
    "value": N_("What it should say"),
    "note": N_("Anything else we should know (optional)"),
    "confirm": N_("I understand that this cannot be undone."),
    "fmt": N_("Download"),
}


def _is_portal(request: Request) -> bool:
    path = request.url.path
    return path == PREFIX or path.startswith(PREFIX + "/")


def _fallback_context(request: Request) -> Context:
    context: Context | None = getattr(request.state, "portal_context", None)
    if context is None:
        portal: Portal = request.app.state.portal
        context = Context(
            portal=portal,
            request=request,
            row=None,
            locale=portal.settings.default_locale,
            subject_id=None,
            csrf_token="",
        )
    # The database work of this request was rolled back: a session issued in it does not exist.
    context.new_cookie = None
    return context


HttpHandler = Callable[[Request, Exception], Awaitable[Response]]


def html_for_portal(
    api_validation: HttpHandler | None, api_http: HttpHandler | None
) -> tuple[HttpHandler, HttpHandler]:
    """Handlers that answer the portal's pages with an HTML error page in the consumer's
    language (same 4xx status) and leave every other path to the API's problem+json ones."""

    async def validation(request: Request, exc: Exception) -> Response:
        if not _is_portal(request) and api_validation is not None:
            return await api_validation(request, exc)
        assert isinstance(exc, RequestValidationError)
        context = _fallback_context(request)
        _ = context.gettext
        names: list[str] = []
        for error in exc.errors():
            loc = error.get("loc") or ()
            name = str(loc[-1]) if loc else ""
            label = _(FORM_FIELDS[name]) if name in FORM_FIELDS else ""
            if label and label not in names:
                names.append(label)
        return context.render(
            "error.html",
            status=422,
            message=_("Some of the values you entered could not be accepted."),
            fields=names,
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if (not _is_portal(request) or exc.status_code != 404) and api_http is not None:
            return await api_http(request, exc)
        context = _fallback_context(request)
        message = context.gettext(PortalNotFoundError.message)
        return context.render("error.html", status=exc.status_code, message=message)

    return validation, http_error
