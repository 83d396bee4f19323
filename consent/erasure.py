"""Ending a data subject's live consents when the hub erases the subject.

PIPL (and GDPR art. 19) ask a handler that deletes personal information to tell the recipients
it shared it with. The erasure (``hub.records.erasure``) calls :func:`end_consents_of_erased`
in its own transaction, through the consent service's ordinary paths, so each ending has its
history row, signed receipt, audit event and webhook notification (to the recipient partner, or
under a consent naming a role, to each partner that received records under it,
``consent.releases``):

- an ``active`` or ``paused`` consent is **revoked** by the hub with :data:`ERASURE_REASON`
  (``consent.revoked``: the recipient receives the reason and ``data.subject``, the subject's
  pseudonym for it, and deletes what it holds);
- a pending request (``requested``) is **closed** by the hub (``denied``, actor
  :data:`ERASURE_ACTOR`) with the same reason (the requester never received anything, so no
  webhook; it sees the denial on the consent);
- a consent already past its end is left to the expiry sweep (the consent service allows no
  other move for it); ended ones are left as they are.

The subject's daily fetch counts (``consent_fetch_counts``) are deleted first: nothing will be
fetched under the ended consents, and the audit log keeps every release. First, so that the
erasure takes those rows' locks before any audit append, in the order a pull takes them.

Running it again ends nothing twice: only consents still live are touched, each under its row
lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.errors import InvalidConsentTransitionError
from consent.fetches import forget_fetches_of_subject
from consent.models import Consent, ConsentEvent, ConsentStatus
from consent.service import ConsentService, effective_status
from hub.store.base import utcnow

#: The actor and channel of the endings (in the consent history and its audit events).
ERASURE_ACTOR = "hub:erasure"
ERASURE_CHANNEL = "erasure"
#: The reason recorded in each ending and sent to the recipient (stable text; no identifier).
ERASURE_REASON = (
    "subject_erased: the hub erased this data subject's personal information; "
    "delete what you received about them"
)
_LIVE = (ConsentStatus.REQUESTED, ConsentStatus.ACTIVE, ConsentStatus.PAUSED)


@dataclass(frozen=True)
class ErasureEndings:
    """The consents one erasure ended, by id."""

    revoked: tuple[str, ...] = ()
    denied: tuple[str, ...] = ()
    #: The receipts of the endings (what audit events cite as ``consent_ids``).
    receipts: tuple[str, ...] = ()


def end_consents_of_erased(
    session: Session,
    *,
    consents: ConsentService,
    subject_id: str,
    now: datetime | None = None,
) -> ErasureEndings:
    """Revoke the subject's active and paused consents and deny their pending requests, in the
    caller's transaction (the caller commits, with the erasure itself)."""
    now = now or utcnow()
    forget_fetches_of_subject(session, subject_id)
    live = consents.consents_of_subject(session, subject_id=subject_id, statuses=_LIVE)
    revoked: list[str] = []
    denied: list[str] = []
    receipts: list[str] = []
    for consent in live:
        ended = _end(session, consents, consent, now)
        if ended is None:
            continue
        (revoked if ended == ConsentStatus.REVOKED else denied).append(consent.id)
        if consent.receipt_id:
            receipts.append(consent.receipt_id)
    return ErasureEndings(revoked=tuple(revoked), denied=tuple(denied), receipts=tuple(receipts))


def _end(session: Session, consents: ConsentService, consent: Consent, now: datetime) -> str | None:
    # Twice at most: a concurrent change (a grant, a withdrawal) committed between the look-up
    # and the row lock refreshes the row (the lock reads it again), and the second look decides.
    for _attempt in range(2):
        status = effective_status(consent, now)
        try:
            if status == ConsentStatus.REQUESTED:
                consents.close_request(
                    session,
                    consent_id=consent.id,
                    actor=ERASURE_ACTOR,
                    channel=ERASURE_CHANNEL,
                    reason=ERASURE_REASON,
                    now=now,
                )
                return ConsentStatus.DENIED
            if status in (ConsentStatus.ACTIVE, ConsentStatus.PAUSED):
                consents.revoke(
                    session,
                    consent_id=consent.id,
                    actor=ERASURE_ACTOR,
                    reason=ERASURE_REASON,
                    channel=ERASURE_CHANNEL,
                    now=now,
                )
                return ConsentStatus.REVOKED
            return None
        except InvalidConsentTransitionError:
            continue
    return None


def ended_by_erasure(session: Session, consent_ids: Sequence[str]) -> set[str]:
    """Which of these consents an erasure ended (for the consumer's list of ended consents)."""
    if not consent_ids:
        return set()
    return set(
        session.scalars(
            select(ConsentEvent.consent_id).where(
                ConsentEvent.consent_id.in_(list(consent_ids)),
                ConsentEvent.channel == ERASURE_CHANNEL,
            )
        ).all()
    )


__all__ = [
    "ERASURE_ACTOR",
    "ERASURE_CHANNEL",
    "ERASURE_REASON",
    "ErasureEndings",
    "end_consents_of_erased",
    "ended_by_erasure",
]
