"""The consumer portal's pages (server-rendered, no JavaScript needed). Handlers parse the
form, call one portal or consent service function, and render or redirect."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, Query
from starlette.responses import Response

from hub.api.deps import SessionDep
from hub.portal.auth import Outcome
from hub.portal.errors import PortalNotFoundError
from hub.portal.i18n import LOCALES, N_
from hub.portal.labels import PURPOSE_LABELS
from hub.portal.rights import FormRefused
from hub.portal.web import (
    PREFIX,
    Checked,
    CheckedConsumer,
    ContextDep,
    FormPage,
    SignedIn,
    safe_next,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)

ConsentId = Annotated[str, Path(max_length=64)]
NOTICES = {
    "withdrawn": N_("Consent withdrawn. The next request from this partner will be refused."),
    "paused": N_("Consent paused. Nothing is shared until you resume it."),
    "resumed": N_("Consent resumed."),
    "granted": N_("Consent granted."),
    "denied": N_("Request denied."),
    "signed-out": N_("You are signed out."),
    "correction-requested": N_(
        "Your correction request was sent to the company that provided this record."
    ),
    "erased": N_("Your data was erased. Nobody can read it any more, not even Tollhouse."),
}
ACTIONS = {"pause": "paused", "resume": "resumed", "withdraw": "withdrawn"}


@router.get("")
@router.get("/")
def index(context: ContextDep) -> Response:
    return context.redirect(f"{PREFIX}/home" if context.subject_id else f"{PREFIX}/sign-in")


@router.get("/sign-in")
def sign_in_page(
    context: FormPage, notice: Annotated[str | None, Query(max_length=32)] = None
) -> Response:
    if context.subject_id:
        return context.redirect(f"{PREFIX}/home")
    message = context.gettext(NOTICES[notice]) if notice in NOTICES else None
    return context.render("sign_in.html", notice=message)


@router.post("/sign-in")
def sign_in_start(
    context: Checked,
    session: SessionDep,
    identifier: Annotated[str, Form(max_length=254)],
) -> Response:
    """One field: a mobile number or, with an ``@``, an e-mail address."""
    assert context.row is not None
    client_ip = context.request.client.host if context.request.client else "unknown"
    context.portal.sign_in.start(
        session,
        identifier=identifier,
        client_ip=client_ip,
        anonymous=context.row,
        message=context.portal.code_message,
    )
    return context.redirect(f"{PREFIX}/sign-in/code")


@router.get("/sign-in/code")
def code_page(context: FormPage) -> Response:
    return context.render("code.html", error=None)


@router.post("/sign-in/code")
def code_check(
    context: Checked,
    session: SessionDep,
    code: Annotated[str, Form(max_length=16)],
) -> Response:
    assert context.row is not None
    result = context.portal.sign_in.verify(session, anonymous=context.row, code=code)
    if result.outcome is Outcome.SIGNED_IN:
        assert result.session is not None
        context.new_cookie = result.cookie
        return context.redirect(f"{PREFIX}/home")
    if result.outcome is Outcome.LOCKED:
        error = N_("Too many wrong codes. Please ask for a new code.")
    else:
        error = N_("That code is wrong or has expired.")
    return context.render("code.html", status=400, error=context.gettext(error))


@router.post("/sign-out")
def sign_out(context: Checked, session: SessionDep) -> Response:
    # A new anonymous session (new id) keeps only the chosen language.
    locale = context.row.locale if context.row is not None else None
    if context.row is not None:
        context.portal.sessions.end(session, context.row)
    context.new_cookie = context.portal.sessions.issue(session, locale=locale).cookie
    return context.redirect(f"{PREFIX}/sign-in?notice=signed-out")


@router.post("/language")
def set_language(
    context: Checked,
    locale: Annotated[str, Form(max_length=8)],
    next_url: Annotated[str | None, Form(alias="next", max_length=200)] = None,
) -> Response:
    assert context.row is not None
    if locale in LOCALES:
        context.row.locale = locale
    return context.redirect(safe_next(next_url) if context.subject_id else f"{PREFIX}/sign-in")


@router.get("/home")
def home(
    consumer: SignedIn,
    session: SessionDep,
    notice: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    context = consumer.context
    view = context.portal.consumer.home(
        session, subject_id=consumer.subject_id, gettext=context.gettext
    )
    message = context.gettext(NOTICES[notice]) if notice in NOTICES else None
    return context.render("home.html", home=view, notice=message)


@router.post("/consents/{consent_id}/{action}")
def change_consent(
    consent_id: ConsentId,
    action: Annotated[str, Path(max_length=16)],
    consumer: CheckedConsumer,
    session: SessionDep,
) -> Response:
    if action not in ACTIONS:
        raise PortalNotFoundError(action)
    consumer.context.portal.consumer.change(
        session, subject_id=consumer.subject_id, consent_id=consent_id, action=action
    )
    return consumer.context.redirect(f"{PREFIX}/home?notice={ACTIONS[action]}")


@router.post("/requests/{consent_id}/grant")
def grant_request(
    consent_id: ConsentId,
    consumer: CheckedConsumer,
    session: SessionDep,
    categories: Annotated[list[str] | None, Form(max_length=64)] = None,
    duration_days: Annotated[int | None, Form(ge=1, le=3650)] = None,
    sensitive: Annotated[bool, Form()] = False,
    cross_border: Annotated[bool, Form()] = False,
    fetches_per_day: Annotated[int | None, Form(ge=1, le=100_000)] = None,
) -> Response:
    consumer.context.portal.consumer.grant(
        session,
        subject_id=consumer.subject_id,
        consent_id=consent_id,
        categories=categories or [],
        duration_days=duration_days,
        sensitive=sensitive,
        cross_border=cross_border,
        fetches_per_day=fetches_per_day,
    )
    return consumer.context.redirect(f"{PREFIX}/home?notice=granted")


@router.post("/requests/{consent_id}/deny")
def deny_request(consent_id: ConsentId, consumer: CheckedConsumer, session: SessionDep) -> Response:
    consumer.context.portal.consumer.deny(
        session, subject_id=consumer.subject_id, consent_id=consent_id
    )
    return consumer.context.redirect(f"{PREFIX}/home?notice=denied")


@router.get("/ledger")
def ledger(
    consumer: SignedIn,
    session: SessionDep,
    outcome: Annotated[Literal["allowed", "denied"] | None, Query()] = None,
) -> Response:
    context = consumer.context
    entries = context.portal.mydata.ledger(
        session, subject_id=consumer.subject_id, outcome=outcome, gettext=context.gettext
    )
    return context.render("ledger.html", entries=entries, outcome=outcome, purposes=PURPOSE_LABELS)


@router.get("/my-data")
def my_data(consumer: SignedIn, session: SessionDep) -> Response:
    context = consumer.context
    mydata = context.portal.mydata
    records = mydata.records(session, subject_id=consumer.subject_id)
    return context.render(
        "mydata.html",
        records=records,
        labels=mydata.field_labels(session, records, context.gettext),
        erased=context.portal.rights.erased(session, subject_id=consumer.subject_id),
    )


@router.get("/my-data.{fmt}")
def download_my_data(
    fmt: Annotated[Literal["json", "csv"], Path()], consumer: SignedIn, session: SessionDep
) -> Response:
    mydata = consumer.context.portal.mydata
    records = mydata.records(session, subject_id=consumer.subject_id)
    body, media = (
        (mydata.as_json(records), "application/json")
        if fmt == "json"
        else (mydata.as_csv(records), "text/csv; charset=utf-8")
    )
    response = Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="tollhouse-my-data.{fmt}"'},
    )
    return consumer.context.finish(response)


@router.get("/consents/{consent_id}/receipts")
def receipts(consent_id: ConsentId, consumer: SignedIn, session: SessionDep) -> Response:
    context = consumer.context
    rows = context.portal.mydata.receipts(
        session, subject_id=consumer.subject_id, consent_id=consent_id
    )
    return context.render("receipts.html", consent_id=consent_id, receipts=rows, verified=None)


@router.get("/consents/{consent_id}/receipts/{receipt_id}.jwt")
def download_receipt(
    consent_id: ConsentId,
    receipt_id: Annotated[str, Path(max_length=64)],
    consumer: SignedIn,
    session: SessionDep,
) -> Response:
    receipt = consumer.context.portal.mydata.receipt(
        session, subject_id=consumer.subject_id, consent_id=consent_id, receipt_id=receipt_id
    )
    response = Response(
        receipt.jws,
        media_type="application/jwt",
        headers={"Content-Disposition": f'attachment; filename="{receipt.id}.jwt"'},
    )
    return consumer.context.finish(response)


@router.post("/consents/{consent_id}/receipts/{receipt_id}/verify")
def verify_receipt(
    consent_id: ConsentId,
    receipt_id: Annotated[str, Path(max_length=64)],
    consumer: CheckedConsumer,
    session: SessionDep,
) -> Response:
    context = consumer.context
    mydata = context.portal.mydata
    receipt = mydata.receipt(
        session, subject_id=consumer.subject_id, consent_id=consent_id, receipt_id=receipt_id
    )
    rows = mydata.receipts(session, subject_id=consumer.subject_id, consent_id=consent_id)
    return context.render(
        "receipts.html",
        consent_id=consent_id,
        receipts=rows,
        verified=(receipt.id, mydata.verify(receipt)),
    )


# -- rights: correction and erasure requests -------------------------------------------------

DatasetParam = Annotated[str, Query(alias="dataset", min_length=1, max_length=128)]
RecordParam = Annotated[str, Query(alias="record", min_length=1, max_length=128)]


@router.get("/rights")
def rights(
    consumer: SignedIn,
    session: SessionDep,
    notice: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    context = consumer.context
    rights = context.portal.rights
    views = rights.requests(session, subject_id=consumer.subject_id, gettext=context.gettext)
    message = context.gettext(NOTICES[notice]) if notice in NOTICES else None
    return context.render(
        "rights.html",
        requests=views,
        erased=rights.erased(session, subject_id=consumer.subject_id),
        notice=message,
    )


def _correction_page(
    consumer: SignedIn,
    session: SessionDep,
    *,
    dataset_id: str,
    record_key: str,
    status: int = 200,
    error: str | None = None,
    chosen: str = "",
    value: str = "",
    note: str = "",
) -> Response:
    context = consumer.context
    form = context.portal.rights.correction_form(
        session,
        subject_id=consumer.subject_id,
        dataset_id=dataset_id,
        record_key=record_key,
        gettext=context.gettext,
    )
    return context.render(
        "correction.html",
        status=status,
        form=form,
        error=error,
        chosen=chosen,
        value=value,
        note=note,
    )


@router.get("/rights/correction")
def correction_page(
    consumer: SignedIn, session: SessionDep, dataset_id: DatasetParam, record_key: RecordParam
) -> Response:
    return _correction_page(consumer, session, dataset_id=dataset_id, record_key=record_key)


@router.post("/rights/correction")
def request_correction(
    consumer: CheckedConsumer,
    session: SessionDep,
    dataset_id: Annotated[str, Form(alias="dataset", min_length=1, max_length=128)],
    record_key: Annotated[str, Form(alias="record", min_length=1, max_length=128)],
    field: Annotated[str, Form(max_length=128)] = "",
    value: Annotated[str, Form(max_length=2000)] = "",
    note: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    try:
        consumer.context.portal.rights.request_correction(
            session,
            subject_id=consumer.subject_id,
            dataset_id=dataset_id,
            record_key=record_key,
            field=field,
            value=value,
            note=note,
        )
    except FormRefused as refused:
        return _correction_page(
            consumer,
            session,
            dataset_id=dataset_id,
            record_key=record_key,
            status=refused.status,
            error=consumer.context.gettext(refused.message),
            chosen=field,
            value=value,
            note=note,
        )
    return consumer.context.redirect(f"{PREFIX}/rights?notice=correction-requested")


@router.get("/rights/erasure")
def erasure_page(consumer: SignedIn, session: SessionDep) -> Response:
    context = consumer.context
    erased = context.portal.rights.erased(session, subject_id=consumer.subject_id)
    return context.render("erasure.html", error=None, erased=erased)


@router.post("/rights/erasure")
def erase(
    consumer: CheckedConsumer,
    session: SessionDep,
    identifier: Annotated[str, Form(max_length=254)] = "",
    mobile: Annotated[str, Form(max_length=40)] = "",
    confirm: Annotated[bool, Form()] = False,
) -> Response:
    """Confirmed by the consumer's own mobile number or e-mail address (``identifier``; the
    form of earlier versions sent ``mobile``, still accepted)."""
    context = consumer.context
    typed = identifier or mobile
    if not confirm:
        error = context.gettext(N_("Please tick the box to confirm. Nothing was erased."))
        return context.render("erasure.html", status=422, error=error, erased=False)
    try:
        context.portal.rights.erase(session, subject_id=consumer.subject_id, identifier=typed)
    except FormRefused as refused:
        error = context.gettext(refused.message)
        return context.render("erasure.html", status=refused.status, error=error, erased=False)
    return context.redirect(f"{PREFIX}/rights?notice=erased")
