"""The signature algorithms the hub accepts from partners (FAPI 2.0): PS256, ES256 and EdDSA
over Ed25519, for client assertions and DPoP proofs alike. Nothing symmetric, nothing ``none``.

An algorithm only goes with the key type it was made for: ``ES256`` with a P-256 key, ``PS256``
with an RSA key of at least 2048 bits, ``Ed25519`` / ``EdDSA`` with an Ed25519 key (``EdDSA``
alone would also admit Ed448).
"""

from __future__ import annotations

from typing import Any

from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

#: Names as they appear in a JWS header. ``Ed25519`` is RFC 9864's name; ``EdDSA`` the older one.
FAPI_ALGORITHMS = ("PS256", "ES256", "Ed25519", "EdDSA")
MIN_RSA_BITS = 2048


def key_fits(alg: str, key: Any) -> bool:
    """Whether ``key`` (a joserfc key) is of the kind ``alg`` is defined for."""
    if alg in ("Ed25519", "EdDSA"):
        return isinstance(key, OKPKey) and key.curve_name == "Ed25519"
    if alg == "ES256":
        return isinstance(key, ECKey) and key.curve_name == "P-256"
    if alg == "PS256":
        return isinstance(key, RSAKey) and _rsa_bits(key) >= MIN_RSA_BITS
    return False


def keys_for(alg: str, keys: KeySet) -> KeySet:
    """The keys of ``keys`` that ``alg`` may be verified with (possibly none)."""
    return KeySet([k for k in keys.keys if key_fits(alg, k)])


class _FapiRegistry(JWSRegistry):
    """joserfc's registry, allowing one FAPI algorithm, without the warning on ``EdDSA`` (its
    RFC 9864 deprecation in favour of ``Ed25519``: the same signature once the key is Ed25519)."""

    def get_alg(self, name: str) -> Any:
        if name == "EdDSA" and self.allowed is not None and name in self.allowed:
            return self.algorithms[name]
        return super().get_alg(name)


def fapi_registry(alg: str) -> JWSRegistry:
    """A registry for verifying a JWS whose header names ``alg`` (a FAPI algorithm)."""
    if alg not in FAPI_ALGORITHMS:
        raise ValueError(f"algorithm {alg!r} is not accepted")
    return _FapiRegistry(algorithms=[alg])


def _rsa_bits(key: RSAKey) -> int:
    try:
        return int(key.public_key.key_size)
    except (AttributeError, TypeError, ValueError):
        return 0
