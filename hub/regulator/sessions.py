"""Regulator sessions: a signed cookie, ended on the server by a small table of revoked ids.

The cookie holds ``base64url(json) "." base64url(HMAC-SHA256)`` under a key of the hub's own
(``<keys>/regulator-session.key``, 0600). It carries the partner id (``None`` before sign-in), the
CSRF token forms must echo, the language, the expiry, and for a signed-in session: a random
session id, the id of the client secret the partner signed in with, the partner's token epoch at
sign-in, and the last tree head this session verified (a signed checkpoint note, checked again
with the log key whenever it is used).

Every dashboard request checks a signed-in session again in one statement
(:func:`hub.regulator.signin.current_regulator`): the partner is still active, holds
``audit:read`` and has the same token epoch (so suspending it ends its sessions), the secret it
signed in with still authenticates (a rotation ends the sessions signed in with the old secret
when its grace period ends: at once with no grace), and the session id is not revoked. Signing
out (or signing in again over a signed-in session) revokes the id (:func:`revoke`, a row in
``regulator_revoked_sessions`` kept until the cookie would have expired anyway), so a copy of
the cookie stops working too. Re-issued cookies (a new language, a newer tree head) keep the
session id, so revoking it ends every copy.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub.keyfiles import load_or_create
from hub.regulator.models import RevokedRegulatorSession
from hub.regulator.settings import RegulatorSettings
from hub.store.base import utcnow

MAX_COOKIE_CHARS = 3800
#: Revocations are kept this long past the cookie's own expiry before they are purged (room
#: for clocks of hub processes that disagree a little).
PURGE_MARGIN = timedelta(minutes=10)


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
    #: Signed in: a random id, what signing out revokes (``None`` for an anonymous session).
    session_id: str | None = None
    #: Signed in: the client secret (its row id) the partner signed in with.
    secret_id: str | None = None

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
            "i": self.session_id,
            "s": self.secret_id,
        }

    @classmethod
    def from_json(cls, doc: Any) -> RegulatorSession | None:
        if not isinstance(doc, dict):
            return None
        partner, csrf, locale = doc.get("p"), doc.get("c"), doc.get("l")
        expires, epoch, head = doc.get("x"), doc.get("e"), doc.get("h")
        session_id, secret_id = doc.get("i"), doc.get("s")
        if not (
            (partner is None or isinstance(partner, str))
            and isinstance(csrf, str)
            and (locale is None or isinstance(locale, str))
            and isinstance(expires, int)
            and isinstance(epoch, int)
            and (head is None or isinstance(head, str))
            and (session_id is None or isinstance(session_id, str))
            and (secret_id is None or isinstance(secret_id, str))
        ):
            return None
        if partner is not None and (session_id is None or secret_id is None):
            return None  # signed in without an id to revoke (a cookie from before revocation)
        return cls(partner, csrf, locale, expires, epoch, head, session_id, secret_id)


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
        self,
        *,
        partner_id: str,
        epoch: int,
        secret_id: str,
        locale: str | None,
        head: str | None,
    ) -> RegulatorSession:
        """A new session (new id, new CSRF token) for a partner that has just signed in."""
        return RegulatorSession(
            partner_id=partner_id,
            csrf_token=secrets.token_urlsafe(32),
            locale=locale,
            expires_at=int(time.time()) + self.settings.session_ttl_seconds,
            epoch=epoch,
            head=head,
            session_id=secrets.token_urlsafe(24),
            secret_id=secret_id,
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


def revoke(session: Session, value: RegulatorSession, *, now: datetime | None = None) -> bool:
    """End a signed-in session on the server (the caller commits): its id is listed until the
    cookie would have expired anyway (plus :data:`PURGE_MARGIN`); older rows are purged on the
    way. Returns ``False``
    for an anonymous session (nothing to revoke). Revoking twice is harmless."""
    if value.partner_id is None or value.session_id is None:
        return False
    now = now or utcnow()
    stale = RevokedRegulatorSession.expires_at < now - PURGE_MARGIN
    session.execute(delete(RevokedRegulatorSession).where(stale))
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(RevokedRegulatorSession)
        .values(
            session_id=value.session_id,
            partner_id=value.partner_id,
            revoked_at=now,
            expires_at=datetime.fromtimestamp(value.expires_at, UTC),
        )
        .on_conflict_do_nothing()
    )
    return True
