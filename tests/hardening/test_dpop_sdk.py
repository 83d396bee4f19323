"""The partner SDK with DPoP, against a real hub (`tollhouse serve` on loopback): a partner the
operator marked `dpop_required` (with the `tollhouse partners dpop` command) pulls with a
``dpop_key`` and is refused a token without one. The SDK's nonce handling (``use_dpop_nonce``)
is checked against a scripted transport."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey

from connectors import AsyncHubClient, ClientCredentials, HubClient, OAuthError
from hub.auth.algorithms import fapi_registry
from tests.support.databases import TestDatabases
from tests.support.served import ServedHub, served_copy

pytestmark = pytest.mark.slow

LENDER = "lender-jinqiao"
DATASET = "dealer-huadong.loan-applications"


@pytest.fixture(scope="module")
def served(
    seeded_template: tuple[Path, str, dict[str, Any]],
    databases: TestDatabases,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServedHub]:
    hub = served_copy(seeded_template, databases, tmp_path_factory.mktemp("dpop-sdk"))
    result = hub.cli("partners", "dpop", seeded_template[2]["partners"][LENDER]["client_id"],
                     "--required", "--reason", "stolen-token drill")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def lender(seeded_template: tuple[Path, str, dict[str, Any]]) -> dict[str, Any]:
    partner: dict[str, Any] = seeded_template[2]["partners"][LENDER]
    return partner


def test_the_sdk_pulls_with_dpop(served: ServedHub, lender: dict[str, Any]) -> None:
    key = ECKey.generate_key("P-256", private=True)
    with HubClient(
        served.url, lender["client_id"], client_secret=lender["client_secret"], dpop_key=key
    ) as hub:
        assert hub.list_agreements()
        pages = list(hub.iter_records(_pulled(lender), limit=20))
        assert pages and sum(len(p.items) for p in pages) > 0
        token = hub.auth._token
        assert token is not None and token.token_type == "DPoP"
        claims = jwt.decode(token.value, _hub_keys(served), algorithms=["Ed25519"]).claims
        assert claims["cnf"]["jkt"] == key.thumbprint()


def test_the_async_sdk_pulls_with_dpop(served: ServedHub, lender: dict[str, Any]) -> None:
    async def pull() -> int:
        key = OKPKey.generate_key("Ed25519", private=True)
        async with AsyncHubClient(
            served.url, lender["client_id"], client_secret=lender["client_secret"], dpop_key=key
        ) as hub:
            assert await hub.list_agreements()
            page = await hub.pull(_pulled(lender), limit=5)
            return len(page.items)

    assert anyio.run(pull) > 0


def test_without_a_dpop_key_the_partner_gets_no_token(
    served: ServedHub, lender: dict[str, Any]
) -> None:
    with (
        HubClient(served.url, lender["client_id"], client_secret=lender["client_secret"]) as hub,
        pytest.raises(OAuthError) as caught,
    ):
        hub.list_agreements()
    assert caught.value.error == "invalid_dpop_proof"


def test_a_stolen_dpop_token_is_useless_without_the_key(
    served: ServedHub, lender: dict[str, Any]
) -> None:
    key = ECKey.generate_key("P-256", private=True)
    auth = ClientCredentials(
        served.url + "/oauth/token", lender["client_id"], client_secret=lender["client_secret"],
        dpop_key=key,
    )  # fmt: skip
    with httpx.Client(base_url=served.url, auth=auth) as http:
        assert http.get("/v1/agreements").status_code == 200
    assert auth._token is not None
    stolen = auth._token.value
    thief = ClientCredentials(
        served.url + "/oauth/token", "x", client_secret="x", dpop_key=ECKey.generate_key("P-256")
    )
    for headers in (
        {"Authorization": f"Bearer {stolen}"},
        {"Authorization": f"DPoP {stolen}"},
        {"Authorization": f"DPoP {stolen}",
         "DPoP": thief.dpop_proof("GET", served.url + "/v1/agreements", access_token=stolen)},
    ):  # fmt: skip
        response = httpx.get(served.url + "/v1/agreements", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("DPoP ")
        assert response.headers["content-type"].startswith("application/problem+json")


def _pulled(lender: dict[str, Any]) -> str:
    """The lender's agreement as the recipient of the dealer's loan applications."""
    return str(next(a["id"] for a in lender["agreements"] if a["dataset"] == DATASET))


def _hub_keys(served: ServedHub) -> Any:
    from joserfc.jwk import KeySet

    return KeySet.import_key_set(httpx.get(served.url + "/.well-known/jwks.json").json())


# -- the nonce dance, scripted ----------------------------------------------------------------


def test_the_sdk_retries_once_with_the_servers_nonce() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        proof = request.headers["DPoP"]
        header = jwt.decode(
            proof,
            ECKey.import_key(json.loads(_segment(proof, 0))["jwk"]),
            algorithms=["ES256"],
            registry=fapi_registry("ES256"),
        )
        seen.append({"path": request.url.path, **header.claims})
        if "nonce" not in header.claims:
            if request.url.path == "/oauth/token":
                return httpx.Response(
                    400, json={"error": "use_dpop_nonce"}, headers={"DPoP-Nonce": "n1"}
                )
            return httpx.Response(
                401, headers={"WWW-Authenticate": 'DPoP error="use_dpop_nonce"', "DPoP-Nonce": "n1"}
            )
        if request.url.path == "/oauth/token":
            return httpx.Response(
                200, json={"access_token": "tok", "token_type": "DPoP", "expires_in": 300}
            )
        assert request.headers["Authorization"] == "DPoP tok"
        return httpx.Response(200, json={"items": []})

    auth = ClientCredentials(
        "https://hub.example/oauth/token", "c", client_secret="s",
        dpop_key=ECKey.generate_key("P-256", private=True),
    )  # fmt: skip
    with httpx.Client(transport=httpx.MockTransport(handler), auth=auth) as http:
        assert http.get("https://hub.example/v1/agreements?limit=1").status_code == 200
    assert [s["path"] for s in seen] == ["/oauth/token", "/oauth/token", "/v1/agreements"]
    assert [s.get("nonce") for s in seen] == [None, "n1", "n1"]
    assert seen[2]["htu"] == "https://hub.example/v1/agreements"
    assert seen[2]["htm"] == "GET" and "ath" in seen[2]


def _segment(token: str, index: int) -> bytes:
    import base64

    part = token.split(".")[index]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
