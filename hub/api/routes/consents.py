"""Consent: partners ask for it, consumers answer it, the hub revokes it, regulators watch it.

Partner side (access token): ``/v1/consent-requests``, ``/v1/consents``. Consumer side (a
consumer token issued by the portal after sign-in): ``/v1/me/...``. Handlers resolve who is
asking, call one consent service function and shape the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from consent.models import ConsentStatus
from consent.schemas import (
    AttestationBody,
    AttestationPublic,
    ConsentEventPublic,
    ConsentHistory,
    ConsentList,
    ConsentPublic,
    ConsentRequestCreate,
    GrantBody,
    ReasonBody,
    ReceiptList,
    ReceiptPublic,
    RevocationBody,
    SubjectLookup,
    UnacknowledgedList,
    UnacknowledgedPublic,
)
from consent.service import ConsentOverview, GrantChoices, effective_status
from consent.tokens import InvalidConsumerTokenError
from consent.webhooks import attest_deletion, unacknowledged_withdrawals
from hub.api.denials import AuditDeniedConsent
from hub.api.deps import (
    Auditor,
    CallerDep,
    Puller,
    RequestIdDep,
    RuntimeDep,
    SessionDep,
    require_scope,
)
from hub.api.ratelimit import guard_identity_lookup
from hub.api.responses import json_response
from hub.auth.tokens import AuthenticatedPartner
from hub.crypto.errors import NormalizationError
from hub.errors import FieldError, NotFoundError, UnauthorizedError, ValidationFailedError
from hub.records.models import SubjectIdentifier
from hub.records.service import IDENTIFIER_VALIDATORS
from hub.runtime import Runtime
from hub.store.base import utcnow

router = APIRouter(tags=["consents"])

ConsentId = Annotated[str, Path(max_length=64, description="A consent id (`cns_...`).")]
Admin = Annotated[AuthenticatedPartner, Depends(require_scope("admin"))]
_consumer_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ConsumerToken",
    description="A consumer token issued by the portal after sign-in.",
)

CONSUMER_CHANNEL = "api"


async def get_consumer(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_consumer_bearer)],
) -> str:
    """The data subject a consumer token speaks for. ``async``: a signature check, no I/O, so
    no thread hop."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise UnauthorizedError("A consumer token is required.", error="invalid_request")
    try:
        return runtime.consumer_tokens.verify(credentials.credentials)
    except InvalidConsumerTokenError as exc:
        raise UnauthorizedError("The consumer token is invalid or expired.") from exc


ConsumerDep = Annotated[str, Depends(get_consumer)]


def _identifiers(lookup: SubjectLookup) -> dict[str, str | None]:
    return {
        "id_number": lookup.id_number,
        "mobile": lookup.mobile,
        "vin": lookup.vin,
        "email": lookup.email,
    }


def _resolve_subject(session: Session, runtime: Runtime, lookup: SubjectLookup) -> str:
    """Find the subject by the blind indexes of the identifiers given (ID number, mobile, VIN,
    e-mail); all of them must name the same subject."""
    given = {kind: value for kind, value in _identifiers(lookup).items() if value}
    if not given:
        raise ValidationFailedError(
            "Name the consumer.",
            [FieldError("subject", "give one of id_number, mobile, vin, email")],
        )
    digests: dict[str, str] = {}
    for kind, value in given.items():
        if not IDENTIFIER_VALIDATORS[kind](value):
            raise ValidationFailedError(
                "The identifier is malformed.", [FieldError(f"subject.{kind}", "malformed")]
            )
        try:
            digests[kind] = runtime.protector.blind_index(kind, value)
        except NormalizationError as exc:
            raise ValidationFailedError(
                "The identifier is malformed.", [FieldError(f"subject.{kind}", "malformed")]
            ) from exc
    found = {
        kind: subject
        for kind, digest, subject in session.execute(
            select(
                SubjectIdentifier.kind, SubjectIdentifier.digest, SubjectIdentifier.subject_id
            ).where(SubjectIdentifier.digest.in_(list(digests.values())))
        ).all()
        if digests.get(kind) == digest
    }
    subjects = set(found.values())
    if len(subjects) > 1:
        raise ValidationFailedError(
            "The identifiers name different consumers.",
            [FieldError("subject", "identifiers disagree")],
        )
    if not subjects:
        raise NotFoundError("No consumer known to the hub has this identifier.")
    return subjects.pop()


def _public(item: ConsentOverview) -> ConsentPublic:
    return ConsentPublic.of(
        item.consent,
        status=item.status,
        summary=item.summary,
        fetches_today=item.fetches_today,
        received_by=list(item.received_by) if item.consent.recipient_role else None,
    )


# ---- partner side -----------------------------------------------------------------------------


@router.post(
    "/v1/consent-requests",
    status_code=201,
    response_model=ConsentPublic,
    summary="Ask a consumer for consent",
    description=(
        "The consumer is named by ID number, mobile, VIN or e-mail address (resolved by blind "
        "index; a malformed identifier is 422, one no consumer has is 404). The terms "
        "are checked against the purpose taxonomy and its fair-use caps (422 beyond them). The "
        "consumer grants (possibly narrower) or denies it; watch `GET /v1/consents/{id}`."
    ),
)
def create_consent_request(
    body: ConsentRequestCreate,
    caller: Puller,
    session: SessionDep,
    runtime: RuntimeDep,
    request_id: RequestIdDep,
) -> Response:
    lookup = body.subject  # hardening (issue 12): placeholders and velocity, audited
    guard_identity_lookup(
        runtime, session, caller=caller, identifiers=_identifiers(lookup), request_id=request_id
    )
    subject_id = _resolve_subject(session, runtime, body.subject)
    consent = runtime.consents.request_consent(
        session,
        subject_id=subject_id,
        recipient_id=caller.partner_id,
        recipient_role=caller.role,
        purpose=body.purpose,
        categories=body.categories,
        duration_days=body.duration_days,
        reason=body.reason,
        sensitive=body.sensitive,
        cross_border=body.cross_border,
        mode=body.mode,
        retention_days=body.retention_days,
        data_from=body.data_from,
        data_until=body.data_until,
        fetches_per_day=body.fetches_per_day,
    )
    return json_response(ConsentPublic.of(consent), status_code=201)


@router.get(
    "/v1/consents",
    response_model=ConsentList,
    summary="Consents I hold or asked for, and role-addressed ones I received records under",
)
def list_partner_consents(
    caller: CallerDep,
    session: SessionDep,
    runtime: RuntimeDep,
    status: Annotated[ConsentStatus | None, Query()] = None,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    rows = runtime.consents.consents_of_recipient(
        session,
        partner_id=caller.partner_id,
        statuses=[status] if status else None,
        limit=limit,
        after=after,
    )
    now = utcnow()
    items = [ConsentPublic.of(c, status=effective_status(c, now)) for c in rows]
    next_after = rows[-1].id if len(rows) == limit else None
    return json_response(ConsentList(items=items, next_after=next_after))


@router.get(
    "/v1/consents/unacknowledged-withdrawals",
    response_model=UnacknowledgedList,
    summary="Ended consents whose recipient has not acknowledged the notice (regulators)",
)
def list_unacknowledged(caller: Auditor, session: SessionDep) -> UnacknowledgedList:
    rows = unacknowledged_withdrawals(session)
    return UnacknowledgedList(
        items=[
            UnacknowledgedPublic(
                notification_id=r.notification_id,
                consent_id=r.consent_id,
                partner_id=r.partner_id,
                type=r.event_type,
                notified_at=r.notified_at,
                delivered=r.delivered,
                attempts=r.attempts,
                deletion_attested=r.deletion_attested,
            )
            for r in rows
        ]
    )


@router.get(
    "/v1/consents/{consent_id}",
    response_model=ConsentPublic,
    summary="One consent",
    dependencies=[AuditDeniedConsent],
)
def get_partner_consent(
    consent_id: ConsentId, caller: CallerDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    consent = runtime.consents.consent_of_recipient(
        session, partner_id=caller.partner_id, consent_id=consent_id
    )
    return json_response(ConsentPublic.of(consent, status=effective_status(consent, utcnow())))


@router.get(
    "/v1/consents/{consent_id}/receipts",
    response_model=ReceiptList,
    dependencies=[AuditDeniedConsent],
    summary="A consent's signed receipts (verify with /.well-known/jwks.json)",
)
def get_partner_receipts(
    consent_id: ConsentId, caller: CallerDep, session: SessionDep, runtime: RuntimeDep
) -> ReceiptList:
    consent = runtime.consents.consent_of_recipient(
        session, partner_id=caller.partner_id, consent_id=consent_id
    )
    rows = runtime.consents.receipts(session, consent_id=consent.id)
    return ReceiptList(items=[ReceiptPublic.of(r) for r in rows])


@router.post(
    "/v1/consents/{consent_id}/revocations",
    response_model=ConsentPublic,
    dependencies=[AuditDeniedConsent],
    summary="Revoke a consent (hub operators), with a reason",
)
def revoke_consent(
    consent_id: ConsentId,
    body: RevocationBody,
    caller: Admin,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    consent = runtime.consents.revoke(
        session, consent_id=consent_id, actor=f"admin:{caller.partner_id}", reason=body.reason
    )
    return json_response(ConsentPublic.of(consent))


@router.post(
    "/v1/consents/{consent_id}/deletion-attestations",
    status_code=201,
    dependencies=[AuditDeniedConsent],
    response_model=AttestationPublic,
    summary="Attest deletion of data held under an ended consent",
)
def post_attestation(
    consent_id: ConsentId, body: AttestationBody, caller: Puller, session: SessionDep
) -> Response:
    attestation = attest_deletion(
        session,
        partner_id=caller.partner_id,
        consent_id=consent_id,
        statement=body.statement,
        deleted_at=body.deleted_at,
        records_deleted=body.records_deleted,
    )
    return json_response(AttestationPublic.of(attestation), status_code=201)


# ---- consumer side ----------------------------------------------------------------------------

_ACTIVE_VIEW = [
    ConsentStatus.ACTIVE,
    ConsentStatus.PAUSED,
    ConsentStatus.WITHDRAWN,
    ConsentStatus.REVOKED,
    ConsentStatus.EXPIRED,
    ConsentStatus.DENIED,
]


@router.get(
    "/v1/me/consents",
    response_model=ConsentList,
    summary="My consents, each with what it allows in plain words",
)
def my_consents(
    subject_id: ConsumerDep,
    session: SessionDep,
    runtime: RuntimeDep,
    status: Annotated[ConsentStatus | None, Query()] = None,
) -> ConsentList:
    rows = runtime.consents.overview(
        session, subject_id=subject_id, statuses=[status] if status else _ACTIVE_VIEW
    )
    return ConsentList(items=[_public(r) for r in rows])


@router.get(
    "/v1/me/consent-requests",
    response_model=ConsentList,
    summary="Requests waiting for my answer",
)
def my_requests(subject_id: ConsumerDep, session: SessionDep, runtime: RuntimeDep) -> ConsentList:
    rows = runtime.consents.overview(
        session, subject_id=subject_id, statuses=[ConsentStatus.REQUESTED]
    )
    return ConsentList(items=[_public(r) for r in rows])


@router.post(
    "/v1/me/consent-requests/{consent_id}/grant",
    response_model=ConsentPublic,
    summary="Grant a request (narrower if you like, never wider)",
)
def grant_request(
    consent_id: ConsentId,
    body: GrantBody,
    subject_id: ConsumerDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ConsentPublic:
    consent = runtime.consents.grant_request(
        session,
        consent_id=consent_id,
        subject_id=subject_id,
        choices=GrantChoices(
            categories=body.categories,
            duration_days=body.duration_days,
            sensitive=body.sensitive,
            cross_border=body.cross_border,
            mode=body.mode,
            retention_days=body.retention_days,
            fetches_per_day=body.fetches_per_day,
            data_from=body.data_from,
            data_until=body.data_until,
        ),
        channel=CONSUMER_CHANNEL,
    )
    return _public(runtime.consents.summarise(session, [consent])[0])


@router.post(
    "/v1/me/consent-requests/{consent_id}/deny",
    response_model=ConsentPublic,
    summary="Deny a request",
)
def deny_request(
    consent_id: ConsentId,
    body: ReasonBody,
    subject_id: ConsumerDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ConsentPublic:
    consent = runtime.consents.deny_request(
        session,
        consent_id=consent_id,
        subject_id=subject_id,
        channel=CONSUMER_CHANNEL,
        reason=body.reason,
    )
    return ConsentPublic.of(consent)


Change = Literal["pause", "resume", "withdraw"]


def _change(action: Change) -> Callable[..., ConsentPublic]:
    def handler(
        consent_id: ConsentId,
        body: ReasonBody,
        subject_id: ConsumerDep,
        session: SessionDep,
        runtime: RuntimeDep,
    ) -> ConsentPublic:
        service = runtime.consents
        change = {"pause": service.pause, "resume": service.resume, "withdraw": service.withdraw}
        consent = change[action](
            session,
            consent_id=consent_id,
            subject_id=subject_id,
            channel=CONSUMER_CHANNEL,
            reason=body.reason,
        )
        return _public(service.summarise(session, [consent])[0])

    handler.__name__ = f"{action}_consent"
    return handler


_CHANGES: tuple[tuple[Change, str], ...] = (
    ("pause", "Pause a consent (nothing is released until you resume it)"),
    ("resume", "Resume a paused consent"),
    ("withdraw", "Withdraw a consent: the very next pull releases nothing under it"),
)
for _action, _summary in _CHANGES:
    router.add_api_route(
        f"/v1/me/consents/{{consent_id}}/{_action}",
        _change(_action),
        methods=["POST"],
        response_model=ConsentPublic,
        summary=_summary,
    )


@router.get(
    "/v1/me/consents/{consent_id}/history",
    response_model=ConsentHistory,
    summary="Everything that happened to one of my consents",
)
def my_history(
    consent_id: ConsentId, subject_id: ConsumerDep, session: SessionDep, runtime: RuntimeDep
) -> ConsentHistory:
    consent = runtime.consents.consent_of_subject(
        session, subject_id=subject_id, consent_id=consent_id
    )
    rows = runtime.consents.history(session, consent_id=consent.id)
    return ConsentHistory(consent_id=consent.id, items=[ConsentEventPublic.of(e) for e in rows])


@router.get(
    "/v1/me/consents/{consent_id}/receipts",
    response_model=ReceiptList,
    summary="My signed receipts for one consent",
)
def my_receipts(
    consent_id: ConsentId, subject_id: ConsumerDep, session: SessionDep, runtime: RuntimeDep
) -> ReceiptList:
    consent = runtime.consents.consent_of_subject(
        session, subject_id=subject_id, consent_id=consent_id
    )
    rows = runtime.consents.receipts(session, consent_id=consent.id)
    return ReceiptList(items=[ReceiptPublic.of(r) for r in rows])
