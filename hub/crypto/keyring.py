"""Key providers: the :class:`Keyring` protocol and the default :class:`LocalKeyring`.

A keyring owns two kinds of secrets and never hands out either:

* **Key-encryption keys (KEKs)**, versioned ``1..n`` with exactly one *current* version. They only
  ever wrap and unwrap *data keys* (one 32-byte AES-256-GCM key per data subject, see
  :mod:`hub.crypto.service`). Wrapping binds the subject id and the KEK version as associated data,
  so a wrapped key copied to another subject's row, or relabelled with another version, fails.
* **Root secrets**, one per purpose (``blind_index``, ``pseudonym``, ``deterministic``). Callers get
  per-use keys from :meth:`Keyring.derive_key` (HKDF-SHA256, the purpose and a caller-chosen
  ``info`` in the HKDF info), so no key serves two purposes.

``LocalKeyring`` (the default) keeps everything in files under ``<data_dir>/keys/`` (directory
``0700``, files ``0600``, created on first run, refused if group/world accessible)::

    keys/kek.json            {"format": 1, "current": n, "versions": [{version, key, created_at,
                              retired_at}, ...]}  (a retired version keeps its number, not its key)
    keys/blind_index.secret  {"format": 1, "secret": base64}  (likewise pseudonym, deterministic)

Several hub processes may share one data directory: rotation and retirement take an ``flock`` and
replace ``kek.json`` atomically, and every process re-reads the file when it changes.

Plugging in a KMS or HSM
------------------------
Implement the :class:`Keyring` protocol; nothing else in the hub changes:

* ``wrap_data_key(subject_id, data_key)`` calls the KMS ``Encrypt`` (AWS KMS, GCP KMS, Vault
  transit: ``encrypt``; PKCS#11: ``C_WrapKey`` with AES-GCM) under the current key version, passing
  the subject id as *encryption context* / AAD, and returns ``WrappedKey(version, blob)``;
  ``unwrap_data_key`` calls ``Decrypt`` with the same context. The KEK never leaves the KMS; the hub
  holds plaintext data keys only in its bounded, TTL-limited cache.
* ``current_version`` / ``versions`` / ``rotate_kek`` / ``retire_kek`` map to the KMS's key versions
  (Vault ``rotate`` and ``min_decryption_version``; AWS: one key alias per version, or key rotation
  plus a version tag kept in the blob).
* ``derive_key(purpose, info)`` needs a keyed PRF: either the KMS's HMAC operation
  (``GenerateMac``, Vault ``hmac``) over ``info`` used as the HKDF extract, or root secrets fetched
  once from a secret manager at start-up and fed to HKDF locally as here.
* Raise :class:`~hub.crypto.errors.KeyNotFoundError` for unknown versions and
  :class:`~hub.crypto.errors.KeyringError` for failures; never put key bytes in messages.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hub.crypto.errors import KeyNotFoundError, KeyringError

__all__ = ["ROOT_PURPOSES", "KeyPurpose", "Keyring", "LocalKeyring", "WrappedKey"]

KeyPurpose = Literal["blind_index", "pseudonym", "deterministic"]
ROOT_PURPOSES: tuple[KeyPurpose, ...] = ("blind_index", "pseudonym", "deterministic")

_KEY_BYTES = 32
_NONCE_BYTES = 12
_WRAP_AAD_PREFIX = b"tollhouse/data-key/v1\x00"
_FORMAT = 1


class WrappedKey(NamedTuple):
    """A data key encrypted under one KEK version (opaque blob, provider-specific format)."""

    kek_version: int
    blob: bytes

    def __repr__(self) -> str:  # the blob is harmless, but keep logs short and uniform
        return f"WrappedKey(kek_version={self.kek_version}, blob=<{len(self.blob)} bytes>)"


@runtime_checkable
class Keyring(Protocol):
    """What the hub needs from a key provider (local files, KMS, HSM)."""

    def current_version(self) -> int:
        """The KEK version new data keys are wrapped under."""
        ...

    def versions(self) -> list[int]:
        """Usable (not retired) KEK versions, ascending."""
        ...

    def wrap_data_key(self, subject_id: str, data_key: bytes) -> WrappedKey:
        """Encrypt ``data_key`` under the current KEK, binding ``subject_id`` and the version."""
        ...

    def unwrap_data_key(self, subject_id: str, wrapped: WrappedKey) -> bytes:
        """Decrypt a wrapped data key; ``KeyNotFoundError`` if its version is unknown/retired."""
        ...

    def rotate_kek(self) -> int:
        """Add a new KEK version, make it current, return its number."""
        ...

    def retire_kek(self, version: int) -> None:
        """Destroy a non-current KEK version (callers check nothing still uses it)."""
        ...

    def derive_key(self, purpose: KeyPurpose, info: bytes, length: int = 32) -> bytes:
        """A key for one use, derived from the purpose's root secret with HKDF-SHA256."""
        ...


def _b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _wrap_aad(subject_id: str, version: int) -> bytes:
    return _WRAP_AAD_PREFIX + version.to_bytes(4, "big") + subject_id.encode("utf-8")


@dataclass(slots=True)
class _KekState:
    current: int
    keys: dict[int, AESGCM]  # usable versions only
    all_versions: list[dict[str, Any]]  # raw entries, including retired ones


class LocalKeyring:
    """The default keyring: files under ``<data_dir>/keys/``, created on first run.

    Thread-safe; several processes may share the directory (see the module docstring).
    """

    def __init__(self, data_dir: Path) -> None:
        self._dir = Path(data_dir) / "keys"
        self._kek_path = self._dir / "kek.json"
        self._lock = threading.RLock()
        self._stamp: tuple[int, int] | None = None
        self._state = _KekState(current=0, keys={}, all_versions=[])
        self._roots: dict[str, bytes] = {}
        self._initialise()

    # -- public API -------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The ``keys/`` directory."""
        return self._dir

    def current_version(self) -> int:
        self._refresh()
        return self._state.current

    def versions(self) -> list[int]:
        self._refresh()
        return sorted(self._state.keys)

    def wrap_data_key(self, subject_id: str, data_key: bytes) -> WrappedKey:
        if len(data_key) != _KEY_BYTES:
            raise KeyringError("data keys must be 32 bytes")
        self._refresh()
        state = self._state
        version = state.current
        nonce = os.urandom(_NONCE_BYTES)
        blob = nonce + state.keys[version].encrypt(nonce, data_key, _wrap_aad(subject_id, version))
        return WrappedKey(version, blob)

    def unwrap_data_key(self, subject_id: str, wrapped: WrappedKey) -> bytes:
        self._refresh()  # one stat(): notices rotation/retirement by another process
        kek = self._state.keys.get(wrapped.kek_version)
        if kek is None:
            raise KeyNotFoundError(f"KEK version {wrapped.kek_version} is unknown or retired")
        blob = wrapped.blob
        if len(blob) != _NONCE_BYTES + _KEY_BYTES + 16:
            raise KeyringError(f"wrapped data key of subject {subject_id!r} is malformed")
        try:
            return kek.decrypt(
                blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _wrap_aad(subject_id, wrapped.kek_version)
            )
        except InvalidTag:
            raise KeyringError(
                f"wrapped data key of subject {subject_id!r} failed to authenticate"
            ) from None

    def rotate_kek(self) -> int:
        with self._locked():
            doc = self._read_kek_doc()
            version = max(int(v["version"]) for v in doc["versions"]) + 1
            doc["versions"].append(self._new_version_entry(version))
            doc["current"] = version
            self._write_json(self._kek_path, doc)
            self._load_kek()
            return version

    def retire_kek(self, version: int) -> None:
        with self._locked():
            doc = self._read_kek_doc()
            if int(doc["current"]) == version:
                raise KeyringError(f"KEK version {version} is current and cannot be retired")
            for entry in doc["versions"]:
                if int(entry["version"]) == version:
                    if entry.get("key") is None:
                        return  # already retired
                    entry["key"] = None
                    entry["retired_at"] = datetime.now(UTC).isoformat()
                    break
            else:
                raise KeyNotFoundError(f"KEK version {version} is unknown")
            self._write_json(self._kek_path, doc)
            self._load_kek()

    def derive_key(self, purpose: KeyPurpose, info: bytes, length: int = 32) -> bytes:
        root = self._roots.get(purpose)
        if root is None:
            raise KeyNotFoundError(f"no root secret for purpose {purpose!r}")
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=length,
            salt=None,
            info=b"tollhouse/" + purpose.encode("ascii") + b"/v1\x00" + info,
        )
        return hkdf.derive(root)

    def __repr__(self) -> str:
        return f"LocalKeyring(path={str(self._dir)!r}, current={self._state.current})"

    def __reduce__(self) -> Any:
        raise TypeError("a keyring holds secrets and cannot be pickled")

    # -- files ------------------------------------------------------------------------------

    def _initialise(self) -> None:
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._check_mode(self._dir, 0o700)
        with self._locked():
            wanted = [self._kek_path, *(self._root_path(p) for p in ROOT_PURPOSES)]
            present = [p for p in wanted if p.exists()]
            if not present:
                for purpose in ROOT_PURPOSES:
                    doc = {"format": _FORMAT, "secret": _b64e(os.urandom(_KEY_BYTES))}
                    self._write_json(self._root_path(purpose), doc)
                kek_doc = {
                    "format": _FORMAT,
                    "current": 1,
                    "versions": [self._new_version_entry(1)],
                }
                self._write_json(self._kek_path, kek_doc)
            elif len(present) != len(wanted):
                missing = sorted(p.name for p in wanted if p not in present)
                raise KeyringError(f"keyring in {self._dir} is incomplete, missing: {missing}")
            for purpose in ROOT_PURPOSES:
                raw = self._read_json(self._root_path(purpose))
                try:
                    secret = _b64d(raw["secret"])
                except (KeyError, TypeError, ValueError):
                    raise KeyringError(f"root secret file for {purpose!r} is corrupt") from None
                if len(secret) != _KEY_BYTES:
                    raise KeyringError(f"root secret file for {purpose!r} is corrupt")
                self._roots[purpose] = secret
            self._load_kek()

    def _root_path(self, purpose: str) -> Path:
        return self._dir / f"{purpose}.secret"

    @staticmethod
    def _new_version_entry(version: int) -> dict[str, Any]:
        return {
            "version": version,
            "key": _b64e(os.urandom(_KEY_BYTES)),
            "created_at": datetime.now(UTC).isoformat(),
            "retired_at": None,
        }

    def _refresh(self) -> None:
        """Re-read ``kek.json`` if another process rotated or retired a version."""
        try:
            st = os.stat(self._kek_path)
        except OSError:
            raise KeyringError(f"keyring file {self._kek_path} disappeared") from None
        if (st.st_mtime_ns, st.st_ino) != self._stamp:
            with self._lock:
                self._load_kek()

    def _read_kek_doc(self) -> dict[str, Any]:
        doc = self._read_json(self._kek_path)
        if not isinstance(doc.get("versions"), list) or not isinstance(doc.get("current"), int):
            raise KeyringError("kek.json is corrupt")
        return doc

    def _load_kek(self) -> None:
        with self._lock:
            st = os.stat(self._kek_path)
            doc = self._read_kek_doc()
            keys: dict[int, AESGCM] = {}
            try:
                for entry in doc["versions"]:
                    if entry.get("key") is not None:
                        raw = _b64d(entry["key"])
                        if len(raw) != _KEY_BYTES:
                            raise ValueError
                        keys[int(entry["version"])] = AESGCM(raw)
            except (KeyError, TypeError, ValueError):
                raise KeyringError("kek.json is corrupt") from None
            current = int(doc["current"])
            if current not in keys:
                raise KeyringError(f"current KEK version {current} has no key material")
            self._state = _KekState(current=current, keys=keys, all_versions=doc["versions"])
            self._stamp = (st.st_mtime_ns, st.st_ino)

    def _read_json(self, path: Path) -> dict[str, Any]:
        self._check_mode(path, 0o600)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise KeyringError(f"keyring file {path.name} is unreadable or corrupt") from None
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise KeyringError(f"keyring file {path.name} has an unknown format")
        return doc

    @staticmethod
    def _check_mode(path: Path, expected: int) -> None:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            raise KeyringError(
                f"{path} is accessible to group/others (mode {oct(mode)}); expected {oct(expected)}"
            )

    def _write_json(self, path: Path, doc: dict[str, Any]) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self._dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise writers within this process (RLock) and across processes (flock)."""
        with self._lock:
            fd = os.open(self._dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
