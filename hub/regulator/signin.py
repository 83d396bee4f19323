"""Signing a regulator in with its OAuth client id and client secret.

The secret is checked exactly as the token endpoint checks ``client_secret_basic``: the partner
must be active (:func:`hub.registry.partners.active_client`) and the secret must match one of its
live secret hashes (:func:`hub.auth.secrets.client_secret_matches`, rotation grace included;
the session keeps the matching secret's id). Only partners holding the ``audit:read`` scope may
sign in.

Every attempt is an audit event (``regulator.sign_in``, outcome ``allowed`` or ``denied`` with a
reason id); the failures in that log are also the rate-limit ledger, so the limit holds across
hub processes without a table of its own. Failures are counted per partner (a known client id)
and, all together, for client ids that name no partner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import bindparam, exists, func, or_, select
from sqlalchemy.orm import Session

from hub.audit import append_event
from hub.audit.models import AuditEvent
from hub.auth.secrets import client_secret_matches
from hub.registry.models import ClientSecret, Partner, PartnerStatus
from hub.registry.partners import active_client, live_secrets
from hub.regulator.errors import RateLimitedError
from hub.regulator.models import RevokedRegulatorSession
from hub.regulator.settings import RegulatorSettings
from hub.store.base import utcnow

SCOPE = "audit:read"
SIGN_IN_KIND = "regulator.sign_in"


class Refusal(StrEnum):
    UNKNOWN_CLIENT = "client.unknown"
    WRONG_SECRET = "client.secret_mismatch"
    NO_SCOPE = "scope.audit_read_missing"


@dataclass(frozen=True, slots=True)
class SignInResult:
    partner_id: str | None
    epoch: int = 0
    #: The client secret (its row id) that matched.
    secret_id: str | None = None
    refusal: Refusal | None = None

    @property
    def ok(self) -> bool:
        return self.refusal is None


def _recent_failures(session: Session, partner_id: str | None, window_seconds: int) -> int:
    since = utcnow() - timedelta(seconds=window_seconds)
    stmt = (
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.kind == SIGN_IN_KIND,
            AuditEvent.created_at > since,
            AuditEvent.outcome == "denied",
        )
    )
    stmt = stmt.where(
        AuditEvent.partner_id.is_(None)
        if partner_id is None
        else AuditEvent.partner_id == partner_id
    )
    return int(session.scalar(stmt) or 0)


def sign_in(
    session: Session,
    *,
    settings: RegulatorSettings,
    client_id: str,
    client_secret: str,
    request_id: str,
) -> SignInResult:
    """Check the credentials; log the attempt (the caller commits). Raises
    :class:`RateLimitedError` before checking anything when the client has failed too often."""
    client = active_client(session, client_id=client_id)
    partner_id = client.partner_id if client is not None else None
    limit = (
        settings.failures_per_partner if client is not None else settings.failures_unknown_clients
    )
    if _recent_failures(session, partner_id, settings.rate_window_seconds) >= limit:
        raise RateLimitedError()
    refusal: Refusal | None = None
    matched: ClientSecret | None = None
    if client is not None:
        # The same live secrets as ``client.secret_hashes``, with their ids: the session keeps
        # the one that matched, and ends when it stops authenticating.
        live = live_secrets(session, partner_id=client.partner_id)
        matches = [s for s in live if client_secret_matches(client_secret, s.secret_hash)]
        matched = matches[0] if matches else None
    if client is None:
        refusal = Refusal.UNKNOWN_CLIENT
    elif matched is None:
        refusal = Refusal.WRONG_SECRET
    elif SCOPE not in client.scopes:
        refusal = Refusal.NO_SCOPE
    append_event(
        session,
        {
            "kind": SIGN_IN_KIND,
            "partner_id": partner_id,
            "request_id": request_id,
            "outcome": "denied" if refusal else "allowed",
            "reasons": [refusal.value] if refusal else [],
        },
    )
    if refusal is not None or client is None or matched is None:
        return SignInResult(partner_id=partner_id, refusal=refusal)
    return SignInResult(
        partner_id=client.partner_id, epoch=client.token_epoch, secret_id=matched.id
    )


@dataclass(frozen=True, slots=True)
class Regulator:
    """The signed-in partner, as the pages show it."""

    partner_id: str
    name: str
    role: str


#: Built once (a dashboard request runs it every time): the partner, whether the session id is
#: revoked, whether the secret the session signed in with still authenticates.
_SESSION_CHECK = select(
    Partner,
    exists().where(RevokedRegulatorSession.session_id == bindparam("session_id")),
    exists().where(
        ClientSecret.id == bindparam("secret_id"),
        ClientSecret.partner_id == bindparam("partner_id"),
        or_(ClientSecret.expires_at.is_(None), ClientSecret.expires_at > bindparam("now")),
    ),
).where(Partner.id == bindparam("partner_id"))


def current_regulator(
    session: Session,
    *,
    partner_id: str,
    epoch: int,
    session_id: str,
    secret_id: str,
    now: datetime | None = None,
) -> Regulator | None:
    """The partner behind a signed-in session, if the session may still use the dashboard: the
    partner is active, still holds ``audit:read`` and has the token epoch it had at sign-in;
    the secret it signed in with still authenticates (not past a rotation's grace period); and
    the session was not signed out (its id is not revoked). One statement, primary-key lookups
    only."""
    params = {
        "partner_id": partner_id,
        "session_id": session_id,
        "secret_id": secret_id,
        "now": now or utcnow(),
    }
    row = session.execute(_SESSION_CHECK, params).one_or_none()
    if row is None:
        return None
    partner, is_revoked, is_secret_live = row
    if (
        is_revoked
        or not is_secret_live
        or partner.status != PartnerStatus.ACTIVE
        or SCOPE not in (partner.scopes or [])
        or partner.token_epoch != epoch
    ):
        return None
    return Regulator(partner_id=partner.id, name=partner.name, role=str(partner.role))
