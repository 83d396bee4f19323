"""Checks on the resource side: an access token (Bearer, or DPoP-bound with its proof) becomes an
authenticated partner."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from hub.auth.dpop import (
    DPoPProofError,
    DPoPTokenError,
    InvalidProof,
    remember_proof,
    verify_proof,
)
from hub.auth.keys import SIGNING_ALG, SigningKeys
from hub.errors import UnauthorizedError
from hub.registry.models import Partner, PartnerStatus
from hub.store.prebuilt import PrebuiltSelect

ACCESS_TOKEN_TYPE = "at+jwt"
_INVALID = "The access token is invalid or expired."
#: ``Session.info`` slot holding the partner row the token check read (a :data:`PartnerRow`),
#: for the rest of the request: the rate limiter reads the partner's limits from it instead of
#: loading the partner again.
PARTNER_INFO_KEY = "tollhouse.authenticated_partner"
_partners = Partner.__table__.c
#: Built once: the partner (status, token epoch) is read on every request. Only the columns
#: the checks and the caller need, run on the driver's cursor (no ORM object to build, no
#: SQLAlchemy execution path per request).
_PARTNER_BY_CLIENT_ID = PrebuiltSelect(
    select(
        _partners.id,
        _partners.client_id,
        _partners.role,
        _partners.jurisdiction,
        _partners.name,
        _partners.status,
        _partners.token_epoch,
        _partners.dpop_required,
        _partners.rate_limits,
    ).where(_partners.client_id == bindparam("client_id"))
)


class PartnerRow(NamedTuple):
    """A row of :data:`_PARTNER_BY_CLIENT_ID` (attributes named like :class:`Partner`'s)."""

    id: str
    client_id: str
    role: str
    jurisdiction: str
    name: str
    status: str
    token_epoch: int
    dpop_required: bool
    rate_limits: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class AuthenticatedPartner:
    partner_id: str
    client_id: str
    role: str
    jurisdiction: str
    name: str
    scopes: frozenset[str]
    token_id: str


def bound_key(claims: dict[str, Any]) -> str | None:
    """The thumbprint a DPoP-bound token is bound to (``cnf.jkt``), None for a bearer token."""
    cnf = claims.get("cnf")
    if cnf is None:
        return None
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if not isinstance(jkt, str) or not jkt:
        raise UnauthorizedError(_INVALID)
    return jkt


class _VerifiedTokens:
    """Tokens whose signature and header already checked out, with their claims: a bounded LRU
    keyed by the token's exact text. An Ed25519 signature over the same bytes under the same
    key verifies the same way every time, so a hit skips only that (the JWS parse and the
    signature check, ~70% of the token's cost) and the claim checks that do not depend on the
    time (issuer, audience, types); the lifetime (``exp``, ``nbf``, ``iat``) is checked on every
    request, and the partner is still read from the database."""

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[KeySet, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str, keys: KeySet) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(token)
            if entry is None or entry[0] is not keys:
                return None
            self._entries.move_to_end(token)
            return entry[1]

    def put(self, token: str, keys: KeySet, claims: dict[str, Any]) -> None:
        with self._lock:
            self._entries[token] = (keys, claims)
            self._entries.move_to_end(token)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


class AccessTokenVerifier:
    def __init__(
        self, *, signing_keys: SigningKeys, issuer: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._keys = signing_keys
        self._verified = _VerifiedTokens()
        self._issuer = issuer.rstrip("/")
        self._clock = clock
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
        """A token presented as Bearer (see :meth:`authenticate`)."""
        return self.authenticate(session, scheme="bearer", token=token)

    def authenticate(
        self,
        session: Session,
        *,
        scheme: str,
        token: str,
        proofs: Sequence[str] = (),
        method: str = "GET",
        path: str = "/",
    ) -> AuthenticatedPartner:
        """Verify signature, type, issuer, audience and lifetime, then that the partner is active.

        A key-bound token (``cnf.jkt``) must come as ``DPoP`` with one proof for this request
        (``method``, the issuer's origin + ``path``) signed by that key, never as Bearer; a
        partner registered as ``dpop_required`` has only key-bound tokens. Token failures are
        the same 401 to the caller; a suspended partner's tokens stop at once.
        """
        scheme = scheme.lower()
        claims = self._decode(token)
        jkt = bound_key(claims)
        proof = None
        if scheme == "bearer" and jkt is not None:
            raise DPoPTokenError("This access token is bound to a key: present it as DPoP.")
        if scheme == "dpop":
            if jkt is None:
                raise DPoPTokenError("This access token is not bound to a key.")
            if len(proofs) != 1:
                raise DPoPProofError("Exactly one DPoP proof header is required.")
            try:
                proof = verify_proof(
                    proofs[0],
                    method=method,
                    url=self._issuer + path,
                    now=self._clock(),
                    access_token=token,
                )
            except InvalidProof as exc:
                raise DPoPProofError(f"The DPoP proof is invalid: {exc}.") from exc
            if proof.jkt != jkt:
                raise DPoPProofError("The DPoP proof is not signed by the token's key.")
        found = _PARTNER_BY_CLIENT_ID.first(session, {"client_id": claims["sub"]})
        partner = None if found is None else PartnerRow(*found)
        if partner is None or partner.status != PartnerStatus.ACTIVE:
            raise UnauthorizedError(_INVALID)
        # Registry (issue 9): a suspension bumps the partner's epoch; older tokens stay dead
        # even after reinstatement.
        if claims.get("epoch", 0) != partner.token_epoch:
            raise UnauthorizedError(_INVALID)
        if partner.dpop_required and jkt is None:
            raise DPoPTokenError("This partner's access tokens must be DPoP-bound.")
        if proof is not None and not remember_proof(session, proof):
            raise DPoPProofError("The DPoP proof was used before.")
        session.info[PARTNER_INFO_KEY] = partner
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

    def _decode(self, token: str) -> dict[str, Any]:
        keys = self._keys.public_key_set
        verified = self._verified.get(token, keys)
        try:
            if verified is None:
                decoded = jwt.decode(token, keys, algorithms=[SIGNING_ALG])
                if decoded.header.get("typ") != ACCESS_TOKEN_TYPE:
                    raise UnauthorizedError("Not an access token.")
                verified = dict(decoded.claims)
                self._claims.validate(verified)
                self._verified.put(token, keys, verified)
            else:
                # Only the claims whose check depends on the time: every other check is a
                # function of the token's text and this verifier's settings, and passed when
                # the token was cached.
                if "exp" in verified:
                    self._claims.validate_exp(verified["exp"])
                if "nbf" in verified:
                    self._claims.validate_nbf(verified["nbf"])
                if "iat" in verified:
                    self._claims.validate_iat(verified["iat"])
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise UnauthorizedError(_INVALID) from exc
        claims: dict[str, Any] = dict(verified)
        return claims
