"""Signed tree heads as C2SP ``tlog-checkpoint`` signed notes, and the log's Ed25519 key.

A head is the note text ``<origin>\\n<size>\\n<base64 root>\\n`` followed by a blank line and two
signature lines from the log key, both under the key name ``<origin>``:

1. a C2SP ``signed-note`` Ed25519 signature (type ``0x01``) over the note text:
   ``— <origin> base64(key_id(0x01) || signature)``; any note verifier checks it;
2. a C2SP ``tlog-cosignature`` v1 Ed25519 timestamped signature (type ``0x04``) over
   ``cosignature/v1\\ntime <t>\\n`` + note text: ``— <origin> base64(key_id(0x04) || u64 t ||
   signature)``. It signs the head's timestamp, which the checkpoint text itself does not carry.

Key ids are ``SHA-256(name || 0x0A || type || public key)[:4]``. The verifier key string is the
signed-note "vkey" form ``<name>+<hex key id>+<base64(0x01 || public key)>``.

Witnesses cosign with their own Ed25519 key and name (:class:`WitnessSigner`): a C2SP
``tlog-cosignature`` v1 line ``— <witness name> base64(key_id(0x04) || u64 t || signature)`` over
the same message as (2). Their verifier key is ``<name>+<hex key id>+<base64(0x04 || key)>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hub.audit.errors import CheckpointError, LogKeyError
from hub.audit.merkle import HASH_SIZE
from hub.keyfiles import load_or_create

LOG_KEY_FILE = "audit-log.pem"
SIG_ED25519 = 0x01
SIG_COSIGNATURE_V1 = 0x04
_DASH = "\u2014 "
_MAX_SIGNATURES = 16


def key_id(name: str, sig_type: int, public_key: Ed25519PublicKey) -> bytes:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + raw).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name) or not name.isprintable():
        raise CheckpointError("a key name / origin must be non-empty, without spaces or '+'")


def checkpoint_body(origin: str, size: int, root_hash: bytes) -> str:
    """The note text of a checkpoint (three lines, each ending in a newline)."""
    _check_name(origin)
    if size < 0 or len(root_hash) != HASH_SIZE:
        raise CheckpointError("a checkpoint needs a size >= 0 and a 32-byte root hash")
    return f"{origin}\n{size}\n{base64.b64encode(root_hash).decode()}\n"


def _cosigned_message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


@dataclass(frozen=True, slots=True)
class TreeHead:
    """A signed tree head: the tree of the first ``size`` events has ``root_hash``.

    ``signature`` is the Ed25519 signature over the note text (key id ``key_id``);
    ``timestamp_signature`` the tlog-cosignature v1 signature binding ``timestamp`` (whole
    seconds) to the same text (key id ``timestamp_key_id``).
    """

    origin: str
    size: int
    root_hash: bytes
    timestamp: datetime
    signature: bytes
    timestamp_signature: bytes
    key_id: bytes
    timestamp_key_id: bytes

    @property
    def body(self) -> str:
        return checkpoint_body(self.origin, self.size, self.root_hash)

    @property
    def unix_time(self) -> int:
        return int(self.timestamp.timestamp())

    def note(self) -> str:
        """The C2SP signed note (the checkpoint a witness fetches)."""
        plain = base64.b64encode(self.key_id + self.signature).decode()
        stamped = base64.b64encode(
            self.timestamp_key_id + self.unix_time.to_bytes(8, "big") + self.timestamp_signature
        ).decode()
        return f"{self.body}\n{_DASH}{self.origin} {plain}\n{_DASH}{self.origin} {stamped}\n"


def load_or_create_key(key_path: Path) -> Ed25519PrivateKey:
    """Load the PKCS#8 PEM Ed25519 key at ``key_path``, creating it (mode 0600) on first use."""

    def create() -> bytes:
        return Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    try:
        load_or_create(key_path, create)
    except OSError as exc:
        raise LogKeyError(f"cannot create the key file: {exc.strerror}") from exc
    return load_key(key_path)


def load_key(key_path: Path) -> Ed25519PrivateKey:
    """Load a PKCS#8 PEM Ed25519 key that only its owner can read."""
    try:
        mode = os.stat(key_path).st_mode
        pem = key_path.read_bytes()
    except OSError as exc:
        raise LogKeyError(f"cannot read the key file: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise LogKeyError("the key file is readable by others; chmod 600 it")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise LogKeyError("the key file is not a PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise LogKeyError("the key is not an Ed25519 key")
    return key


class LogSigner:
    """The log's Ed25519 key, named by the log's origin (e.g. ``tollhouse.example/audit``)."""

    def __init__(self, private_key: Ed25519PrivateKey, origin: str) -> None:
        _check_name(origin)
        self._key = private_key
        self.origin = origin
        self.public_key = private_key.public_key()
        self.key_id = key_id(origin, SIG_ED25519, self.public_key)
        self.cosig_key_id = key_id(origin, SIG_COSIGNATURE_V1, self.public_key)

    @classmethod
    def load_or_create(cls, key_path: Path, origin: str) -> LogSigner:
        """Load the PKCS#8 PEM key at ``key_path``, creating it (mode 0600) on first use."""
        return cls(load_or_create_key(key_path), origin)

    @classmethod
    def load(cls, key_path: Path, origin: str) -> LogSigner:
        return cls(load_key(key_path), origin)

    @property
    def verifier_key(self) -> str:
        """``<name>+<hex key id>+<base64(0x01 || public key)>``: what a regulator configures."""
        return _vkey(self.origin, SIG_ED25519, self.public_key)

    def sign_head(self, size: int, root_hash: bytes, timestamp: datetime) -> TreeHead:
        seconds = int(timestamp.timestamp())
        body = checkpoint_body(self.origin, size, root_hash)
        return TreeHead(
            origin=self.origin,
            size=size,
            root_hash=root_hash,
            timestamp=datetime.fromtimestamp(seconds, UTC),
            signature=self._key.sign(body.encode()),
            timestamp_signature=self._key.sign(_cosigned_message(body, seconds)),
            key_id=self.key_id,
            timestamp_key_id=self.cosig_key_id,
        )


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _vkey(name: str, sig_type: int, public_key: Ed25519PublicKey) -> str:
    kid = key_id(name, sig_type, public_key).hex()
    return f"{name}+{kid}+{base64.b64encode(bytes([sig_type]) + _raw(public_key)).decode()}"


class WitnessSigner:
    """A witness's Ed25519 key and name: produces C2SP ``tlog-cosignature`` v1 lines."""

    def __init__(self, private_key: Ed25519PrivateKey, name: str) -> None:
        _check_name(name)
        self._key = private_key
        self.name = name
        self.public_key = private_key.public_key()
        self.key_id = key_id(name, SIG_COSIGNATURE_V1, self.public_key)

    @classmethod
    def load_or_create(cls, key_path: Path, name: str) -> WitnessSigner:
        """Load (or create, mode 0600) a PKCS#8 PEM Ed25519 key; refuse group/other access."""
        return cls(load_or_create_key(key_path), name)

    @property
    def verifier_key(self) -> str:
        """``<name>+<hex key id>+<base64(0x04 || public key)>``."""
        return _vkey(self.name, SIG_COSIGNATURE_V1, self.public_key)

    def cosign(self, head: TreeHead, timestamp: datetime) -> str:
        """The signature line (without its newline) cosigning ``head`` at ``timestamp``."""
        seconds = int(timestamp.timestamp())
        signature = self._key.sign(_cosigned_message(head.body, seconds))
        blob = self.key_id + seconds.to_bytes(8, "big") + signature
        return f"{_DASH}{self.name} {base64.b64encode(blob).decode()}"


def parse_witness_key(vkey: str) -> tuple[str, Ed25519PublicKey]:
    """Parse a witness's ``<name>+<hex key id>+<base64(0x04 || public key)>``."""
    return _parse_vkey(vkey, SIG_COSIGNATURE_V1)


def verify_cosignature(
    line: str, head: TreeHead, name: str, public_key: Ed25519PublicKey
) -> datetime:
    """Verify a witness's cosignature line for ``head``; return the time it carries.

    Raises :class:`CheckpointError` if the line is malformed, names another key or fails.
    """
    line = line.rstrip("\n")
    if len(line) > 512 or not line.startswith(_DASH) or not line.isprintable():
        raise CheckpointError("a cosignature is one line: an em dash, a space, a name, a space")
    key_name, _, b64 = line[len(_DASH) :].partition(" ")
    if key_name != name:
        raise CheckpointError("the cosignature names another witness than its key")
    blob = _b64_signature(b64)
    if len(blob) != 4 + 8 + 64 or blob[:4] != key_id(name, SIG_COSIGNATURE_V1, public_key):
        raise CheckpointError("the cosignature is not a tlog-cosignature/v1 of this key")
    seconds = int.from_bytes(blob[4:12], "big")
    if seconds >= 2**63:
        raise CheckpointError("the cosignature's timestamp is out of range")
    try:
        public_key.verify(blob[12:], _cosigned_message(head.body, seconds))
    except InvalidSignature as exc:
        raise CheckpointError("the cosignature does not verify") from exc
    return datetime.fromtimestamp(seconds, UTC)


def log_origin(issuer: str) -> str:
    """The log's origin (checkpoint first line and key name) for a hub at ``issuer``:
    ``http://127.0.0.1:8000`` gives ``127.0.0.1:8000/audit``."""
    parts = urlsplit(issuer)
    host = (parts.netloc or parts.path).strip("/")
    path = parts.path.rstrip("/") if parts.netloc else ""
    return f"{host}{path}/audit"


def load_log_signer(keys_dir: Path, issuer: str) -> LogSigner:
    """The hub's log signer: ``<keys_dir>/audit-log.pem`` (created on first use)."""
    return LogSigner.load_or_create(keys_dir / LOG_KEY_FILE, log_origin(issuer))


def parse_verifier_key(vkey: str) -> tuple[str, Ed25519PublicKey]:
    """Parse ``<name>+<hex key id>+<base64(0x01 || public key)>`` into (name, public key)."""
    return _parse_vkey(vkey, SIG_ED25519)


def _parse_vkey(vkey: str, sig_type: int) -> tuple[str, Ed25519PublicKey]:
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise CheckpointError("a verifier key is <name>+<hex key id>+<base64 key>")
    name, hex_id, b64 = parts
    _check_name(name)
    try:
        raw = base64.b64decode(b64, validate=True)
        expected_id = bytes.fromhex(hex_id)
    except (binascii.Error, ValueError) as exc:
        raise CheckpointError("the verifier key is not valid hex/base64") from exc
    if len(raw) != 33 or raw[0] != sig_type:
        kind = "an Ed25519 note key" if sig_type == SIG_ED25519 else "a cosignature/v1 key"
        raise CheckpointError(f"the verifier key is not {kind}")
    public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
    if key_id(name, sig_type, public_key) != expected_id:
        raise CheckpointError("the verifier key's id does not match its name and key")
    return name, public_key


def _b64_signature(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise CheckpointError("a signature line is not base64") from exc


def verify_checkpoint(
    note: str, public_key: Ed25519PublicKey, origin: str | None = None
) -> TreeHead:
    """Parse a signed checkpoint note and verify both log signatures; return the head.

    Signature lines from other keys (witness cosignatures) are ignored, as the note spec asks.
    Raises :class:`CheckpointError` when the note is malformed, names another origin, lacks a
    log signature or carries one that fails.
    """
    if len(note) > 64 * 1024 or any(c < " " and c != "\n" for c in note):
        raise CheckpointError("a note must be short and free of control characters")
    sep = note.rfind("\n\n")
    if sep < 0 or not note.endswith("\n"):
        raise CheckpointError("a signed note is text, a blank line and signature lines")
    body = note[: sep + 1]
    lines = body.split("\n")[:-1]
    if len(lines) < 3 or any(not line for line in lines):
        raise CheckpointError("a checkpoint has an origin, a size and a root hash line")
    name, size_text, root_text = lines[:3]
    if origin is not None and name != origin:
        raise CheckpointError("the checkpoint names another log")
    if (
        not size_text.isascii()
        or not size_text.isdigit()
        or (size_text != "0" and size_text.startswith("0"))
    ):
        raise CheckpointError("the checkpoint's tree size is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error as exc:
        raise CheckpointError("the checkpoint's root hash is not base64") from exc
    if len(root) != HASH_SIZE:
        raise CheckpointError("the checkpoint's root hash is not 32 bytes")

    plain_id = key_id(name, SIG_ED25519, public_key)
    stamped_id = key_id(name, SIG_COSIGNATURE_V1, public_key)
    signature: bytes | None = None
    stamped: tuple[int, bytes] | None = None
    sig_lines = note[sep + 2 :].split("\n")[:-1]
    if not sig_lines or len(sig_lines) > _MAX_SIGNATURES:
        raise CheckpointError("a note carries 1 to 16 signature lines")
    for line in sig_lines:
        if not line.startswith(_DASH):
            raise CheckpointError("a signature line starts with an em dash and a space")
        key_name, _, b64 = line[len(_DASH) :].partition(" ")
        if key_name != name:
            continue
        blob = _b64_signature(b64)
        if blob[:4] == plain_id and len(blob) == 4 + 64:
            signature = blob[4:]
        elif blob[:4] == stamped_id and len(blob) == 4 + 8 + 64:
            stamped = (int.from_bytes(blob[4:12], "big"), blob[12:])
    if signature is None or stamped is None:
        raise CheckpointError("the checkpoint lacks the log's signature or timestamp")
    seconds, ts_signature = stamped
    if seconds >= 2**63:
        raise CheckpointError("the checkpoint's timestamp is out of range")
    try:
        public_key.verify(signature, body.encode())
        public_key.verify(ts_signature, _cosigned_message(body, seconds))
    except InvalidSignature as exc:
        raise CheckpointError("the checkpoint's signature does not verify") from exc
    return TreeHead(
        origin=name,
        size=int(size_text),
        root_hash=root,
        timestamp=datetime.fromtimestamp(seconds, UTC),
        signature=signature,
        timestamp_signature=ts_signature,
        key_id=plain_id,
        timestamp_key_id=stamped_id,
    )
