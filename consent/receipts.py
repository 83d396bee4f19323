"""Signed consent receipts: compact JWS (Ed25519), verifiable with the hub's published JWKS.

A receipt is issued on every grant, change and withdrawal. Its ``jti`` is the receipt id that
release decisions and audit events cite; ``prev`` chains it to the consent's previous receipt.
It names the consent, the recipient and the terms, never the person (no subject identifier):
the consumer and the recipient each already know whose consent it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from consent.errors import InvalidConsentError
from consent.interfaces import SigningKeyProvider
from hub.store.base import new_id

RECEIPT_TYPE = "consent-receipt+jwt"
RECEIPT_ALG = "Ed25519"


@dataclass(frozen=True, slots=True)
class SignedReceipt:
    receipt_id: str
    kid: str
    jws: str


class ReceiptSigner:
    """Signs receipts with the hub's key."""

    def __init__(self, keys: SigningKeyProvider, *, issuer: str) -> None:
        self._keys = keys
        self._issuer = issuer.rstrip("/")

    @property
    def issuer(self) -> str:
        return self._issuer

    def sign(self, claims: Mapping[str, Any], *, issued_at: datetime) -> SignedReceipt:
        receipt_id = new_id("rcp")
        kid = self._keys.kid
        header = {"alg": RECEIPT_ALG, "typ": RECEIPT_TYPE, "kid": kid}
        body = {
            **claims,
            "iss": self._issuer,
            "iat": int(issued_at.timestamp()),
            "jti": receipt_id,
        }
        token = jwt.encode(header, body, self._keys.private_key, algorithms=[RECEIPT_ALG])
        return SignedReceipt(receipt_id=receipt_id, kid=kid, jws=token)


def verify_receipt(token: str, jwks: Mapping[str, Any]) -> dict[str, Any]:
    """Verify a receipt against a published JWKS and return its claims.

    Raises :class:`InvalidConsentError` when the signature, the algorithm or the type is wrong.
    """
    try:
        key_set = KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]
        decoded = jwt.decode(token, key_set, algorithms=[RECEIPT_ALG])
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise InvalidConsentError("the receipt's signature does not verify") from exc
    if decoded.header.get("typ") != RECEIPT_TYPE:
        raise InvalidConsentError("not a consent receipt")
    return dict(decoded.claims)
