"""Helpers for registry tests: the operator's calls and partner tokens from raw credentials."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta
from typing import Any

from hub.store.base import utcnow
from tests.support.hub import HubEnv

OPERATOR = "operator"


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def token_response(hub: HubEnv, client_id: str, secret: str) -> Any:
    return hub.client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, secret)
    )


def bearer(hub: HubEnv, client_id: str, secret: str) -> dict[str, str]:
    response = token_response(hub, client_id, secret)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def admin(hub: HubEnv, method: str, path: str, **kwargs: Any) -> Any:
    return hub.client.request(method, path, headers=hub.auth(OPERATOR), **kwargs)


def new_partner(hub: HubEnv, **overrides: Any) -> dict[str, Any]:
    """Register a partner through the admin API; return the response body (with the secret)."""
    body: dict[str, Any] = {
        "name": "Lingang Leasing",
        "legal_name": "Shanghai Lingang Auto Leasing Co., Ltd.",
        "registration_id": "91" + uuid.uuid4().hex[:16].upper(),
        "role": "lender",
        "jurisdiction": "CN",
        "contact": {"name": "Data Protection Office", "email": "dpo@lingang.example"},
    }
    body.update(overrides)
    response = admin(hub, "POST", "/v1/partners", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def proposal(dataset_id: str, purpose: str, fields: list[str], **overrides: Any) -> dict[str, Any]:
    now = utcnow()
    body: dict[str, Any] = {
        "dataset_id": dataset_id,
        "purpose": purpose,
        "fields": fields,
        "retention_days": 90,
        "valid_from": (now - timedelta(days=1)).isoformat(),
        "valid_until": (now + timedelta(days=60)).isoformat(),
        "reason": "test",
    }
    body.update(overrides)
    return body
