"""A KMS-style provider (keys never leave it) plugs in through the Keyring protocol alone."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.orm import Session, sessionmaker

from hub.crypto import FieldProtector, KeyNotFoundError, KeyPurpose, Keyring, WrappedKey


class FakeKms:
    """Stands in for a remote KMS: Encrypt/Decrypt with an encryption context, HMAC-based KDF."""

    def __init__(self) -> None:
        self._versions: dict[int, AESGCM] = {1: AESGCM(AESGCM.generate_key(bit_length=256))}
        self._current = 1
        self._roots = {p: os.urandom(32) for p in ("blind_index", "pseudonym", "deterministic")}
        self.calls = 0

    def current_version(self) -> int:
        return self._current

    def versions(self) -> list[int]:
        return sorted(self._versions)

    def wrap_data_key(self, subject_id: str, data_key: bytes) -> WrappedKey:
        self.calls += 1
        nonce = os.urandom(12)
        blob = self._versions[self._current].encrypt(nonce, data_key, subject_id.encode())
        return WrappedKey(self._current, nonce + blob)

    def unwrap_data_key(self, subject_id: str, wrapped: WrappedKey) -> bytes:
        self.calls += 1
        kek = self._versions.get(wrapped.kek_version)
        if kek is None:
            raise KeyNotFoundError(f"KEK version {wrapped.kek_version} unknown")
        return kek.decrypt(wrapped.blob[:12], wrapped.blob[12:], subject_id.encode())

    def rotate_kek(self) -> int:
        self._current += 1
        self._versions[self._current] = AESGCM(AESGCM.generate_key(bit_length=256))
        return self._current

    def retire_kek(self, version: int) -> None:
        del self._versions[version]

    def derive_key(self, purpose: KeyPurpose, info: bytes, length: int = 32) -> bytes:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info)
        return hkdf.derive(self._roots[purpose])


def test_kms_provider_plugs_in(sessions: sessionmaker[Session]) -> None:
    kms = FakeKms()
    assert isinstance(kms, Keyring)
    fp = FieldProtector(kms)
    where = {"subject_id": "s1", "dataset_id": "ds", "record_key": "r1"}
    with sessions.begin() as s:
        sealed = fp.seal_fields(s, **where, fields={"vin": "LSV", "income": 12000})
    kms.rotate_kek()
    assert fp.rewrap_all(sessions).rewrapped == 1
    with sessions.begin() as s:
        assert fp.retire_unused_versions(s) == [1]
    cold = FieldProtector(kms)  # empty cache: the key is unwrapped by the "KMS" again
    with sessions.begin() as s:
        assert cold.open_fields(s, **where, sealed=sealed) == {"vin": "LSV", "income": 12000}
    assert fp.pseudonym("r", "s1") == cold.pseudonym("r", "s1")
    assert kms.calls >= 4
