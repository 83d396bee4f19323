"""Rate limits and identity-lookup guards as the API applies them (issue 12, hardening).

Every authenticated partner call spends one token of the partner's bucket for the call's route
class (``hub.ratelimit``): record pulls ``pull``, publishing ``publish``, finding a consumer by
identifier ``lookup``, everything else ``api``. The token endpoint's buckets are spent by the
authorization server itself (``hub.ratelimit.token_endpoint``): failures by claimed client and
source address, successes by the authenticated partner's own ``token`` bucket. An empty bucket
is a 429 problem with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from fastapi import Request
from sqlalchemy.orm import Session

from hub.audit import append_event
from hub.auth.tokens import PARTNER_INFO_KEY, AuthenticatedPartner
from hub.crypto.errors import NormalizationError
from hub.ratelimit import (
    LookupVelocityError,
    PlaceholderIdentifierError,
    RateLimit,
    RouteClass,
    is_placeholder,
)
from hub.ratelimit.limits import limit_for
from hub.registry.models import Partner
from hub.runtime import Runtime
from hub.settings import Settings

#: (method, route template) -> route class; every other authenticated call is ``api``.
ROUTE_CLASSES: dict[tuple[str, str], RouteClass] = {
    ("GET", "/v1/agreements/{agreement_id}/records"): "pull",
    ("GET", "/v1/agreements/{agreement_id}/records/{record_key}"): "pull",
    ("POST", "/v1/datasets/{dataset_id}/records"): "publish",
    ("POST", "/v1/consent-requests"): "lookup",
    ("POST", "/v1/decisions/explain"): "lookup",
}
IDENTIFIER_KINDS = ("id_number", "mobile", "vin", "email")


def route_class(request: Request) -> RouteClass:
    template = getattr(request.scope.get("route"), "path", "")
    return ROUTE_CLASSES.get((request.method, template), "api")


class _PartnerLimits(Protocol):
    """What :func:`partner_limit` reads of a partner: a :class:`Partner` or a ``PartnerRow``."""

    @property
    def id(self) -> str: ...
    @property
    def rate_limits(self) -> dict[str, Any] | None: ...


def partner_limit(
    settings: Settings, partner: _PartnerLimits | None, route_class: RouteClass
) -> RateLimit:
    """The partner's registry setting for this class if it has one, else the settings'."""
    default = settings.rate_limit(route_class)
    if partner is None:
        return default
    return limit_for(partner.rate_limits, route_class, default, partner_id=partner.id)


def enforce_rate_limit(
    request: Request, runtime: Runtime, session: Session, caller: AuthenticatedPartner
) -> None:
    """Spend one token of the caller's bucket for this route's class (429 when empty). The
    token check left the partner's row in ``session.info``: no extra query."""
    if not runtime.rate_limiter.enabled:
        return
    cls = route_class(request)
    partner: _PartnerLimits | None = session.info.get(PARTNER_INFO_KEY)
    if partner is None or partner.id != caller.partner_id:
        partner = session.get(Partner, caller.partner_id)
    limit = partner_limit(runtime.settings, partner, cls)
    runtime.rate_limiter.check(caller.partner_id, cls, limit, session=session)


def guard_identity_lookup(
    runtime: Runtime,
    session: Session,
    *,
    caller: AuthenticatedPartner,
    identifiers: Mapping[str, str | None],
    request_id: str,
) -> None:
    """Before a consumer is looked up by identifier: 422 on a placeholder, 429 beyond the
    partner's velocity (distinct identifiers per window). Refusals are audited (the event
    names the partner and the reason, never the identifier) and committed before the error."""
    given = {k: v for k, v in identifiers.items() if k in IDENTIFIER_KINDS and v}
    for kind, value in given.items():
        if is_placeholder(kind, value):
            _refused(session, caller, request_id, "lookup.placeholder_identifier")
            raise PlaceholderIdentifierError(kind)
    digests: list[str] = []
    for kind, value in given.items():
        try:
            digests.append(runtime.protector.blind_index(kind, value))
        except NormalizationError:
            continue  # malformed: the lookup itself answers 422
    try:
        runtime.lookup_guard.record(session, caller.partner_id, digests)
    except LookupVelocityError:
        _refused(session, caller, request_id, "lookup.velocity_exceeded")
        raise


def _refused(session: Session, caller: AuthenticatedPartner, request_id: str, reason: str) -> None:
    append_event(
        session,
        {
            "kind": "lookup.refused",
            "partner_id": caller.partner_id,
            "request_id": request_id,
            "outcome": "denied",
            "reasons": [reason],
        },
    )
    session.commit()
