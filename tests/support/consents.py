"""Consents made straight through the service, for tests that need one with given terms."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from consent.service import ConsentTerms
from hub.store.base import utcnow
from tests.support.hub import HubEnv


def grant_capped(
    env: HubEnv,
    *,
    recipient: str,
    subject_id: str,
    purpose: str,
    cap: int,
    starts_at: datetime,
    categories: Sequence[str] = ("identity", "income", "loan"),
) -> str:
    """A new consent (it wins over the subject's older ones) from ``starts_at`` for 30 days,
    letting ``recipient`` fetch the subject's data at most ``cap`` times a UTC day; its id."""
    terms = ConsentTerms(
        purpose=purpose,
        categories=tuple(categories),
        starts_at=starts_at,
        expires_at=starts_at + timedelta(days=30),
        fetches_per_day=cap,
    )
    with env.session() as session:
        consent = env.runtime.consents.grant(
            session,
            subject_id=subject_id,
            recipient_id=str(env.partner(recipient)["partner_id"]),
            terms=terms,
            channel="test",
            now=starts_at,
        )
        session.commit()
        return consent.id


def grant_to_role(
    env: HubEnv,
    *,
    role: str,
    subject_id: str,
    purpose: str,
    categories: Sequence[str] = ("identity", "income", "loan"),
    days: int = 30,
    channel: str = "test",
) -> str:
    """A new consent (it wins over the subject's older ones), started a minute ago, letting
    every partner of ``role`` read the subject's data for ``purpose`` for ``days``; its id."""
    starts_at = utcnow() - timedelta(minutes=1)
    with env.session() as session:
        consent = env.runtime.consents.grant(
            session,
            subject_id=subject_id,
            recipient_role=role,
            terms=ConsentTerms(
                purpose=purpose,
                categories=tuple(categories),
                starts_at=starts_at,
                expires_at=starts_at + timedelta(days=days),
            ),
            channel=channel,
            now=starts_at,
        )
        session.commit()
        return consent.id
