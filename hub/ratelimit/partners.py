"""A partner's own rate limits (``partners.rate_limits``): the operator's registry setting."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import FieldError, NotFoundError, ValidationFailedError
from hub.ratelimit.limits import parse_overrides
from hub.registry.models import Partner, PartnerEvent
from hub.store.base import utcnow


def set_partner_rate_limits(
    session: Session, *, partner_id: str, limits: Any, actor: str, reason: str = ""
) -> Partner:
    """Validate and store (``None`` clears) the partner's limits per route class; the change is
    kept in the partner's history. Takes effect on the partner's next request."""
    try:
        parsed = parse_overrides(limits)
    except ValueError as exc:
        raise ValidationFailedError(
            "Invalid rate limits.", [FieldError("rate_limits", str(exc).splitlines()[0])]
        ) from exc
    partner = session.scalars(
        select(Partner).where(Partner.id == partner_id).with_for_update()
    ).first()
    if partner is None:
        raise NotFoundError("No partner with this id.")
    document: dict[str, Any] | None = {
        str(cls): limit.model_dump() for cls, limit in parsed.items()
    } or None
    partner.rate_limits = document
    partner.updated_at = utcnow()
    session.add(
        PartnerEvent(
            partner_id=partner.id,
            event="rate_limits_set" if document else "rate_limits_cleared",
            actor=actor,
            reason=reason,
            details={"rate_limits": document},
        )
    )
    session.flush()
    return partner
