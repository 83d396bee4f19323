"""The regulator dashboard's pages (server-rendered, no JavaScript). Handlers parse the form or
query, call one service function, and render or redirect."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Form, Query
from starlette.responses import Response

from consent.webhooks import unacknowledged_withdrawals
from hub.api.deps import RuntimeDep, SessionDep
from hub.audit import CheckpointError, parse_verifier_key, query_events, verify_checkpoint
from hub.audit.statistics import (
    AccessStatistics,
    TimeRange,
    access_statistics,
    denial_statistics,
    time_range,
)
from hub.errors import ValidationFailedError
from hub.portal.i18n import LOCALES, N_
from hub.registry.partners import list_partners
from hub.regulator.charts import columns_chart, rows_chart
from hub.regulator.logcheck import check_log, current_checkpoint, head_view
from hub.regulator.sessions import revoke
from hub.regulator.signin import sign_in
from hub.regulator.subjects import SubjectNotFoundError, look_up_subject
from hub.regulator.web import (
    PREFIX,
    Checked,
    CheckedSignedIn,
    ContextDep,
    FormPage,
    SignedInDep,
    safe_next,
)
from hub.store.base import utcnow

router = APIRouter(prefix=PREFIX, include_in_schema=False)

NOTICES = {"signed-out": N_("You are signed out.")}
REFUSALS = {
    "client.unknown": N_("The client id or the client secret is wrong."),
    "client.secret_mismatch": N_("The client id or the client secret is wrong."),
    "scope.audit_read_missing": N_(
        "This client may not read the audit log: only regulators and the operator may sign in."
    ),
}
_PSEUDONYM = re.compile(r"^psn_[A-Za-z0-9_-]{22}$")
_FILTER = Annotated[str | None, Query(max_length=64)]
KINDS = (
    "release",
    "release.denied",
    "consent.changed",
    "decision.explained",
    "statistics",
    "subject.erased",
    "subject.looked_up",
    "regulator.sign_in",
)
OUTCOMES = (
    "released",
    "withheld",
    "empty",
    "denied",
    "allowed",
    "explained",
    "aggregated",
    "found",
    "not_found",
    "erased",
)


class _BadInput(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise _BadInput(N_("A date must be written as YYYY-MM-DD.")) from exc


def _window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """Form dates (UTC days, ``until`` inclusive) as a half-open range of instants."""
    first, last = _day(since), _day(until)
    start = datetime.combine(first, time(), UTC) if first else None
    end = datetime.combine(last + timedelta(days=1), time(), UTC) if last else None
    return start, end


@router.get("")
@router.get("/")
def index(context: ContextDep) -> Response:
    return context.redirect(f"{PREFIX}/overview" if context.regulator else f"{PREFIX}/sign-in")


@router.get("/sign-in")
def sign_in_page(
    context: FormPage, notice: Annotated[str | None, Query(max_length=32)] = None
) -> Response:
    if context.regulator:
        return context.redirect(f"{PREFIX}/overview")
    message = context.gettext(NOTICES[notice]) if notice in NOTICES else None
    return context.render("sign_in.html", notice=message, error=None)


@router.post("/sign-in")
def sign_in_submit(
    context: Checked,
    session: SessionDep,
    runtime: RuntimeDep,
    client_id: Annotated[str, Form(max_length=200)],
    client_secret: Annotated[str, Form(max_length=200)],
) -> Response:
    dashboard = context.dashboard
    result = sign_in(
        session,
        settings=dashboard.settings,
        client_id=client_id.strip(),
        client_secret=client_secret.strip(),
        request_id=context.request.state.request_id,
    )
    if not result.ok or result.partner_id is None:
        refusal = result.refusal.value if result.refusal else "client.unknown"
        status = 403 if refusal == "scope.audit_read_missing" else 401
        return context.render(
            "sign_in.html",
            status=status,
            notice=None,
            error=context.gettext(REFUSALS[refusal]),
        )
    assert result.secret_id is not None
    if context.session is not None:  # signing in again replaces a signed-in session: end it
        revoke(session, context.session)
    context.new_session = dashboard.sessions.signed_in(
        partner_id=result.partner_id,
        epoch=result.epoch,
        secret_id=result.secret_id,
        locale=context.session.locale if context.session else None,
        head=current_checkpoint(session, runtime.audit_signer),
    )
    return context.redirect(f"{PREFIX}/overview")


@router.post("/sign-out")
def sign_out(context: Checked, session: SessionDep) -> Response:
    """Ends the session on the server too: a copy of the cookie stops working."""
    if context.session is not None:
        revoke(session, context.session)
    locale = context.session.locale if context.session else None
    context.new_session = context.dashboard.sessions.anonymous(locale=locale)
    return context.redirect(f"{PREFIX}/sign-in?notice=signed-out")


@router.post("/language")
def set_language(
    context: Checked,
    locale: Annotated[str, Form(max_length=8)],
    next_url: Annotated[str | None, Form(alias="next", max_length=200)] = None,
) -> Response:
    assert context.session is not None
    if locale in LOCALES:
        context.new_session = context.dashboard.sessions.with_locale(context.session, locale)
    return context.redirect(safe_next(next_url) if context.regulator else f"{PREFIX}/sign-in")


@router.get("/overview")
def overview(
    signed: SignedInDep,
    session: SessionDep,
    runtime: RuntimeDep,
    since: _FILTER = None,
    until: _FILTER = None,
) -> Response:
    context = signed.context
    k = runtime.settings.statistics_min_k
    try:
        start, end = _window(since, until)
        window = time_range(start, end, now=utcnow())
    except (_BadInput, ValidationFailedError) as exc:
        message = exc.message if isinstance(exc, _BadInput) else N_("That range is not valid.")
        return context.render(
            "overview.html",
            status=422,
            error=context.gettext(message),
            accesses=None,
            denials=None,
            charts=[],
            since=since or "",
            until=until or "",
        )
    accesses = access_statistics(session, window=window, k=k)
    denials = denial_statistics(session, window=window, k=k)
    names = _partner_names(session)
    _ = context.gettext
    charts = [
        columns_chart("per-day", _("Requests per day (UTC)"), _every_day(window, accesses)),
        rows_chart(
            "per-partner",
            _("Requests per partner"),
            [(names.get(p, p), n) for p, n in accesses.per_partner()],
        ),
        rows_chart("per-purpose", _("Requests per purpose"), accesses.per_purpose()),
        rows_chart(
            "denials", _("Denials by reason"), [(r.reason, r.denials) for r in denials.reasons]
        ),
    ]
    return context.render(
        "overview.html",
        accesses=accesses,
        denials=denials,
        charts=charts,
        names=names,
        since=(since or window.since.date().isoformat()),
        until=(until or (window.until - timedelta(microseconds=1)).date().isoformat()),
        error=None,
    )


def _every_day(window: TimeRange, accesses: AccessStatistics) -> list[tuple[str, int]]:
    """Requests per UTC day of the range, days without any included (as 0)."""
    counted = dict(accesses.per_day())
    first, last = window.since.date(), (window.until - timedelta(microseconds=1)).date()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return [(d.isoformat(), counted.get(d.isoformat(), 0)) for d in days]


def _partner_names(session: SessionDep) -> dict[str, str]:
    return {p.id: p.name for p in list_partners(session)}


@router.get("/events")
def events(
    signed: SignedInDep,
    session: SessionDep,
    partner_id: _FILTER = None,
    dataset_id: Annotated[str | None, Query(max_length=128)] = None,
    purpose: _FILTER = None,
    subject: _FILTER = None,
    outcome: Annotated[str | None, Query(max_length=32)] = None,
    kind: _FILTER = None,
    since: _FILTER = None,
    until: _FILTER = None,
    after: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    context = signed.context
    filters = {
        "partner_id": partner_id or "",
        "dataset_id": dataset_id or "",
        "purpose": purpose or "",
        "subject": subject or "",
        "outcome": outcome or "",
        "kind": kind or "",
        "since": since or "",
        "until": until or "",
    }
    page_size = context.dashboard.settings.page_size
    try:
        if subject and not _PSEUDONYM.match(subject.strip()):
            raise _BadInput(
                N_("A subject pseudonym looks like psn_ and 22 letters, digits, - or _.")
            )
        if after and not (after.isascii() and after.isdigit() and len(after) <= 15):
            raise _BadInput(N_("That page does not exist."))
        start, end = _window(since, until)
        if start and end and start >= end:
            raise _BadInput(N_("The first day must not be after the last day."))
    except _BadInput as exc:
        return context.render(
            "events.html",
            status=422,
            error=context.gettext(exc.message),
            rows=[],
            filters=filters,
            kinds=KINDS,
            outcomes=OUTCOMES,
            names=_partner_names(session),
            next_after=None,
            after=None,
        )
    found = query_events(
        session,
        partner_id=partner_id or None,
        kind=kind or None,
        dataset_id=dataset_id or None,
        purpose=purpose or None,
        outcome=outcome or None,
        subject=subject.strip() if subject else None,
        since=start,
        until=end,
        after_index=int(after) if after else None,
        limit=page_size + 1,
    )
    more = len(found) > page_size
    found = found[:page_size]
    rows = []
    for event in found:
        doc = event.event()
        rows.append(
            {
                "index": event.index,
                "time": event.created_at,
                "kind": event.kind,
                "partner_id": event.partner_id,
                "dataset_id": event.dataset_id,
                "purpose": event.purpose,
                "outcome": event.outcome,
                "request_id": event.request_id,
                "reasons": _event_reasons(doc),
                "json": orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode(),
            }
        )
    return context.render(
        "events.html",
        error=None,
        rows=rows,
        filters=filters,
        kinds=KINDS,
        outcomes=OUTCOMES,
        names=_partner_names(session),
        next_after=found[-1].index if more and found else None,
        after=after,
    )


def _event_reasons(doc: dict[str, Any]) -> list[str]:
    reasons = {str(r) for r in doc.get("reasons") or []}
    for decision in doc.get("decisions") or []:
        if isinstance(decision, dict) and decision.get("allow") is False:
            reasons.update(str(r) for r in decision.get("reasons") or [])
    return sorted(reasons)


@router.get("/lookup")
def lookup_page(signed: SignedInDep) -> Response:
    return signed.context.render("lookup.html", result=None, error=None, kind="vin")


@router.post("/lookup")
def lookup_submit(
    signed: CheckedSignedIn,
    session: SessionDep,
    runtime: RuntimeDep,
    kind: Annotated[str, Form(max_length=16)],
    value: Annotated[str, Form(max_length=254)],
) -> Response:
    context = signed.context
    try:
        found = look_up_subject(
            session,
            protector=runtime.protector,
            kind=kind,
            value=value,
            asked_by=signed.regulator.partner_id,
            request_id=context.request.state.request_id,
        )
    except SubjectNotFoundError:
        return context.render(
            "lookup.html",
            status=404,
            result=None,
            kind=kind,
            error=context.gettext(N_("No data subject has this identifier. The lookup is logged.")),
        )
    except ValidationFailedError as exc:
        message = (
            N_("This looks like a placeholder, not a real identifier.")
            if exc.slug == "placeholder-identifier"
            else N_("This identifier is malformed.")
        )
        return context.render(
            "lookup.html", status=422, result=None, kind=kind, error=context.gettext(message)
        )
    return context.render("lookup.html", result=found, error=None, kind=kind)


@router.get("/withdrawals")
def withdrawals(signed: SignedInDep, session: SessionDep) -> Response:
    rows = unacknowledged_withdrawals(session)
    return signed.context.render(
        "withdrawals.html", rows=rows, now=utcnow(), names=_partner_names(session)
    )


@router.get("/verify")
def verify_page(signed: SignedInDep, runtime: RuntimeDep) -> Response:
    stored = None
    if signed.session.head:
        origin, key = parse_verifier_key(runtime.audit_signer.verifier_key)
        try:
            stored = head_view(verify_checkpoint(signed.session.head, key, origin))
        except CheckpointError:
            stored = None
    return signed.context.render("verify.html", stored=stored, check=None)


@router.post("/verify")
def verify_submit(signed: CheckedSignedIn, session: SessionDep, runtime: RuntimeDep) -> Response:
    context = signed.context
    check = check_log(session, runtime.audit_signer, previous_note=signed.session.head)
    if check.keep and check.keep != signed.session.head:
        context.new_session = context.dashboard.sessions.with_head(signed.session, check.keep)
    return context.render("verify.html", stored=None, check=check, status=200 if check.ok else 409)
