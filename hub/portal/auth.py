"""Sign-in without a password, and browser sessions.

``start``: the consumer gives a mobile number or an e-mail address (an ``@`` means e-mail), found
by the hub-wide blind index of that kind; the hub records a challenge (a 6-digit code, 5
minutes, 5 tries) whether or not a consumer has that identifier, and sends the code only if one
does, so the answer never tells whether an identifier is known. Codes per identifier and per
client IP are counted in the database (the challenges table), so limits hold across processes.

``verify``: a right code on a live challenge signs the consumer in: the anonymous session is
deleted and a new one (new id, new CSRF token) is issued, which defeats session fixation.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from hub.crypto import FieldProtector
from hub.crypto.errors import NormalizationError
from hub.crypto.normalize import normalize_identifier
from hub.keyfiles import load_or_create
from hub.portal.errors import IdentifierInvalidError, RateLimitedError
from hub.portal.models import ChallengeStatus, PortalSession, SignInChallenge
from hub.portal.notifier import Message, Notifier, NotifierError
from hub.portal.settings import PortalSettings
from hub.records.models import DataSubject, SubjectIdentifier
from hub.records.service import is_valid_email
from hub.store.base import utcnow

CODE_DIGITS = 6
log = logging.getLogger("tollhouse.portal")

#: Builds the code message for (mobile number or e-mail address, code, the subject's
#: jurisdiction), in their language.
MessageMaker = Callable[[str, str, str | None], Message]


class Outcome(StrEnum):
    SIGNED_IN = "signed_in"
    WRONG = "wrong"
    LOCKED = "locked"


@dataclass(frozen=True, slots=True)
class Verification:
    outcome: Outcome
    cookie: str = ""
    session: PortalSession | None = None


def parse_identifier(value: str) -> tuple[str, str]:
    """``(kind, normalised value)`` of what the consumer typed: an ``@`` means an e-mail address
    (the publish API's rules), anything else a mobile number. ``IdentifierInvalidError`` if it is
    neither."""
    kind = "email" if "@" in value else "mobile"
    try:
        if kind == "email" and not is_valid_email(value):
            raise NormalizationError("email address is malformed")
        return kind, normalize_identifier(kind, value)
    except NormalizationError as exc:
        raise IdentifierInvalidError(f"not a {kind}") from exc


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """A session and the cookie value that names it (only the cookie holds the value)."""

    cookie: str
    row: PortalSession


class SessionStore:
    def __init__(self, settings: PortalSettings) -> None:
        self.settings = settings

    def find(self, session: Session, cookie: str | None) -> PortalSession | None:
        if not cookie or len(cookie) > 128:
            return None
        row = session.get(PortalSession, _sha256(cookie))
        if row is None or row.expires_at <= utcnow():
            return None
        return row

    def issue(
        self,
        session: Session,
        *,
        subject_id: str | None = None,
        locale: str | None = None,
    ) -> IssuedSession:
        now = utcnow()
        ttl = (
            self.settings.session_ttl_seconds
            if subject_id
            else self.settings.anonymous_session_ttl_seconds
        )
        cookie = secrets.token_urlsafe(32)
        row = PortalSession(
            id=_sha256(cookie),
            subject_id=subject_id,
            csrf_token=secrets.token_urlsafe(32),
            locale=locale,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
        session.add(row)
        # Housekeeping: expired sessions go.
        session.execute(delete(PortalSession).where(PortalSession.expires_at <= now))
        session.flush()
        return IssuedSession(cookie=cookie, row=row)

    def end(self, session: Session, row: PortalSession) -> None:
        session.execute(delete(PortalSession).where(PortalSession.id == row.id))

    def check_csrf(self, row: PortalSession | None, token: str | None) -> bool:
        return bool(
            row is not None
            and token
            and hmac.compare_digest(row.csrf_token.encode(), token.encode())
        )


class SignIn:
    def __init__(
        self,
        *,
        settings: PortalSettings,
        protector: FieldProtector,
        notifier: Notifier,
        keys_dir: Path,
        sessions: SessionStore,
    ) -> None:
        self.settings = settings
        self.protector = protector
        self.notifier = notifier
        self.sessions = sessions
        self._key = load_or_create(keys_dir / "portal-otp.key", lambda: secrets.token_bytes(32))

    def _mac(self, challenge_id: str, code: str) -> str:
        return hmac.new(self._key, f"{challenge_id}\x00{code}".encode(), "sha256").hexdigest()

    def start(
        self,
        session: Session,
        *,
        identifier: str,
        client_ip: str,
        anonymous: PortalSession,
        message: MessageMaker,
    ) -> SignInChallenge:
        """Record a challenge and send its code if a consumer has this mobile number or e-mail
        address; the code goes to what was typed (normalised), never to another identifier."""
        kind, value = parse_identifier(identifier)
        try:
            digest = self.protector.blind_index(kind, value)
        except NormalizationError as exc:
            raise IdentifierInvalidError(f"not a {kind}") from exc
        now = utcnow()
        since = now - timedelta(seconds=self.settings.rate_window_seconds)
        per_identifier = session.scalar(
            select(func.count())
            .select_from(SignInChallenge)
            .where(
                SignInChallenge.identifier_digest == digest,
                SignInChallenge.created_at > since,
            )
        )
        per_ip = session.scalar(
            select(func.count())
            .select_from(SignInChallenge)
            .where(SignInChallenge.client_ip == client_ip, SignInChallenge.created_at > since)
        )
        if (per_identifier or 0) >= self.settings.codes_per_identifier or (
            per_ip or 0
        ) >= self.settings.codes_per_ip:
            raise RateLimitedError()
        subject_id = session.scalar(
            select(SubjectIdentifier.subject_id).where(
                SubjectIdentifier.kind == kind, SubjectIdentifier.digest == digest
            )
        )
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        challenge = SignInChallenge(
            identifier_digest=digest,
            subject_id=subject_id,
            code_mac="",
            client_ip=client_ip[:64],
            created_at=now,
            expires_at=now + timedelta(seconds=self.settings.code_ttl_seconds),
        )
        session.add(challenge)
        # Housekeeping: challenges older than a day count for no limit any more.
        session.execute(
            delete(SignInChallenge).where(SignInChallenge.created_at < now - timedelta(days=1))
        )
        session.flush()
        challenge.code_mac = self._mac(challenge.id, code)
        anonymous.challenge_id = challenge.id
        if subject_id is not None:
            jurisdiction = session.scalar(
                select(DataSubject.jurisdiction).where(DataSubject.id == subject_id)
            )
            try:
                self.notifier.send(message(value, code, jurisdiction))
            except NotifierError:
                # Same answer as ever (an error here would tell the identifier is known); the
                # consumer asks again. Logged for the operators.
                log.warning("portal: the sign-in code could not be delivered", exc_info=True)
        return challenge

    def verify(self, session: Session, *, anonymous: PortalSession, code: str) -> Verification:
        """Check the code; on success the anonymous session is replaced by a new one. A wrong
        code is an outcome, not an exception, so that the attempt count is committed."""
        challenge = (
            session.scalars(
                select(SignInChallenge)
                .where(SignInChallenge.id == anonymous.challenge_id)
                .with_for_update()
            ).one_or_none()
            if anonymous.challenge_id
            else None
        )
        if challenge is None:
            return Verification(Outcome.WRONG)
        if challenge.status == ChallengeStatus.LOCKED:
            return Verification(Outcome.LOCKED)
        if challenge.status != ChallengeStatus.PENDING or challenge.expires_at <= utcnow():
            return Verification(Outcome.WRONG)
        challenge.attempts += 1
        candidate = code.strip()
        right = (
            len(candidate) == CODE_DIGITS
            and candidate.isascii()
            and candidate.isdigit()
            and hmac.compare_digest(self._mac(challenge.id, candidate), challenge.code_mac)
        )
        if not right or challenge.subject_id is None:
            if challenge.attempts >= self.settings.code_max_attempts:
                challenge.status = ChallengeStatus.LOCKED
                return Verification(Outcome.LOCKED)
            return Verification(Outcome.WRONG)
        challenge.status = ChallengeStatus.USED
        subject_id = challenge.subject_id
        locale = anonymous.locale
        self.sessions.end(session, anonymous)
        issued = self.sessions.issue(session, subject_id=subject_id, locale=locale)
        return Verification(Outcome.SIGNED_IN, cookie=issued.cookie, session=issued.row)
