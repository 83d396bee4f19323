"""Regulator sessions: a signed cookie, no table.

The cookie holds ``base64url(json) "." base64url(HMAC-SHA256)`` under a key of the hub's own
(``<keys>/regulator-session.key``, 0600). It carries the partner id (``None`` before sign-in), the
CSRF token forms must echo, the language, the expiry, the partner's token epoch at sign-in (so
suspending the partner or bumping its epoch ends its sessions), and the last tree head this
session verified (a signed checkpoint note, checked again with the log key whenever it is used).

Being stateless, signing out clears the cookie in this browser but cannot revoke a copy of it
elsewhere before it expires (``session_ttl_seconds``, 30 minutes by default).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from hub.keyfiles import load_or_create
from hub.regulator.settings import RegulatorSettings

MAX_COOKIE_CHARS = 3800


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class RegulatorSession:
    partner_id: str | None
    csrf_token: str
    locale: str | None
    expires_at: int
    epoch: int = 0
    #: The last checkpoint note this session saw verified (or the head at sign-in).
    head: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.partner_id is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "p": self.partner_id,
            "c": self.csrf_token,
            "l": self.locale,
            "x": self.expires_at,
            "e": self.epoch,
            "h": self.head,
        }

    @classmethod
    def from_json(cls, doc: Any) -> RegulatorSession | None:
        if not isinstance(doc, dict):
            return None
        partner, csrf, locale = doc.get("p"), doc.get("c"), doc.get("l")
        expires, epoch, head = doc.get("x"), doc.get("e"), doc.get("h")
        if not (
            (partner is None or isinstance(partner, str))
            and isinstance(csrf, str)
            and (locale is None or isinstance(locale, str))
            and isinstance(expires, int)
            and isinstance(epoch, int)
            and (head is None or isinstance(head, str))
        ):
            return None
        return cls(partner, csrf, locale, expires, epoch, head)


class SessionCodec:
    """Issues and reads the signed session cookie."""

    def __init__(self, settings: RegulatorSettings, keys_dir: Path) -> None:
        self.settings = settings
        self._key = load_or_create(
            keys_dir / "regulator-session.key", lambda: secrets.token_bytes(32)
        )

    def _mac(self, payload: str) -> bytes:
        message = b"regulator-session\x00" + payload.encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def encode(self, value: RegulatorSession) -> str:
        payload = _b64(orjson.dumps(value.to_json()))
        return f"{payload}.{_b64(self._mac(payload))}"

    def decode(self, cookie: str | None, *, now: float | None = None) -> RegulatorSession | None:
        """The session a cookie names, or ``None`` if it is missing, forged or expired."""
        if not cookie or len(cookie) > MAX_COOKIE_CHARS or cookie.count(".") != 1:
            return None
        payload, mac = cookie.split(".")
        try:
            given = _unb64(mac)
            if not hmac.compare_digest(given, self._mac(payload)):
                return None
            value = RegulatorSession.from_json(orjson.loads(_unb64(payload)))
        except (binascii.Error, ValueError, orjson.JSONDecodeError):
            return None
        if value is None or value.expires_at <= (now if now is not None else time.time()):
            return None
        return value

    def anonymous(self, *, locale: str | None = None) -> RegulatorSession:
        return RegulatorSession(
            partner_id=None,
            csrf_token=secrets.token_urlsafe(32),
            locale=locale,
            expires_at=int(time.time()) + self.settings.anonymous_session_ttl_seconds,
        )

    def signed_in(
        self, *, partner_id: str, epoch: int, locale: str | None, head: str | None
    ) -> RegulatorSession:
        """A new session (new CSRF token) for a partner that has just signed in."""
        return RegulatorSession(
            partner_id=partner_id,
            csrf_token=secrets.token_urlsafe(32),
            locale=locale,
            expires_at=int(time.time()) + self.settings.session_ttl_seconds,
            epoch=epoch,
            head=head,
        )

    @staticmethod
    def with_head(value: RegulatorSession, head: str) -> RegulatorSession:
        return replace(value, head=head)

    @staticmethod
    def with_locale(value: RegulatorSession, locale: str) -> RegulatorSession:
        return replace(value, locale=locale)

    @staticmethod
    def check_csrf(value: RegulatorSession | None, token: str | None) -> bool:
        return bool(
            value is not None
            and token
            and hmac.compare_digest(value.csrf_token.encode(), token.encode())
        )
