"""The hub's token-signing key: Ed25519, created on first run under the data directory (0600)."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

from joserfc.jwk import KeySet, OKPKey

from hub.keyfiles import load_or_create

SIGNING_ALG = "Ed25519"


def _new_signing_jwk() -> bytes:
    key = OKPKey.generate_key("Ed25519", private=True, auto_kid=True)
    return json.dumps(key.as_dict(private=True)).encode()


class SigningKeys:
    """Loads (or creates) the signing key; exposes the private key set and the public JWKS."""

    def __init__(self, keys_dir: Path) -> None:
        self.path = keys_dir / "token-signing.jwk"

    @cached_property
    def private_key(self) -> OKPKey:
        data: dict[str, Any] = json.loads(load_or_create(self.path, _new_signing_jwk))
        return OKPKey.import_key(data)

    @cached_property
    def kid(self) -> str:
        return str(self.private_key.kid)

    @cached_property
    def private_key_set(self) -> KeySet:
        return KeySet([self.private_key])

    @cached_property
    def public_key_set(self) -> KeySet:
        public = self.private_key.as_dict(private=False)
        return KeySet.import_key_set({"keys": [public]})

    def public_jwks(self) -> dict[str, Any]:
        jwks: dict[str, Any] = dict(self.public_key_set.as_dict(private=False))
        for key in jwks["keys"]:
            key.setdefault("use", "sig")
            key.setdefault("alg", SIGNING_ALG)
        return jwks

    def __repr__(self) -> str:
        return f"SigningKeys(path={str(self.path)!r})"
