"""The portal's tables: sign-in challenges (one-time codes) and browser sessions.

Neither stores a secret in clear: a challenge keeps an HMAC of its code, a session is found by
the SHA-256 of its cookie value, and an identifier is kept only as its keyed blind index.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.base import Base, new_id, utcnow


class ChallengeStatus:
    PENDING = "pending"
    USED = "used"
    LOCKED = "locked"


class SignInChallenge(Base):
    """A one-time code sent to an identifier; also the rate-limit ledger (per identifier, per
    IP), so limits hold across processes."""

    __tablename__ = "portal_sign_in_challenges"
    __table_args__ = (
        Index("ix_portal_challenges_identifier_created", "identifier_digest", "created_at"),
        Index("ix_portal_challenges_ip_created", "client_ip", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=lambda: new_id("chl"))
    identifier_digest: Mapped[str] = mapped_column(String(128))
    #: ``None`` when no consumer has this identifier (the answer looks the same either way).
    subject_id: Mapped[str | None] = mapped_column(String(64))
    code_mac: Mapped[str] = mapped_column(String(128))
    client_ip: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=ChallengeStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class PortalSession(Base):
    """A browser session: anonymous until sign-in, when it is replaced by a new one."""

    __tablename__ = "portal_sessions"

    #: SHA-256 (hex) of the cookie value; the value itself is never stored.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_id: Mapped[str | None] = mapped_column(String(64), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(8))
    #: The challenge this (anonymous) session is answering, if any.
    challenge_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
