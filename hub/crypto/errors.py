"""Typed errors of field protection.

The whole tree::

    CryptoError                      base of every error raised by ``hub.crypto``
    ├── KeyringError                 the key store is unusable (bad permissions, corrupt file)
    ├── KeyNotFoundError             a KEK version or data key does not exist (or was retired)
    ├── FieldDecryptError            a token failed authentication: tampered, truncated, moved to
    │                                another record/field/dataset, or carries an unknown version
    ├── SubjectShreddedError         the data subject's key was destroyed (crypto-shredding)
    ├── FieldEncodeError (TypeError) a value is not JSON-serialisable (or is NaN/infinite)
    ├── NormalizationError (ValueError)
    │                                an identifier cannot be normalised for a blind index
    └── RecipientKeyError (ValueError)
                                     a recipient's JWK is unusable for ECDH-ES encryption

Messages never contain key material, plaintext values or tokens; they name the subject, field or
version concerned at most.
"""

from __future__ import annotations

__all__ = [
    "CryptoError",
    "FieldDecryptError",
    "FieldEncodeError",
    "KeyNotFoundError",
    "KeyringError",
    "NormalizationError",
    "RecipientKeyError",
    "SubjectShreddedError",
]


class CryptoError(Exception):
    """Base of every error raised by ``hub.crypto``."""


class KeyringError(CryptoError):
    """The key store cannot be used (wrong permissions, corrupt or unreadable files)."""


class KeyNotFoundError(CryptoError):
    """A key-encryption key version or a data key does not exist (or was retired)."""


class FieldDecryptError(CryptoError):
    """A sealed field failed to decrypt. Never returns wrong data: any tampering lands here."""

    def __init__(self, message: str = "sealed field failed to decrypt", *, field: str = "") -> None:
        super().__init__(f"{message} (field {field!r})" if field else message)
        self.field = field


class SubjectShreddedError(CryptoError):
    """The subject's data key was destroyed: their data is unreadable everywhere."""

    def __init__(self, subject_id: str) -> None:
        super().__init__(f"data subject {subject_id!r} was erased (data key destroyed)")
        self.subject_id = subject_id


class FieldEncodeError(CryptoError, TypeError):
    """A value given to seal is not JSON-serialisable (or is a NaN / infinite float)."""


class NormalizationError(CryptoError, ValueError):
    """An identifier cannot be normalised (unknown kind, empty, or malformed)."""


class RecipientKeyError(CryptoError, ValueError):
    """A recipient public JWK is unusable for ECDH-ES (wrong type, private part present...)."""
