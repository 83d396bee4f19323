"""Field protection: envelope encryption at rest, crypto-shredding, blind indexes, pseudonyms,
deterministic AES-SIV, and JWE encryption to a recipient.

Public surface::

    Keyring (Protocol), LocalKeyring(data_dir), WrappedKey, KeyPurpose
    FieldProtector(keyring, *, cache_size=10_000, cache_ttl=300.0)
        .seal_fields / .open_fields / .preload / .shred_subject
        .rotate_kek / .rewrap / .rewrap_all / .retire_unused_versions
        .blind_index / .pseudonym / .pseudonymize_value / .content_digest
        .seal_deterministic / .open_deterministic
    RewrapProgress
    encrypt_for_recipient(public_jwk, value), recipient_encryption_key(jwks)
    normalize_identifier(kind, value)
    SubjectKey (table ``subject_keys``)
    errors: CryptoError > KeyringError, KeyNotFoundError, FieldDecryptError, SubjectShreddedError,
            FieldEncodeError, NormalizationError, RecipientKeyError
"""

from __future__ import annotations

from hub.crypto.errors import (
    CryptoError,
    FieldDecryptError,
    FieldEncodeError,
    KeyNotFoundError,
    KeyringError,
    NormalizationError,
    RecipientKeyError,
    SubjectShreddedError,
)
from hub.crypto.keyring import KeyPurpose, Keyring, LocalKeyring, WrappedKey
from hub.crypto.models import SubjectKey
from hub.crypto.normalize import IdentifierKind, normalize_identifier
from hub.crypto.recipient import encrypt_for_recipient, recipient_encryption_key
from hub.crypto.service import FieldProtector, RewrapProgress

__all__ = [
    "CryptoError",
    "FieldDecryptError",
    "FieldEncodeError",
    "FieldProtector",
    "IdentifierKind",
    "KeyNotFoundError",
    "KeyPurpose",
    "Keyring",
    "KeyringError",
    "LocalKeyring",
    "NormalizationError",
    "RecipientKeyError",
    "RewrapProgress",
    "SubjectKey",
    "SubjectShreddedError",
    "WrappedKey",
    "encrypt_for_recipient",
    "normalize_identifier",
    "recipient_encryption_key",
]
