"""Rights requests: a consumer asks for a correction (the record's provider resolves or
rejects it through the partner API) or erases their data (crypto-shredding, at once).

Transitions (each one an append-only :class:`RightsRequestEvent`)::

    requested ──▶ in_progress ──▶ completed
        │              │
        └──────────────┴───────▶ rejected      (a reason is required)

Erasure runs requested -> in_progress -> completed in one transaction, after the portal's
confirmation step; in the same transaction the subject's live consents end (revoked, so each
recipient is told to delete; pending requests denied) and open corrections of the subject are
rejected by the hub (their sealed values die with the subject's key). Every change is audited.
The caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.service import ConsentService
from hub.audit import append_event
from hub.crypto import FieldProtector, SubjectKey
from hub.crypto.errors import CryptoError, NormalizationError, SubjectShreddedError
from hub.errors import FieldError, NotFoundError
from hub.records.erasure import erase_subject_id, find_subject
from hub.records.models import Record
from hub.registry.models import Dataset
from hub.rights.errors import (
    InvalidRightsRequestError,
    RightsRequestNotFoundError,
    RightsTransitionError,
    SubjectErasedError,
)
from hub.rights.models import (
    OPEN_STATUSES,
    RightsKind,
    RightsRequest,
    RightsRequestEvent,
    RightsStatus,
)
from hub.store.base import new_id, utcnow

CONSUMER = "consumer"
HUB = "hub"
#: The reasons the hub itself gives (stable texts; the portal shows them translated).
REASON_SHREDDED = "data key destroyed (crypto-shredding)"
REASON_ALREADY_ERASED = "the data had been erased before"
REASON_CLOSED_BY_ERASURE = "The consumer's data was erased."
MAX_VALUE = 500
MAX_NOTE = 1000
MAX_REASON = 500
#: The associated data of a request's sealed values (never a real dataset id).
SEALED_SCOPE = "rights-request"

_ALLOWED: dict[str, frozenset[str]] = {
    RightsStatus.REQUESTED: frozenset(
        {RightsStatus.IN_PROGRESS, RightsStatus.COMPLETED, RightsStatus.REJECTED}
    ),
    RightsStatus.IN_PROGRESS: frozenset({RightsStatus.COMPLETED, RightsStatus.REJECTED}),
}


@dataclass(frozen=True)
class Proposal:
    """A correction's proposed value and note, opened; ``None`` once the subject is erased."""

    value: str | None
    note: str | None


def _event(
    session: Session, request: RightsRequest, to_status: str, *, actor: str, reason: str = ""
) -> None:
    seq = len(request.events) + 1
    event = RightsRequestEvent(
        request_id=request.id,
        seq=seq,
        from_status=request.status if request.events else None,
        to_status=to_status,
        actor=actor,
        reason=reason,
        at=utcnow(),
    )
    session.add(event)
    request.events.append(event)
    request.status = to_status
    request.updated_at = event.at


def _audit(
    session: Session,
    protector: FieldProtector,
    request: RightsRequest,
    *,
    actor: str,
) -> None:
    append_event(
        session,
        {
            "kind": "rights.changed",
            "partner_id": request.provider_id,
            "dataset_id": request.dataset_id,
            "outcome": request.status,
            "reason": f"{request.kind} {request.id} by {actor}",
            "subjects": [protector.pseudonym("audit", request.subject_id)],
        },
    )


def _text(value: str, *, name: str, limit: int, required: bool) -> str:
    text = value.strip()
    if required and not text:
        raise InvalidRightsRequestError(f"{name} is required", [FieldError(name, "required")])
    if len(text) > limit:
        raise InvalidRightsRequestError(
            f"{name} is too long", [FieldError(name, f"at most {limit} characters")]
        )
    return text


def request_correction(
    session: Session,
    *,
    protector: FieldProtector,
    subject_id: str,
    dataset_id: str,
    record_key: str,
    field: str,
    value: str,
    note: str = "",
) -> RightsRequest:
    """Ask the record's provider to correct one field of one of the subject's own records."""
    record = session.scalars(
        select(Record).where(
            Record.dataset_id == dataset_id,
            Record.record_key == record_key,
            Record.subject_id == subject_id,
        )
    ).one_or_none()
    dataset = session.get(Dataset, dataset_id) if record is not None else None
    if record is None or dataset is None:
        raise RightsRequestNotFoundError("No such record of yours.")
    if field not in dataset.field_specs:
        raise InvalidRightsRequestError(
            "not a field of this record", [FieldError("field", "not a field of this record")]
        )
    value = _text(value, name="value", limit=MAX_VALUE, required=True)
    note = _text(note, name="note", limit=MAX_NOTE, required=False)
    duplicate = session.scalar(
        select(RightsRequest.id).where(
            RightsRequest.subject_id == subject_id,
            RightsRequest.kind == RightsKind.CORRECTION,
            RightsRequest.dataset_id == dataset_id,
            RightsRequest.record_key == record_key,
            RightsRequest.field == field,
            RightsRequest.status.in_(list(OPEN_STATUSES)),
        )
    )
    if duplicate is not None:
        raise RightsTransitionError("A correction of this field is already open.")
    request_id = new_id("rrq")
    try:
        sealed = protector.seal_fields(
            session,
            subject_id=subject_id,
            dataset_id=SEALED_SCOPE,
            record_key=request_id,
            fields={"value": value, "note": note},
        )
    except SubjectShreddedError as exc:
        raise SubjectErasedError("Your data was erased; there is nothing left to correct.") from exc
    request = RightsRequest(
        id=request_id,
        kind=RightsKind.CORRECTION,
        subject_id=subject_id,
        provider_id=dataset.provider_id,
        dataset_id=dataset_id,
        record_key=record_key,
        field=field,
        sealed=sealed,
        created_at=utcnow(),
    )
    session.add(request)
    _event(session, request, RightsStatus.REQUESTED, actor=CONSUMER)
    session.flush()
    _audit(session, protector, request, actor=CONSUMER)
    return request


def erase_my_data(
    session: Session,
    *,
    protector: FieldProtector,
    consents: ConsentService,
    subject_id: str,
    identifier: str,
) -> RightsRequest:
    """Erase the signed-in consumer at once by crypto-shredding (``erase_subject_id``), which
    also ends their live consents (each recipient is told to delete what it holds).

    ``identifier`` is the confirmation: the consumer types their own mobile number or, with an
    ``@``, their e-mail address (either one they can sign in with), which must lead by blind
    index to this very subject (a different, unknown or malformed one is refused, nothing
    changes).
    """
    kind = "email" if "@" in identifier else "mobile"
    try:
        subject = find_subject(session, protector, {kind: identifier.strip()})
    except (NotFoundError, NormalizationError, CryptoError):
        subject = None
    if subject is None or subject.id != subject_id:
        raise InvalidRightsRequestError(
            f"that is not your {kind}", [FieldError("identifier", f"not your {kind}")]
        )
    request = RightsRequest(
        id=new_id("rrq"), kind=RightsKind.ERASURE, subject_id=subject_id, created_at=utcnow()
    )
    session.add(request)
    _event(session, request, RightsStatus.REQUESTED, actor=CONSUMER)
    _event(session, request, RightsStatus.IN_PROGRESS, actor=HUB)
    session.flush()
    erasure = erase_subject_id(
        session,
        protector=protector,
        consents=consents,
        subject_id=subject_id,
        actor="portal",
        reason=f"erasure requested by the consumer ({request.id})",
    )
    # Open corrections cannot be carried out any more: their values died with the key.
    for open_request in session.scalars(
        select(RightsRequest).where(
            RightsRequest.subject_id == subject_id,
            RightsRequest.kind == RightsKind.CORRECTION,
            RightsRequest.status.in_(list(OPEN_STATUSES)),
        )
    ):
        _event(
            session,
            open_request,
            RightsStatus.REJECTED,
            actor=HUB,
            reason=REASON_CLOSED_BY_ERASURE,
        )
        _audit(session, protector, open_request, actor=HUB)
    _event(
        session,
        request,
        RightsStatus.COMPLETED,
        actor=HUB,
        reason=REASON_SHREDDED if erasure.erased_now else REASON_ALREADY_ERASED,
    )
    _audit(session, protector, request, actor=CONSUMER)
    return request


def is_erased(session: Session, *, subject_id: str) -> bool:
    """Whether the subject's data key was destroyed."""
    shredded = session.scalar(
        select(SubjectKey.shredded_at).where(SubjectKey.subject_id == subject_id)
    )
    return shredded is not None


def requests_of_subject(session: Session, *, subject_id: str) -> Sequence[RightsRequest]:
    return session.scalars(
        select(RightsRequest)
        .where(RightsRequest.subject_id == subject_id)
        .order_by(RightsRequest.created_at.desc(), RightsRequest.id)
    ).all()


def requests_of_provider(
    session: Session, *, provider_id: str, statuses: Sequence[str], limit: int = 100
) -> Sequence[RightsRequest]:
    """Correction requests routed to this provider, oldest first."""
    return session.scalars(
        select(RightsRequest)
        .where(
            RightsRequest.provider_id == provider_id,
            RightsRequest.kind == RightsKind.CORRECTION,
            RightsRequest.status.in_(list(statuses)),
        )
        .order_by(RightsRequest.created_at, RightsRequest.id)
        .limit(limit)
    ).all()


def request_of_provider(session: Session, *, provider_id: str, request_id: str) -> RightsRequest:
    """One of this provider's correction requests; another's answers like a missing one."""
    request = session.get(RightsRequest, request_id)
    if (
        request is None
        or request.provider_id != provider_id
        or request.kind != RightsKind.CORRECTION
    ):
        raise RightsRequestNotFoundError("No such rights request for you.")
    return request


def open_proposal(
    session: Session, *, protector: FieldProtector, request: RightsRequest
) -> Proposal:
    if not request.sealed:
        return Proposal(None, None)
    try:
        opened: dict[str, Any] = protector.open_fields(
            session,
            subject_id=request.subject_id,
            dataset_id=SEALED_SCOPE,
            record_key=request.id,
            sealed=request.sealed,
        )
    except CryptoError:
        return Proposal(None, None)
    value, note = opened.get("value"), opened.get("note")
    return Proposal(
        value if isinstance(value, str) else None, note if isinstance(note, str) else None
    )


def decide(
    session: Session,
    *,
    protector: FieldProtector,
    provider_id: str,
    request_id: str,
    to_status: RightsStatus,
    reason: str = "",
) -> RightsRequest:
    """The provider moves a correction on: ``in_progress``, ``completed`` or ``rejected``
    (with a reason). A request already finished, or moved back, is a conflict."""
    request = request_of_provider(session, provider_id=provider_id, request_id=request_id)
    reason = _text(
        reason, name="reason", limit=MAX_REASON, required=to_status == RightsStatus.REJECTED
    )
    if to_status not in _ALLOWED.get(request.status, frozenset()):
        raise RightsTransitionError(
            f"A request that is {request.status} cannot become {to_status}."
        )
    actor = f"partner:{provider_id}"
    _event(session, request, to_status, actor=actor, reason=reason)
    session.flush()
    _audit(session, protector, request, actor=actor)
    return request
