"""Request bodies (``extra="forbid"``: unknown members are a 422) and public shapes of
registry objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from hub.registry.datasets import to_json_schema
from hub.registry.models import (
    AgreementEvent,
    AgreementNotice,
    Dataset,
    DatasetSchemaVersion,
    Partner,
    PartnerEvent,
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


Reason = Field(default="", max_length=1000, description="Why: kept in the history.")

# --------------------------------------------------------------------------------------------
# Partners (admin)


class Contact(_Body):
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone: str | None = Field(default=None, max_length=40)


class PartnerCreate(_Body):
    name: str = Field(min_length=1, max_length=200, description="Display name.")
    legal_name: str = Field(min_length=1, max_length=300)
    registration_id: str = Field(
        min_length=3,
        max_length=64,
        pattern=r"^[0-9A-Za-z-]+$",
        description="Unified social credit code (18 characters) or another registration id.",
    )
    role: Literal["oem", "dealer", "lender", "insurer", "regulator"]
    jurisdiction: str = Field(min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$")
    contact: Contact
    webhook_url: str | None = Field(default=None, max_length=2048)
    client_id: str | None = Field(
        default=None, min_length=3, max_length=128, pattern=r"^[a-z0-9][a-z0-9._-]+$"
    )


class SecretRotation(_Body):
    grace_seconds: int = Field(
        default=86400, ge=0, description="How long the current secrets keep working (0: stop now)."
    )
    reason: str = Reason


class KeysBody(_Body):
    jwks: dict[str, Any] | None = Field(default=None, description="A public JWKS document.")
    jwks_uri: str | None = Field(
        default=None, max_length=2048, description="An https URL serving the partner's JWKS."
    )

    @model_validator(mode="after")
    def _one(self) -> KeysBody:
        if (self.jwks is None) == (self.jwks_uri is None):
            raise ValueError("give exactly one of jwks or jwks_uri")
        return self


class ReasonBody(_Body):
    reason: str = Field(min_length=1, max_length=1000)


class DPoPSetting(_Body):
    """Hardening (issue 12): whether the partner's access tokens must be DPoP-bound."""

    required: bool = Field(description="Only DPoP-bound tokens (RFC 9449) for this partner.")
    reason: str = Reason


class OptionalReasonBody(_Body):
    reason: str = Reason


class PartnerPublic(BaseModel):
    id: str
    name: str
    legal_name: str
    registration_id: str
    role: str
    jurisdiction: str
    contact: dict[str, Any]
    webhook_url: str | None
    status: str
    client_id: str
    scopes: list[str]
    jwks_uri: str | None
    key_ids: list[str]
    dpop_required: bool = False
    suspended_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, p: Partner) -> PartnerPublic:
        return cls(
            id=p.id, name=p.name, legal_name=p.legal_name, registration_id=p.registration_id,
            role=p.role, jurisdiction=p.jurisdiction, contact=dict(p.contact or {}),
            webhook_url=p.webhook_url, status=p.status, client_id=p.client_id,
            scopes=list(p.scopes), jwks_uri=p.jwks_uri,
            key_ids=[str(k.get("kid")) for k in (p.jwks or {}).get("keys", [])],
            dpop_required=bool(p.dpop_required),
            suspended_at=p.suspended_at, created_at=p.created_at,
        )  # fmt: skip


class PartnerList(BaseModel):
    items: list[PartnerPublic]


class CredentialsIssued(BaseModel):
    """Shown once: the hub keeps only a hash of the secret."""

    partner: PartnerPublic
    client_id: str
    client_secret: str
    secret_id: str
    previous_secrets_expire_at: datetime | None = None


class SecretPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    created_at: datetime
    expires_at: datetime | None
    created_by: str


class SecretList(BaseModel):
    items: list[SecretPublic]


class PartnerEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    event: str
    actor: str
    reason: str
    details: dict[str, Any]
    at: datetime

    @classmethod
    def of(cls, e: PartnerEvent) -> PartnerEventPublic:
        return cls.model_validate(e)


class PartnerEventList(BaseModel):
    items: list[PartnerEventPublic]


# --------------------------------------------------------------------------------------------
# Datasets


class DatasetCreate(_Body):
    id: str = Field(min_length=3, max_length=128, pattern=r"^[a-z0-9][a-z0-9._-]+$")
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    json_schema: dict[str, Any] = Field(
        description=(
            "A JSON Schema (object) whose properties carry `x-category` (a data category of "
            "the taxonomy) and optionally `x-sensitive`; optionally, at the top level, "
            "`x-data-time`: the name of the field (a string of format `date` or `date-time`) "
            "that carries a record's data time, checked against consents' data ranges at "
            "release."
        ),
    )


class SchemaVersionCreate(_Body):
    json_schema: dict[str, Any] = Field(description="The whole new version (additive).")


class DatasetPublic(BaseModel):
    id: str
    provider_id: str
    title: str
    description: str
    schema_version: int
    field_specs: dict[str, dict[str, Any]] = Field(
        description=(
            "Each field's `type`, `category`, `sensitive` and `required`; the field named by "
            "`x-data-time` also has `data_time: true`."
        )
    )
    json_schema: dict[str, Any]

    @classmethod
    def of(cls, d: Dataset) -> DatasetPublic:
        return cls(
            id=d.id, provider_id=d.provider_id, title=d.title, description=d.description,
            schema_version=d.schema_version, field_specs=d.field_specs,
            json_schema=to_json_schema(d.field_specs, version=d.schema_version),
        )  # fmt: skip


class DatasetList(BaseModel):
    items: list[DatasetPublic]


class SchemaVersionPublic(BaseModel):
    version: int
    json_schema: dict[str, Any]
    declared_by: str
    created_at: datetime

    @classmethod
    def of(cls, v: DatasetSchemaVersion) -> SchemaVersionPublic:
        return cls(
            version=v.version,
            json_schema=to_json_schema(v.fields, version=v.version),
            declared_by=v.declared_by,
            created_at=v.created_at,
        )


class SchemaVersionList(BaseModel):
    items: list[SchemaVersionPublic]


# --------------------------------------------------------------------------------------------
# Agreements


class AgreementCreate(_Body):
    dataset_id: str = Field(max_length=128)
    recipient_id: str | None = Field(
        default=None,
        max_length=64,
        description="The recipient of an offer (the provider proposing); omit for a request.",
    )
    purpose: str = Field(min_length=1, max_length=64)
    fields: list[str] = Field(min_length=1, max_length=200)
    retention_days: int = Field(ge=1, le=3650)
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    cross_border: bool = False
    legal_basis: Literal[
        "consent", "contract", "legal_obligation", "vital_interest", "public_interest"
    ] = "consent"
    reason: str = Reason


class AttestationBody(_Body):
    statement: str = Field(min_length=1, max_length=4000)


class AgreementPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    provider_id: str
    recipient_id: str
    dataset_id: str
    purpose: str
    fields: list[str]
    retention_days: int
    valid_from: datetime
    valid_until: datetime
    cross_border: bool
    legal_basis: str
    initiator: str
    status: str
    created_at: datetime
    ended_at: datetime | None = None
    deletion_due_at: datetime | None = None
    deletion_attested_at: datetime | None = None


class AgreementList(BaseModel):
    items: list[AgreementPublic]


class AgreementEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    event: str
    from_status: str | None
    to_status: str
    actor: str
    actor_party: str
    reason: str
    at: datetime

    @classmethod
    def of(cls, e: AgreementEvent) -> AgreementEventPublic:
        return cls.model_validate(e)


class AgreementHistory(BaseModel):
    agreement_id: str
    items: list[AgreementEventPublic]


class AgreementNoticePublic(BaseModel):
    id: str
    agreement_id: str
    event_type: str
    payload: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, n: AgreementNotice) -> AgreementNoticePublic:
        return cls(id=n.id, agreement_id=n.agreement_id, event_type=n.event_type,
                   payload=n.payload, created_at=n.created_at)  # fmt: skip


class AgreementNoticeList(BaseModel):
    items: list[AgreementNoticePublic]
