"""Consent records, their append-only history, receipts, notifications and attestations.

``consents`` holds each consent's *current* terms and status (a projection, so that a release
decision needs one indexed query); everything that ever happened to a consent is an immutable
``consent_events`` row carrying a snapshot of the terms at that moment, numbered ``seq`` 1, 2, 3...
per consent (a unique pair, so two writers can never both append the same step). Receipts,
notifications, webhook deliveries and deletion attestations are append-only as well; a delivery
row only moves forward (pending -> delivered | failed).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.base import Base, new_id, utcnow

_BIGINT = BigInteger().with_variant(Integer, "sqlite")


class ConsentStatus(StrEnum):
    REQUESTED = "requested"
    ACTIVE = "active"
    DENIED = "denied"
    PAUSED = "paused"
    WITHDRAWN = "withdrawn"
    REVOKED = "revoked"
    EXPIRED = "expired"


class ConsentMode(StrEnum):
    """What the recipient may do with what it receives."""

    VIEW_ONCE = "view_once"
    STORE = "store"


class Consent(Base):
    """One consent: a subject lets a recipient (a partner, or any partner of a role) use data
    categories for a purpose, from ``starts_at`` until ``expires_at``.

    ``status`` and the terms are the current state; every change is also an immutable
    :class:`ConsentEvent`. A consent request is a consent in status ``requested`` whose
    ``requested_terms`` keep what was asked (a grant may narrow them, never widen them).
    """

    __tablename__ = "consents"
    __table_args__ = (
        Index("ix_consents_recipient_purpose", "recipient_id", "purpose"),
        Index("ix_consents_status_expires", "status", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("cns"))
    subject_id: Mapped[str] = mapped_column(ForeignKey("data_subjects.id"), index=True)
    #: The recipient partner; ``None`` when the consent names a role instead.
    recipient_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"), index=True)
    recipient_role: Mapped[str | None] = mapped_column(String(20))
    #: The partner that asked for it (``None`` when the consumer granted it unasked).
    requested_by: Mapped[str | None] = mapped_column(ForeignKey("partners.id"))
    purpose: Mapped[str] = mapped_column(String(64))
    categories: Mapped[list[str]] = mapped_column()
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    cross_border: Mapped[bool] = mapped_column(Boolean, default=False)
    mode: Mapped[str] = mapped_column(String(20), default=ConsentMode.STORE)
    retention_days: Mapped[int | None] = mapped_column(Integer)
    data_from: Mapped[datetime | None] = mapped_column()
    data_until: Mapped[datetime | None] = mapped_column()
    fetches_per_day: Mapped[int | None] = mapped_column(Integer)
    #: The recipient's explanation, shown to the consumer with the request.
    reason: Mapped[str] = mapped_column(Text, default="")
    requested_terms: Mapped[dict[str, Any] | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(20))
    starts_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Number of history rows so far (the ``seq`` of the latest :class:`ConsentEvent`).
    version: Mapped[int] = mapped_column(Integer, default=0)
    #: The newest receipt, which release decisions and audit events cite.
    receipt_id: Mapped[str | None] = mapped_column(String(64))


class ConsentFetchCount(Base):
    """How many fetches a capped consent (``fetches_per_day`` set) has had on one UTC day.

    A pull that releases a subject's records under the consent counts one fetch of it
    (:mod:`consent.fetches`), in the pull's transaction; uncapped consents have no rows. Only
    today's row decides anything, so earlier days are pruned by the consent sweep, and an
    erasure deletes the subject's rows (the audit log keeps every release anyway).
    """

    __tablename__ = "consent_fetch_counts"

    consent_id: Mapped[str] = mapped_column(ForeignKey("consents.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True, index=True)
    fetches: Mapped[int] = mapped_column(Integer)
    #: The consent's cap when it was last counted (each claim compares against the cap it passes).
    fetches_per_day: Mapped[int] = mapped_column(Integer)


class ConsentRelease(Base):
    """A partner that received records under a role-addressed consent (``recipient_role`` set,
    no ``recipient_id``): the partners the consent's ending is announced to.

    Written by the release pipeline (:mod:`consent.releases`) in the pull's transaction, once
    per consent and partner; partner-addressed consents have no rows (their recipient is
    known). Kept after the consent ends: notifications and deletion attestations key on it.
    """

    __tablename__ = "consent_releases"

    consent_id: Mapped[str] = mapped_column(ForeignKey("consents.id"), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    first_released_at: Mapped[datetime] = mapped_column()


class ConsentEvent(Base):
    """An append-only history row: who changed a consent, when, why, through which channel,
    and the terms as they stood after the change."""

    __tablename__ = "consent_events"
    __table_args__ = (UniqueConstraint("consent_id", "seq", name="uq_consent_events_consent_seq"),)

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True, autoincrement=True)
    consent_id: Mapped[str] = mapped_column(ForeignKey("consents.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer, default=1)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    terms: Mapped[dict[str, Any] | None] = mapped_column()
    receipt_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsentReceipt(Base):
    """A signed consent receipt (compact JWS, Ed25519) issued on a grant, change or withdrawal."""

    __tablename__ = "consent_receipts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    consent_id: Mapped[str] = mapped_column(ForeignKey("consents.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(40))
    kid: Mapped[str] = mapped_column(String(128))
    jws: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotificationStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class ConsentNotification(Base):
    """An event a recipient must hear about, written in the same transaction as the change (the
    transactional outbox) and acknowledged by the partner: a consent withdrawn, revoked or
    expired (``consent_id`` set), or an agreement terminated or expired (``agreement_id`` set,
    so the recipient learns it must delete what it pulled once the retention period ends)."""

    __tablename__ = "consent_notifications"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("ntf"))
    consent_id: Mapped[str | None] = mapped_column(ForeignKey("consents.id"), index=True)
    agreement_id: Mapped[str | None] = mapped_column(ForeignKey("agreements.id"), index=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    event_type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))


class WebhookEndpoint(Base):
    """Where a partner wants consent notifications delivered."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("whk"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list[str]] = mapped_column()
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column()


class WebhookDelivery(Base):
    """The outbox row: one notification to one endpoint, retried with exponential backoff."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint(
            "notification_id", "endpoint_id", name="uq_webhook_deliveries_notification_endpoint"
        ),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True, autoincrement=True)
    notification_id: Mapped[str] = mapped_column(ForeignKey("consent_notifications.id"))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=NotificationStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    delivered_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeletionAttestation(Base):
    """A recipient's statement that it deleted what it held under an ended consent."""

    __tablename__ = "deletion_attestations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("dla"))
    consent_id: Mapped[str] = mapped_column(ForeignKey("consents.id"), index=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    statement: Mapped[str] = mapped_column(Text)
    records_deleted: Mapped[int | None] = mapped_column(Integer)
    deleted_at: Mapped[datetime] = mapped_column()
    attested_at: Mapped[datetime] = mapped_column(default=utcnow)
