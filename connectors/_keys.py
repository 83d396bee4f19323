"""Partner keys: loading (PEM or JWK), the signing algorithm they imply, field decryption."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeAlias

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, import_key

from ._exceptions import DecryptionError

__all__ = ["KeyInput", "PartnerKey", "load_key"]

PartnerKey: TypeAlias = ECKey | OKPKey
KeyInput: TypeAlias = "str | bytes | Mapping[str, Any] | ECKey | OKPKey"

# ES256 (P-256) or Ed25519 for the client assertion; the hub accepts nothing else.
_SIGNING_ALGS = {"P-256": "ES256", "Ed25519": "Ed25519"}
# encrypt_for_recipient: ECDH-ES key agreement (direct or key-wrapped) and A256GCM content.
_JWE_ALGS = ("ECDH-ES", "ECDH-ES+A256KW", "A256GCM")


def load_key(data: KeyInput) -> PartnerKey:
    """Import a private key given as PEM text/bytes, a JWK dict or a joserfc key."""
    if isinstance(data, ECKey | OKPKey):
        return data
    if isinstance(data, Mapping):
        key = import_key(dict(data))
    else:
        raw = data.encode() if isinstance(data, str) else data
        key = _import_pem(raw)
    if not isinstance(key, ECKey | OKPKey):
        raise ValueError("only EC (P-256) and OKP (Ed25519, X25519) keys are supported")
    if not key.is_private:
        raise ValueError("a private key is needed")
    return key


def _import_pem(raw: bytes) -> Any:
    for key_type in ("OKP", "EC"):
        try:
            return import_key(raw, key_type)
        except (JoseError, ValueError, TypeError):
            continue
    raise ValueError("not a PEM EC or OKP private key")


def signing_alg(key: PartnerKey) -> str:
    """The JWS algorithm for a client assertion signed with ``key``."""
    alg = _SIGNING_ALGS.get(key.curve_name)
    if alg is None:
        raise ValueError(f"cannot sign client assertions with curve {key.curve_name}")
    return alg


def decrypt_field(token: str, key: PartnerKey) -> Any:
    """Decrypt one compact JWE field value; the plaintext is the JSON encoding of the value."""
    try:
        plaintext = jwe.decrypt_compact(token, key, algorithms=_JWE_ALGS).plaintext
    except (JoseError, ValueError, TypeError) as exc:
        raise DecryptionError(f"cannot decrypt field: {type(exc).__name__}") from None
    if plaintext is None:
        raise DecryptionError("cannot decrypt field: empty plaintext")
    try:
        return json.loads(plaintext)
    except ValueError:
        return plaintext.decode("utf-8", errors="replace")
