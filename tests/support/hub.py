"""A seeded hub for API tests: settings, runtime, the ASGI app and a test client."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from hub.app import create_app
from hub.runtime import Runtime
from hub.settings import Settings

TEST_ISSUER = "http://testserver"


@dataclass
class HubEnv:
    settings: Settings
    runtime: Runtime
    client: TestClient
    credentials: dict[str, Any]
    _tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    def partner(self, ref: str) -> dict[str, Any]:
        partner: dict[str, Any] = self.credentials["partners"][ref]
        return partner

    def basic_auth(self, ref: str) -> str:
        p = self.partner(ref)
        raw = f"{p['client_id']}:{p['client_secret']}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def token(self, ref: str, scope: str = "") -> str:
        key = (ref, scope)
        if key not in self._tokens:
            response = self.client.post(
                "/oauth/token",
                data={"grant_type": "client_credentials", **({"scope": scope} if scope else {})},
                headers={"Authorization": self.basic_auth(ref)},
            )
            assert response.status_code == 200, response.text
            self._tokens[key] = response.json()["access_token"]
        return self._tokens[key]

    def auth(self, ref: str, scope: str = "") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(ref, scope)}"}

    def agreement(self, recipient: str, dataset: str) -> str:
        for a in self.partner(recipient)["agreements"]:
            if a["dataset"] == dataset:
                agreement_id: str = a["id"]
                return agreement_id
        raise KeyError((recipient, dataset))

    def session(self) -> Session:
        return self.runtime.session_factory()

    def pull_all(self, ref: str, agreement_id: str, limit: int = 50) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": limit}
            if cursor:
                params["cursor"] = cursor
            response = self.client.get(
                f"/v1/agreements/{agreement_id}/records", params=params, headers=self.auth(ref)
            )
            assert response.status_code == 200, response.text
            page = response.json()
            items.extend(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                return items


def build_env(settings: Settings, credentials: dict[str, Any]) -> HubEnv:
    runtime = Runtime.build(settings)
    app = create_app(settings, runtime)
    client = TestClient(app, base_url=TEST_ISSUER, raise_server_exceptions=False)
    return HubEnv(settings=settings, runtime=runtime, client=client, credentials=credentials)
