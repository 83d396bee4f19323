"""Tables of the partner registry: partners and their credentials, datasets and their schema
versions, data-sharing agreements and their append-only history."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
)
from sqlalchemy.orm import Mapped, Mapper, mapped_column

from hub.store.base import Base, new_id, utcnow

_BIGINT = BigInteger().with_variant(Integer, "sqlite")


class Role(StrEnum):
    OEM = "oem"
    DEALER = "dealer"
    LENDER = "lender"
    INSURER = "insurer"
    REGULATOR = "regulator"
    OPERATOR = "operator"


class PartnerStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class AgreementStatus(StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"
    EXPIRED = "expired"
    REJECTED = "rejected"


class Partner(Base):
    __tablename__ = "partners"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("ptn"))
    name: Mapped[str] = mapped_column(String(200))
    legal_name: Mapped[str] = mapped_column(String(300))
    registration_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20))
    jurisdiction: Mapped[str] = mapped_column(String(2))
    contact: Mapped[dict[str, Any]] = mapped_column(default=dict)
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    status: Mapped[str] = mapped_column(String(20), default=PartnerStatus.ACTIVE)
    client_id: Mapped[str] = mapped_column(String(128), unique=True)
    token_endpoint_auth_method: Mapped[str] = mapped_column(
        String(40), default="client_secret_basic"
    )
    scopes: Mapped[list[str]] = mapped_column(default=list)
    #: Hardening (issue 12): rate limits per route class, over the settings' defaults.
    rate_limits: Mapped[dict[str, Any] | None] = mapped_column()
    #: The registered JWKS document, or the last document fetched from ``jwks_uri``.
    jwks: Mapped[dict[str, Any] | None] = mapped_column()
    jwks_uri: Mapped[str | None] = mapped_column(String(2048))
    jwks_fetched_at: Mapped[datetime | None] = mapped_column()
    #: Bumped on suspension: access tokens carry the epoch they were issued in.
    token_epoch: Mapped[int] = mapped_column(Integer, default=0)
    #: Hardening (issue 12): only DPoP-bound access tokens (RFC 9449) for this partner.
    dpop_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    suspended_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClientSecret(Base):
    """One of a partner's client secrets, stored only as a hash. After a rotation the old ones
    keep working until ``expires_at`` (the grace period), then stop."""

    __tablename__ = "client_secrets"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("sec"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(128))


class PartnerEvent(Base):
    """Append-only history of what the operator did to a partner (registered, secret rotated,
    keys registered, suspended, reinstated)."""

    __tablename__ = "partner_events"

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    event: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Dataset(Base):
    """A provider's dataset. ``schema`` maps each field to its type, category, sensitivity and
    whether it is required (the current version); older versions stay in
    :class:`DatasetSchemaVersion`."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    schema: Mapped[dict[str, Any]] = mapped_column()
    schema_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def field_specs(self) -> dict[str, dict[str, Any]]:
        fields: dict[str, dict[str, Any]] = self.schema["fields"]
        return fields

    @property
    def field_categories(self) -> dict[str, str]:
        return {name: spec["category"] for name, spec in self.field_specs.items()}


class DatasetSchemaVersion(Base):
    """Every version of a dataset's schema, as declared. Versions are additive."""

    __tablename__ = "dataset_schema_versions"

    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    fields: Mapped[dict[str, Any]] = mapped_column()
    declared_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Agreement(Base):
    """A data-sharing agreement: who may pull which fields of a dataset, for which purpose.

    ``initiator`` says who proposed it: the provider (an offer) or the recipient (a request);
    the other party accepts or rejects it. Every change of ``status`` has an
    :class:`AgreementEvent`.
    """

    __tablename__ = "agreements"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("agr"))
    provider_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    recipient_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(64))
    fields: Mapped[list[str]] = mapped_column()
    retention_days: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[datetime] = mapped_column()
    valid_until: Mapped[datetime] = mapped_column()
    cross_border: Mapped[bool] = mapped_column(Boolean, default=False)
    legal_basis: Mapped[str] = mapped_column(String(64), default="consent")
    initiator: Mapped[str] = mapped_column(String(20), default="provider")
    status: Mapped[str] = mapped_column(String(20), default=AgreementStatus.PROPOSED)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()
    #: When the recipient must attest it deleted what it pulled (termination + retention).
    deletion_due_at: Mapped[datetime | None] = mapped_column()
    deletion_attested_at: Mapped[datetime | None] = mapped_column()


class AgreementEvent(Base):
    """Append-only: one row per transition of an agreement, with actor, reason and time."""

    __tablename__ = "agreement_events"
    __table_args__ = (
        UniqueConstraint("agreement_id", "seq", name="uq_agreement_events_agreement_seq"),
    )

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True, autoincrement=True)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(128))
    actor_party: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class AgreementNotice(Base):
    """A notice to a party about an agreement (termination, deletion attestation due).

    Written in the same transaction as the change, together with a webhook notification in the
    consent service's outbox (``consent.webhooks.enqueue_agreement_notice``); the partner
    acknowledges that notification.
    """

    __tablename__ = "agreement_notices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("agn"))
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"), index=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    event_type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AppendOnlyError(RuntimeError):
    """Raised when code tries to change or delete a history row."""


def _refuse_change(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    raise AppendOnlyError(f"{type(target).__name__} rows are append-only")


for _history in (AgreementEvent, PartnerEvent):
    event.listen(_history, "before_update", _refuse_change)
    event.listen(_history, "before_delete", _refuse_change)
