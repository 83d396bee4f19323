"""Fixtures for the hardening suite: a credential for every principal of the allow-matrix."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from consent.models import Consent
from tests.hardening.matrix import ANON, CONSUMER, PARTNER_REFS
from tests.support.hub import HubEnv


def consumer_subject(hub: HubEnv, *, offset: int = 0) -> str:
    """A data subject who holds at least one consent (ordered, so stable per seed)."""
    with hub.session() as session:
        subjects = session.scalars(
            select(Consent.subject_id).distinct().order_by(Consent.subject_id).limit(offset + 1)
        ).all()
    return subjects[offset]


@pytest.fixture(scope="module")
def principal_headers(hub: HubEnv) -> dict[str, dict[str, str]]:
    """Authorization headers per principal: none, a consumer token, each role's access token."""
    headers: dict[str, dict[str, str]] = {ANON: {}}
    token = hub.runtime.consumer_tokens.issue(consumer_subject(hub))
    headers[CONSUMER] = {"Authorization": f"Bearer {token}"}
    for role, ref in PARTNER_REFS.items():
        headers[role] = hub.auth(ref)
    return headers
