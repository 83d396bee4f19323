"""Consumer access tokens: how the portal (after its one-time-code sign-in) calls the
consumer-side consent API on behalf of one data subject.

A short-lived JWT signed with the hub's key, ``typ: consumer+jwt``, audience
``<issuer>/consumer``: it can never pass as a partner's access token (``at+jwt``) or as a
consent receipt, nor they as it.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from consent.interfaces import SigningKeyProvider
from hub.store.base import utcnow

CONSUMER_TOKEN_TYPE = "consumer+jwt"
_ALG = "Ed25519"


class InvalidConsumerTokenError(Exception):
    """The consumer token is missing, malformed, expired or not ours."""


class ConsumerTokens:
    def __init__(self, keys: SigningKeyProvider, *, issuer: str, ttl_seconds: int = 900) -> None:
        self._keys = keys
        self._issuer = issuer.rstrip("/")
        self._audience = self._issuer + "/consumer"
        self._ttl = ttl_seconds
        self._claims = jwt.JWTClaimsRegistry(
            leeway=5,
            iss={"essential": True, "value": self._issuer},
            aud={"essential": True, "value": self._audience},
            exp={"essential": True},
            sub={"essential": True},
        )

    def issue(self, subject_id: str, *, now: datetime | None = None) -> str:
        now = now or utcnow()
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": subject_id,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=self._ttl)).timestamp()),
            "jti": secrets.token_urlsafe(12),
        }
        header = {"alg": _ALG, "typ": CONSUMER_TOKEN_TYPE, "kid": self._keys.kid}
        return jwt.encode(header, claims, self._keys.private_key, algorithms=[_ALG])

    def verify(self, token: str) -> str:
        """Return the subject id the token speaks for."""
        try:
            key_set = KeySet.import_key_set(self._keys.public_jwks())  # type: ignore[arg-type]
            decoded = jwt.decode(token, key_set, algorithms=[_ALG])
            if decoded.header.get("typ") != CONSUMER_TOKEN_TYPE:
                raise InvalidConsumerTokenError("not a consumer token")
            self._claims.validate(decoded.claims)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise InvalidConsumerTokenError("the consumer token is invalid or expired") from exc
        subject = decoded.claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise InvalidConsumerTokenError("the consumer token names no subject")
        return subject
