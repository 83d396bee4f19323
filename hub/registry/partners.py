"""Partners: registration, client credentials (rotation with a grace period), public keys
(a JWKS document or URL), suspension and reinstatement. Operator actions, each recorded as an
append-only :class:`PartnerEvent`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.auth.secrets import hash_client_secret, new_client_secret
from hub.errors import FieldError
from hub.registry.errors import (
    DuplicateError,
    PartnerNotFoundError,
    PartnerStateError,
    RegistryValidationError,
)
from hub.registry.jwks import JwksFetcher, validate_public_jwks
from hub.registry.models import ClientSecret, Partner, PartnerEvent, PartnerStatus, Role
from hub.registry.netguard import check_url
from hub.store.base import new_id, utcnow

SCOPES_BY_ROLE: dict[str, tuple[str, ...]] = {
    Role.OEM: ("records:publish", "records:pull"),
    Role.DEALER: ("records:publish", "records:pull"),
    Role.LENDER: ("records:publish", "records:pull"),
    Role.INSURER: ("records:publish", "records:pull"),
    Role.REGULATOR: ("audit:read",),
    Role.OPERATOR: ("admin", "audit:read"),
}
MAX_LIVE_SECRETS = 3


@dataclass(frozen=True)
class IssuedCredentials:
    """A partner's new client credentials. The secret exists only here; the hub keeps a hash."""

    partner_id: str
    client_id: str
    client_secret: str
    secret_id: str
    previous_expire_at: datetime | None = None


def _event(
    session: Session,
    partner_id: str,
    event: str,
    *,
    actor: str,
    reason: str = "",
    details: Mapping[str, Any] | None = None,
    now: datetime,
) -> None:
    session.add(
        PartnerEvent(
            partner_id=partner_id,
            event=event,
            actor=actor,
            reason=reason,
            details=dict(details or {}),
            at=now,
        )
    )


def _locked(session: Session, partner_id: str) -> Partner:
    partner = session.scalars(
        select(Partner).where(Partner.id == partner_id).with_for_update()
    ).one_or_none()
    if partner is None:
        raise PartnerNotFoundError()
    return partner


def register_partner(
    session: Session,
    *,
    name: str,
    legal_name: str,
    registration_id: str,
    role: Role,
    jurisdiction: str,
    actor: str,
    client_id: str | None = None,
    contact: Mapping[str, Any] | None = None,
    webhook_url: str | None = None,
    jwks: Mapping[str, Any] | None = None,
    allow_private_networks: bool = False,
    now: datetime | None = None,
) -> IssuedCredentials:
    """Register a partner with its first client secret (returned once, stored as a hash)."""
    now = now or utcnow()
    if len(jurisdiction) != 2 or not jurisdiction.isalpha():
        raise RegistryValidationError(
            "Invalid jurisdiction.", [FieldError("jurisdiction", "an ISO 3166-1 alpha-2 code")]
        )
    if webhook_url is not None:
        check_url(webhook_url, what="webhook_url", allow_private=allow_private_networks)
    client_id = client_id or new_id("cli")
    if session.scalars(select(Partner.id).where(Partner.client_id == client_id)).first():
        raise DuplicateError(f"The client id '{client_id}' is taken.")
    duplicate = session.scalars(
        select(Partner.id).where(
            Partner.registration_id == registration_id,
            Partner.jurisdiction == jurisdiction.upper(),
        )
    ).first()
    if duplicate is not None:
        raise DuplicateError(
            "A partner with this registration id is registered in this jurisdiction."
        )
    partner = Partner(
        id=new_id("ptn"),
        name=name,
        legal_name=legal_name,
        registration_id=registration_id,
        role=role,
        jurisdiction=jurisdiction.upper(),
        contact=dict(contact or {}),
        webhook_url=webhook_url,
        client_id=client_id,
        scopes=list(SCOPES_BY_ROLE[role]),
        jwks=validate_public_jwks(jwks) if jwks else None,
        created_at=now,
        updated_at=now,
    )
    session.add(partner)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent registration of the same client id
        raise DuplicateError(f"The client id '{client_id}' is taken.") from exc
    secret = new_client_secret()
    row = ClientSecret(
        partner_id=partner.id, secret_hash=hash_client_secret(secret), created_at=now,
        created_by=actor,
    )  # fmt: skip
    session.add(row)
    _event(session, partner.id, "registered", actor=actor, now=now,
           details={"role": role.value, "client_id": client_id})  # fmt: skip
    session.flush()
    return IssuedCredentials(partner.id, partner.client_id, secret, row.id)


def rotate_client_secret(
    session: Session,
    *,
    partner_id: str,
    grace_seconds: int,
    max_grace_seconds: int,
    actor: str,
    reason: str = "",
    now: datetime | None = None,
) -> IssuedCredentials:
    """Issue a new secret; the current ones keep working for ``grace_seconds`` more (0: stop
    now). A secret already due to expire sooner keeps its earlier end."""
    now = now or utcnow()
    if not 0 <= grace_seconds <= max_grace_seconds:
        raise RegistryValidationError(
            "Invalid grace period.",
            [FieldError("grace_seconds", f"between 0 and {max_grace_seconds}")],
        )
    partner = _locked(session, partner_id)
    until = now + timedelta(seconds=grace_seconds)
    for old in live_secrets(session, partner_id=partner.id, now=now):
        if old.expires_at is None or old.expires_at > until:
            old.expires_at = until
    secret = new_client_secret()
    row = ClientSecret(
        partner_id=partner.id, secret_hash=hash_client_secret(secret), created_at=now,
        created_by=actor,
    )  # fmt: skip
    session.add(row)
    partner.updated_at = now
    _event(session, partner.id, "secret_rotated", actor=actor, reason=reason, now=now,
           details={"secret_id": row.id, "previous_expire_at": until.isoformat()})  # fmt: skip
    session.flush()
    live = live_secrets(session, partner_id=partner.id, now=now)
    if len(live) > MAX_LIVE_SECRETS:
        raise PartnerStateError(
            f"At most {MAX_LIVE_SECRETS} secrets may be live at once; rotate with a shorter grace."
        )
    return IssuedCredentials(partner.id, partner.client_id, secret, row.id, until)


def live_secrets(
    session: Session, *, partner_id: str, now: datetime | None = None
) -> Sequence[ClientSecret]:
    """The secrets that authenticate now (not past their grace period)."""
    now = now or utcnow()
    return session.scalars(
        select(ClientSecret)
        .where(
            ClientSecret.partner_id == partner_id,
            or_(ClientSecret.expires_at.is_(None), ClientSecret.expires_at > now),
        )
        .order_by(ClientSecret.created_at, ClientSecret.id)
    ).all()


def secrets_of_partner(session: Session, *, partner_id: str) -> Sequence[ClientSecret]:
    get_partner(session, partner_id=partner_id)
    return session.scalars(
        select(ClientSecret)
        .where(ClientSecret.partner_id == partner_id)
        .order_by(ClientSecret.created_at, ClientSecret.id)
    ).all()


def set_partner_keys(
    session: Session,
    *,
    partner_id: str,
    fetcher: JwksFetcher,
    actor: str,
    jwks: Mapping[str, Any] | None = None,
    jwks_uri: str | None = None,
    now: datetime | None = None,
) -> Partner:
    """Register a partner's public keys: a JWKS document, or a JWKS URL (checked and fetched
    now, so a URL that does not serve a usable key set is refused). ``None`` for both clears
    them."""
    now = now or utcnow()
    if jwks is not None and jwks_uri is not None:
        raise RegistryValidationError(
            "Give a JWKS document or a JWKS URL, not both.",
            [FieldError("jwks_uri", "not together with jwks")],
        )
    partner = _locked(session, partner_id)
    if jwks_uri is not None:
        fetcher.check(jwks_uri)
        document = fetcher.fetch(jwks_uri)
        partner.jwks, partner.jwks_uri, partner.jwks_fetched_at = document, jwks_uri, now
    elif jwks is not None:
        partner.jwks = validate_public_jwks(jwks)
        partner.jwks_uri, partner.jwks_fetched_at = None, None
    else:
        partner.jwks = partner.jwks_uri = partner.jwks_fetched_at = None
    partner.updated_at = now
    kids = sorted(str(k.get("kid")) for k in (partner.jwks or {}).get("keys", []))
    _event(session, partner.id, "keys_registered", actor=actor, now=now,
           details={"jwks_uri": jwks_uri, "kids": kids})  # fmt: skip
    session.flush()
    return partner


def suspend_partner(
    session: Session, *, partner_id: str, actor: str, reason: str, now: datetime | None = None
) -> Partner:
    """Cut the partner off at once: no new tokens, and every token already issued stops
    working (tokens carry the partner's epoch, which this bumps)."""
    now = now or utcnow()
    partner = _locked(session, partner_id)
    if partner.status == PartnerStatus.SUSPENDED:
        raise PartnerStateError("The partner is suspended already.")
    if partner.role == Role.OPERATOR:
        raise PartnerStateError("The operator's own client cannot be suspended this way.")
    partner.status = PartnerStatus.SUSPENDED
    partner.suspended_at = now
    partner.token_epoch += 1
    partner.updated_at = now
    _event(session, partner.id, "suspended", actor=actor, reason=reason, now=now)
    session.flush()
    return partner


def reinstate_partner(
    session: Session, *, partner_id: str, actor: str, reason: str, now: datetime | None = None
) -> Partner:
    """Let the partner back in. Tokens issued before the suspension stay dead."""
    now = now or utcnow()
    partner = _locked(session, partner_id)
    if partner.status != PartnerStatus.SUSPENDED:
        raise PartnerStateError("The partner is not suspended.")
    partner.status = PartnerStatus.ACTIVE
    partner.suspended_at = None
    partner.updated_at = now
    _event(session, partner.id, "reinstated", actor=actor, reason=reason, now=now)
    session.flush()
    return partner


def set_dpop_required(
    session: Session,
    *,
    partner_id: str,
    required: bool,
    actor: str,
    reason: str = "",
    now: datetime | None = None,
) -> Partner:
    """Hardening (issue 12): require DPoP-bound access tokens (RFC 9449) of the partner, or stop
    requiring them. Requiring them also stops its bearer tokens already issued."""
    now = now or utcnow()
    partner = _locked(session, partner_id)
    partner.dpop_required = required
    partner.updated_at = now
    _event(session, partner.id, "dpop_required" if required else "dpop_optional", actor=actor,
           reason=reason, now=now)  # fmt: skip
    session.flush()
    return partner


def get_partner(session: Session, *, partner_id: str) -> Partner:
    partner = session.get(Partner, partner_id)
    if partner is None:
        raise PartnerNotFoundError()
    return partner


def find_partner(session: Session, *, ref: str) -> Partner:
    """A partner by id or client id (for the CLI)."""
    partner = session.scalars(
        select(Partner).where(or_(Partner.id == ref, Partner.client_id == ref))
    ).first()
    if partner is None:
        raise PartnerNotFoundError()
    return partner


def list_partners(
    session: Session, *, role: str | None = None, status: str | None = None
) -> Sequence[Partner]:
    query = select(Partner)
    if role:
        query = query.where(Partner.role == role)
    if status:
        query = query.where(Partner.status == status)
    return session.scalars(query.order_by(Partner.created_at, Partner.id)).all()


def partner_events(session: Session, *, partner_id: str) -> Sequence[PartnerEvent]:
    get_partner(session, partner_id=partner_id)
    return session.scalars(
        select(PartnerEvent)
        .where(PartnerEvent.partner_id == partner_id)
        .order_by(PartnerEvent.at, PartnerEvent.id)
    ).all()


def partners_by_id(session: Session, ids: Sequence[str]) -> dict[str, Partner]:
    rows = session.scalars(select(Partner).where(Partner.id.in_(list(ids)))).all()
    return {p.id: p for p in rows}


@dataclass(frozen=True)
class ClientView:
    """What the token endpoint needs of an active partner, detached from the session."""

    partner_id: str
    client_id: str
    role: str
    scopes: tuple[str, ...]
    secret_hashes: tuple[str, ...]
    jwks: Mapping[str, Any] | None
    jwks_uri: str | None
    jwks_fetched_at: datetime | None
    token_epoch: int
    dpop_required: bool = False


def active_client(
    session: Session, *, client_id: str, now: datetime | None = None
) -> ClientView | None:
    partner = session.scalars(
        select(Partner).where(
            Partner.client_id == client_id, Partner.status == PartnerStatus.ACTIVE
        )
    ).one_or_none()
    if partner is None:
        return None
    hashes = tuple(s.secret_hash for s in live_secrets(session, partner_id=partner.id, now=now))
    return ClientView(
        partner_id=partner.id,
        client_id=partner.client_id,
        role=partner.role,
        scopes=tuple(partner.scopes),
        secret_hashes=hashes,
        jwks=partner.jwks,
        jwks_uri=partner.jwks_uri,
        jwks_fetched_at=partner.jwks_fetched_at,
        token_epoch=partner.token_epoch,
        dpop_required=partner.dpop_required,
    )
