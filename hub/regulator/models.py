"""The dashboard's one table: signed-in sessions ended before their cookie expired.

A session is a signed cookie (:mod:`hub.regulator.sessions`); signing out records the session's
random id here, and every dashboard request refuses a cookie whose id is listed. A row is only
needed until the cookie would have expired anyway (``expires_at``), then it may be purged.
The id alone is no credential (a cookie also needs the hub's MAC), so it is kept as is.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.base import Base, utcnow


class RevokedRegulatorSession(Base):
    """A dashboard session signed out (or otherwise ended) before its expiry."""

    __tablename__ = "regulator_revoked_sessions"

    #: The session id the cookie carries (``RegulatorSession.session_id``).
    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: When the cookie expires anyway; the row may be purged after it.
    expires_at: Mapped[datetime] = mapped_column(index=True)
