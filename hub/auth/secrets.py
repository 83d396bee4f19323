"""Client secrets: random, shown once, stored only as a hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_client_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_client_secret(secret: str) -> str:
    # Secrets are 256-bit random strings, so a fast hash is enough; there is nothing to brute-force.
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def client_secret_matches(secret: str, stored_hash: str | None) -> bool:
    if not stored_hash:
        return False
    return hmac.compare_digest(hash_client_secret(secret), stored_hash)
