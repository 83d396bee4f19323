"""The explain endpoint's answer, straight from the service, for tests of what it reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hub.release.explain import explain_release
from hub.store.base import utcnow
from tests.support.hub import HubEnv


def explained(
    env: HubEnv,
    *,
    agreement_id: str,
    mobile: str,
    record_key: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """What explain says of the subject with this mobile number under ``agreement_id`` (its
    audit event rolled back: tests asking it again see the same log)."""
    with env.session() as session:
        document = explain_release(
            session,
            explainer=env.runtime.explainer,
            protector=env.runtime.protector,
            agreement_id=agreement_id,
            identifiers={"mobile": mobile},
            record_key=record_key,
            asked_by="test",
            request_id="req_test_explain",
            now=now or utcnow(),
        )
        session.rollback()
    return document
