"""Request and response bodies of the consent API (one schema per purpose; extra keys refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from consent.models import (
    Consent,
    ConsentEvent,
    ConsentMode,
    ConsentNotification,
    ConsentReceipt,
    DeletionAttestation,
    WebhookEndpoint,
)

Category = Annotated[str, Field(min_length=1, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubjectLookup(_Strict):
    """How the partner names the consumer (at least one of ``id_number``, ``mobile``, ``vin``,
    ``email``); the hub resolves it by blind index and never stores the value."""

    id_number: str | None = Field(
        default=None, max_length=64, description="PRC resident identity number."
    )
    mobile: str | None = Field(
        default=None, max_length=32, description="Mobile number, E.164 or national."
    )
    vin: str | None = Field(
        default=None, max_length=32, description="VIN of the subject's vehicle."
    )
    email: str | None = Field(
        default=None,
        max_length=254,
        description="E-mail address (one @, at most 254 characters; compared case-insensitively).",
    )


class ConsentRequestCreate(_Strict):
    subject: SubjectLookup
    purpose: str = Field(min_length=1, max_length=64)
    categories: list[Category] = Field(min_length=1, max_length=32)
    duration_days: int = Field(ge=1, le=36500)
    reason: str = Field(min_length=1, max_length=2000, description="Shown to the consumer.")
    sensitive: bool = Field(
        default=False, description="Ask the separate consent for sensitive information."
    )
    cross_border: bool = Field(default=False, description="Ask the separate cross-border consent.")
    mode: ConsentMode = ConsentMode.STORE
    retention_days: int | None = Field(default=None, ge=0, le=36500)
    data_from: AwareDatetime | None = Field(
        default=None,
        description=(
            "The data range's start: only records whose data time (`occurred_at`, their "
            "dataset's `x-data-time` field) is at or after it are released; records with no "
            "known data time are withheld."
        ),
    )
    data_until: AwareDatetime | None = Field(
        default=None,
        description=(
            "The data range's end, exclusive (needs `data_from`); without it the range runs "
            "to the consent's expiry."
        ),
    )
    fetches_per_day: int | None = Field(default=None, ge=1, le=10_000_000)


class GrantBody(_Strict):
    """The consumer's answer; omitted terms keep what was asked, and the separate sensitive
    and cross-border consents are only given when set to true (never assumed)."""

    categories: list[Category] | None = Field(default=None, min_length=1, max_length=32)
    duration_days: int | None = Field(default=None, ge=1, le=36500)
    sensitive: bool = False
    cross_border: bool = False
    mode: ConsentMode | None = None
    retention_days: int | None = Field(default=None, ge=0, le=36500)
    fetches_per_day: int | None = Field(default=None, ge=1, le=10_000_000)
    data_from: AwareDatetime | None = None
    data_until: AwareDatetime | None = None


class ReasonBody(_Strict):
    reason: str = Field(default="", max_length=2000)


class RevocationBody(_Strict):
    reason: str = Field(min_length=1, max_length=2000)


class AttestationBody(_Strict):
    statement: str = Field(min_length=1, max_length=4000)
    deleted_at: AwareDatetime
    records_deleted: int | None = Field(default=None, ge=0)


EventType = Literal[
    "consent.withdrawn",
    "consent.revoked",
    "consent.expired",
    "agreement.terminated",
    "agreement.expired",
]


def _all_events() -> list[EventType]:
    return list(get_args(EventType))


class WebhookCreate(_Strict):
    url: str = Field(min_length=8, max_length=2048)
    events: list[EventType] = Field(default_factory=_all_events, min_length=1)


# ---- responses --------------------------------------------------------------------------------


class ConsentPublic(BaseModel):
    id: str
    status: str
    recipient_id: str | None
    recipient_role: str | None
    purpose: str
    categories: list[str]
    sensitive: bool
    cross_border: bool
    mode: str
    retention_days: int | None
    data_from: datetime | None
    data_until: datetime | None
    fetches_per_day: int | None
    fetches_today: int | None = Field(
        default=None,
        description="Fetches counted today (UTC) against `fetches_per_day`; null without a cap.",
    )
    reason: str
    starts_at: datetime
    expires_at: datetime
    created_at: datetime
    receipt_id: str | None
    requested_terms: dict[str, Any] | None = None
    #: What the consent allows in plain words (consumer views).
    summary: str | None = None
    received_by: list[str] | None = Field(
        default=None,
        description=(
            "Consumer views of a consent addressed to a role: the partners (ids) that received "
            "records under it, empty until one does; null otherwise."
        ),
    )

    @classmethod
    def of(
        cls,
        consent: Consent,
        *,
        status: str | None = None,
        summary: str | None = None,
        fetches_today: int | None = None,
        received_by: list[str] | None = None,
    ) -> ConsentPublic:
        return cls(
            id=consent.id,
            status=status or consent.status,
            recipient_id=consent.recipient_id,
            recipient_role=consent.recipient_role,
            purpose=consent.purpose,
            categories=list(consent.categories),
            sensitive=consent.sensitive,
            cross_border=consent.cross_border,
            mode=consent.mode,
            retention_days=consent.retention_days,
            data_from=consent.data_from,
            data_until=consent.data_until,
            fetches_per_day=consent.fetches_per_day,
            fetches_today=fetches_today,
            reason=consent.reason,
            starts_at=consent.starts_at,
            expires_at=consent.expires_at,
            created_at=consent.created_at,
            receipt_id=consent.receipt_id,
            requested_terms=consent.requested_terms,
            summary=summary,
            received_by=received_by,
        )


class ConsentList(BaseModel):
    items: list[ConsentPublic]
    next_after: str | None = None


class ConsentEventPublic(BaseModel):
    seq: int
    from_status: str | None
    to_status: str
    actor: str
    channel: str
    reason: str
    at: datetime
    receipt_id: str | None
    terms: dict[str, Any] | None

    @classmethod
    def of(cls, event: ConsentEvent) -> ConsentEventPublic:
        return cls(
            seq=event.seq,
            from_status=event.from_status,
            to_status=event.to_status,
            actor=event.actor,
            channel=event.channel,
            reason=event.reason,
            at=event.at,
            receipt_id=event.receipt_id,
            terms=event.terms,
        )


class ConsentHistory(BaseModel):
    consent_id: str
    items: list[ConsentEventPublic]


class ReceiptPublic(BaseModel):
    id: str
    consent_id: str
    seq: int
    event: str
    kid: str
    jws: str
    issued_at: datetime

    @classmethod
    def of(cls, receipt: ConsentReceipt) -> ReceiptPublic:
        return cls(
            id=receipt.id,
            consent_id=receipt.consent_id,
            seq=receipt.seq,
            event=receipt.event,
            kid=receipt.kid,
            jws=receipt.jws,
            issued_at=receipt.issued_at,
        )


class ReceiptList(BaseModel):
    items: list[ReceiptPublic]


class WebhookPublic(BaseModel):
    id: str
    url: str
    events: list[str]
    created_at: datetime

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> WebhookPublic:
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            events=list(endpoint.event_types),
            created_at=endpoint.created_at,
        )


class WebhookList(BaseModel):
    items: list[WebhookPublic]


class NotificationPublic(BaseModel):
    id: str
    consent_id: str | None = Field(description="Set on consent events")
    agreement_id: str | None = Field(description="Set on agreement events")
    type: str
    created_at: datetime
    acknowledged_at: datetime | None
    payload: dict[str, Any]

    @classmethod
    def of(cls, n: ConsentNotification) -> NotificationPublic:
        return cls(
            id=n.id,
            consent_id=n.consent_id,
            agreement_id=n.agreement_id,
            type=n.event_type,
            created_at=n.created_at,
            acknowledged_at=n.acknowledged_at,
            payload=n.payload,
        )


class NotificationList(BaseModel):
    items: list[NotificationPublic]


class AttestationPublic(BaseModel):
    id: str
    consent_id: str
    statement: str
    records_deleted: int | None
    deleted_at: datetime
    attested_at: datetime

    @classmethod
    def of(cls, a: DeletionAttestation) -> AttestationPublic:
        return cls(
            id=a.id,
            consent_id=a.consent_id,
            statement=a.statement,
            records_deleted=a.records_deleted,
            deleted_at=a.deleted_at,
            attested_at=a.attested_at,
        )


class UnacknowledgedPublic(BaseModel):
    notification_id: str
    consent_id: str
    partner_id: str
    type: str
    notified_at: datetime
    delivered: bool
    attempts: int
    deletion_attested: bool


class UnacknowledgedList(BaseModel):
    items: list[UnacknowledgedPublic]
