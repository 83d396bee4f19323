"""Audit of object-level access that was refused (BOLA attempts), issue 12.

An agreement or consent that is not the caller's answers exactly like a missing one (404); the
attempt is written to the audit log as ``access.denied`` naming the caller and the id it asked
for, like refused pulls (``release.denied``). Missing ids are logged the same way: the log must
not tell them apart any more than the answer does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from consent.errors import ConsentNotFoundError
from hub.api.deps import CallerDep, SessionDep
from hub.api.ratelimit import route_class
from hub.audit import append_event
from hub.registry.errors import AgreementNotFoundError

_NOT_FOUND: dict[str, tuple[type[Exception], ...]] = {
    "agreement": (AgreementNotFoundError,),
    "consent": (ConsentNotFoundError,),
}


def audit_denied(object_type: str) -> Callable[..., AsyncIterator[None]]:
    """A dependency that logs the route's not-found answer for ``{<object_type>_id}``.

    ``async``: on the way in it does nothing, and only a refusal writes (in the thread pool):
    a sync generator dependency costs every request two thread hops."""
    errors = _NOT_FOUND[object_type]
    param = f"{object_type}_id"

    async def audit(
        request: Request, caller: CallerDep, session: SessionDep
    ) -> AsyncIterator[None]:
        try:
            yield
        except errors:
            if route_class(request) == "pull":
                raise  # the release pipeline logged it (``release.denied``)
            object_id = str(request.path_params.get(param, ""))
            event: dict[str, Any] = {
                "kind": "access.denied",
                "partner_id": caller.partner_id,
                "request_id": getattr(request.state, "request_id", None),
                "outcome": "denied",
                "reasons": [f"{object_type}.not_visible"],
                "object_type": object_type,
                "object_id": object_id,
            }
            if object_type == "agreement":
                event["agreement_id"] = object_id
            await run_in_threadpool(_log_denial, session, event)
            raise

    audit.__name__ = f"audit_denied_{object_type}"
    return audit


def _log_denial(session: Session, event: dict[str, Any]) -> None:
    session.rollback()  # whatever the handler began is not kept
    append_event(session, event)
    session.commit()


AuditDeniedAgreement = Depends(audit_denied("agreement"), scope="function")
AuditDeniedConsent = Depends(audit_denied("consent"), scope="function")
