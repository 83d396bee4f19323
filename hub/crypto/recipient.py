"""Encryption to a recipient: compact JWE, ECDH-ES key agreement + A256GCM (joserfc).

The plaintext is the JSON text of the value; the recipient's connector SDK decrypts with its
private key (``jwe.decrypt_compact(token, private_key, algorithms=["ECDH-ES", "A256GCM"])``) and
parses the JSON. Accepted keys: EC P-256/P-384/P-521 and OKP X25519/X448, public part only.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, import_key

from hub.crypto._codec import encode_value
from hub.crypto.errors import RecipientKeyError

__all__ = ["JWE_ALGORITHMS", "encrypt_for_recipient", "recipient_encryption_key"]

JWE_ALGORITHMS = ("ECDH-ES", "A256GCM")
_CURVES = {"EC": {"P-256", "P-384", "P-521"}, "OKP": {"X25519", "X448"}}
_PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}


def encrypt_for_recipient(public_jwk: dict[str, Any], value: Any) -> str:
    """Compact JWE of ``value`` (any JSON value) to ``public_jwk``; its ``kid`` goes in the header.

    ``RecipientKeyError`` if the JWK is not an EC/OKP public key; ``FieldEncodeError`` for non-JSON.
    """
    if not isinstance(public_jwk, dict):
        raise RecipientKeyError("recipient key must be a JWK object")
    if _PRIVATE_MEMBERS & public_jwk.keys():
        raise RecipientKeyError("recipient JWK contains private key material; register public keys")
    kty, crv = public_jwk.get("kty"), public_jwk.get("crv")
    if kty not in _CURVES or crv not in _CURVES[str(kty)]:
        raise RecipientKeyError(f"unsupported recipient key type {kty!r}/{crv!r} for ECDH-ES")
    key = _import(json.dumps(public_jwk, sort_keys=True))
    header: dict[str, Any] = {"alg": "ECDH-ES", "enc": "A256GCM", "cty": "json"}
    kid = public_jwk.get("kid")
    if isinstance(kid, str) and kid:
        header["kid"] = kid
    payload = encode_value(value).lstrip(b"\x00")  # plain JSON text either way
    try:
        return jwe.encrypt_compact(header, payload, key, algorithms=JWE_ALGORITHMS)
    except (JoseError, ValueError) as exc:
        raise RecipientKeyError(f"cannot encrypt to recipient key: {type(exc).__name__}") from None


def recipient_encryption_key(jwks: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The recipient's key to encrypt to, from its registered JWKS (or one JWK), or ``None``.

    Preference: a key marked for encryption (``use: enc`` or an ``ECDH-ES*`` ``alg``), then an
    X25519/X448 key (agreement-only by nature), then an EC key not marked ``use: sig`` (a partner's
    P-256 key without a ``use`` serves both its client assertions and decryption). Never a key
    marked ``use: sig``, never Ed25519/RSA/symmetric, never a private key.
    """
    if not jwks:
        return None
    keys = jwks.get("keys") if "keys" in jwks else [jwks]
    if not isinstance(keys, list):
        return None
    best: tuple[int, dict[str, Any]] | None = None
    for candidate in keys:
        if not isinstance(candidate, Mapping):
            continue
        jwk = dict(candidate)
        kty, crv, use = jwk.get("kty"), jwk.get("crv"), jwk.get("use")
        if kty not in _CURVES or crv not in _CURVES[str(kty)] or use == "sig":
            continue
        if _PRIVATE_MEMBERS & jwk.keys():
            continue
        alg = jwk.get("alg")
        if use == "enc" or (isinstance(alg, str) and alg.startswith("ECDH-ES")):
            rank = 0
        elif kty == "OKP":
            rank = 1
        else:
            rank = 2
        if best is None or rank < best[0]:
            best = (rank, jwk)
    return None if best is None else best[1]


@functools.lru_cache(maxsize=256)
def _import(canonical_jwk: str) -> ECKey | OKPKey:
    try:
        key = import_key(json.loads(canonical_jwk))
    except (JoseError, ValueError, TypeError):
        raise RecipientKeyError("recipient JWK is malformed") from None
    if not isinstance(key, ECKey | OKPKey) or key.is_private:
        raise RecipientKeyError("recipient JWK must be an EC or OKP public key")
    return key
