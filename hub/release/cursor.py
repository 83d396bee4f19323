"""Opaque, tamper-proof page cursors, bound to the agreement and partner they were issued to."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from pathlib import Path

from hub.errors import InvalidCursorError
from hub.keyfiles import load_or_create


class CursorCodec:
    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_keys_dir(cls, keys_dir: Path) -> CursorCodec:
        return cls(load_or_create(keys_dir / "cursor.key", lambda: secrets.token_bytes(32)))

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:16]

    def encode(self, *, agreement_id: str, partner_id: str, after_id: int) -> str:
        body = json.dumps([agreement_id, partner_id, after_id], separators=(",", ":")).encode()
        token = body + self._mac(body)
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode()

    def decode(self, cursor: str, *, agreement_id: str, partner_id: str) -> int:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            body, mac = raw[:-16], raw[-16:]
            if len(raw) <= 16 or not hmac.compare_digest(mac, self._mac(body)):
                raise ValueError("bad mac")
            bound_agreement, bound_partner, after_id = json.loads(body)
        except (ValueError, TypeError) as exc:
            raise InvalidCursorError("The cursor is malformed or was altered.") from exc
        if bound_agreement != agreement_id or bound_partner != partner_id:
            raise InvalidCursorError("The cursor belongs to another agreement.")
        if not isinstance(after_id, int) or after_id < 0:
            raise InvalidCursorError("The cursor is malformed or was altered.")
        return after_id
