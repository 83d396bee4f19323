"""Checks on the resource side: a bearer access token becomes an authenticated partner."""

from __future__ import annotations

from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.auth.keys import SIGNING_ALG, SigningKeys
from hub.errors import UnauthorizedError
from hub.registry.models import Partner, PartnerStatus

ACCESS_TOKEN_TYPE = "at+jwt"


@dataclass(frozen=True, slots=True)
class AuthenticatedPartner:
    partner_id: str
    client_id: str
    role: str
    jurisdiction: str
    name: str
    scopes: frozenset[str]
    token_id: str


class AccessTokenVerifier:
    def __init__(self, *, signing_keys: SigningKeys, issuer: str) -> None:
        self._keys = signing_keys
        self._issuer = issuer.rstrip("/")
        self._claims = jwt.JWTClaimsRegistry(
            leeway=5,
            iss={"essential": True, "value": self._issuer},
            aud={"essential": True, "value": self._issuer},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
            jti={"essential": True},
        )

    def verify(self, session: Session, token: str) -> AuthenticatedPartner:
        """Verify signature, type, issuer, audience and lifetime, then that the partner is active.

        Every failure is the same 401 to the caller; a suspended partner's tokens stop at once.
        """
        try:
            decoded = jwt.decode(token, self._keys.public_key_set, algorithms=[SIGNING_ALG])
            if decoded.header.get("typ") != ACCESS_TOKEN_TYPE:
                raise UnauthorizedError("Not an access token.")
            self._claims.validate(decoded.claims)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise UnauthorizedError("The access token is invalid or expired.") from exc
        claims = decoded.claims
        partner = session.scalars(
            select(Partner).where(Partner.client_id == claims["sub"])
        ).one_or_none()
        if partner is None or partner.status != PartnerStatus.ACTIVE:
            raise UnauthorizedError("The access token is invalid or expired.")
        # Registry (issue 9): a suspension bumps the partner's epoch; older tokens stay dead
        # even after reinstatement.
        if claims.get("epoch", 0) != partner.token_epoch:
            raise UnauthorizedError("The access token is invalid or expired.")
        scope = claims.get("scope") or ""
        return AuthenticatedPartner(
            partner_id=partner.id,
            client_id=partner.client_id,
            role=partner.role,
            jurisdiction=partner.jurisdiction,
            name=partner.name,
            scopes=frozenset(str(scope).split()),
            token_id=str(claims["jti"]),
        )
