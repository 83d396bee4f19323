"""Client credentials flow: token caching, refresh, client_secret_basic and private_key_jwt."""

from __future__ import annotations

import httpx
import pytest
from joserfc.jwk import ECKey, OKPKey

import connectors as c
from connectors import ClientCredentials, HubClient
from tests.connectors.fakehub import FakeHub

BASE = "http://hub.test"
TOKEN_URL = f"{BASE}/oauth/token"


def token_calls(hub: FakeHub) -> int:
    return sum(1 for r in hub.requests if r.url.path == "/oauth/token")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_token_is_cached(client: HubClient, hub: FakeHub) -> None:
    client.list_agreements()
    client.list_agreements()
    client.pull("agr-1")
    assert token_calls(hub) == 1
    assert all(
        r.headers["Authorization"] == "Bearer tok-1"
        for r in hub.requests
        if r.url.path != "/oauth/token"
    )


def test_token_request_form_and_basic_auth(client: HubClient, hub: FakeHub) -> None:
    client.list_agreements()
    token_request = hub.requests[0]
    assert token_request.headers["Authorization"].startswith("Basic ")
    body = token_request.content.decode()
    assert "grant_type=client_credentials" in body
    assert "scope=records%3Apull+records%3Apublish" in body


def test_token_refreshed_before_expiry(hub: FakeHub) -> None:
    clock = Clock()
    auth = ClientCredentials(
        TOKEN_URL, hub.client_id, client_secret=hub.client_secret, leeway=30, clock=clock
    )
    with httpx.Client(base_url=BASE, auth=auth, transport=httpx.MockTransport(hub)) as http:
        http.get("/v1/agreements")
        clock.now += hub.expires_in - 31  # still valid for more than the leeway
        http.get("/v1/agreements")
        assert token_calls(hub) == 1
        clock.now += 2  # now within the leeway: refresh before it expires
        response = http.get("/v1/agreements")
    assert token_calls(hub) == 2
    assert response.request.headers["Authorization"] == "Bearer tok-2"


def test_refresh_once_on_401(client: HubClient, hub: FakeHub) -> None:
    client.list_agreements()
    hub.revoked.add("tok-1")  # the hub forgot our token (restart, key rotation...)
    assert client.list_agreements()[0].id == "agr-1"
    assert token_calls(hub) == 2


def test_second_401_raises_unauthorized(client: HubClient, hub: FakeHub) -> None:
    client.list_agreements()
    hub.revoked.update({"tok-1", "tok-2", "tok-3"})
    with pytest.raises(c.Unauthorized):
        client.list_agreements()
    assert token_calls(hub) == 2  # one refresh, no loop


def test_bad_secret_is_an_oauth_error(hub: FakeHub) -> None:
    with (
        HubClient(
            BASE, hub.client_id, client_secret="wrong", transport=httpx.MockTransport(hub)
        ) as cl,
        pytest.raises(c.OAuthError) as info,
    ):
        cl.list_agreements()
    assert (info.value.error, info.value.status) == ("invalid_client", 401)


def test_token_endpoint_outage_is_retried(
    client: HubClient, hub: FakeHub, sleeps: list[float]
) -> None:
    hub.fail("/oauth/token", httpx.Response(503), times=2)
    assert client.list_agreements()
    assert len(sleeps) == 2


def test_secrets_stay_out_of_reprs(client: HubClient, hub: FakeHub) -> None:
    client.list_agreements()
    for text in (repr(client), repr(client.auth), str(vars(client.auth).get("token_url"))):
        assert "s3cret" not in text and "tok-1" not in text


@pytest.mark.parametrize(
    ("key", "alg"),
    [(OKPKey.generate_key("Ed25519"), "Ed25519"), (ECKey.generate_key("P-256"), "ES256")],
    ids=["Ed25519", "ES256"],
)
@pytest.mark.parametrize("form", ["pem", "jwk"])
def test_private_key_jwt_assertion(key: ECKey | OKPKey, alg: str, form: str) -> None:
    hub = FakeHub(client_secret=None, public_key=key, expires_in=10)  # below leeway: always renew
    private = key.as_pem(private=True) if form == "pem" else key.as_dict(private=True)
    clock = Clock()
    auth = ClientCredentials(TOKEN_URL, "dealer-1", private_key=private, clock=clock)
    with httpx.Client(base_url=BASE, auth=auth, transport=httpx.MockTransport(hub)) as http:
        assert http.get("/v1/agreements").status_code == 200
        assert http.get("/v1/agreements").status_code == 200
    assert len(hub.assertions) == 2
    jtis = set()
    for seen in hub.assertions:
        claims, header, form_data = seen["claims"], seen["header"], seen["form"]
        assert header["alg"] == alg
        assert claims["iss"] == claims["sub"] == "dealer-1"
        assert claims["aud"] == TOKEN_URL
        assert claims["iat"] == int(clock.now)
        assert 0 < claims["exp"] - claims["iat"] <= 300
        assert form_data["client_assertion_type"] == (
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        )
        assert "Authorization" not in hub.requests[0].headers
        jtis.add(claims["jti"])
    assert len(jtis) == 2


def test_exactly_one_credential() -> None:
    with pytest.raises(ValueError):
        ClientCredentials(TOKEN_URL, "x")
    with pytest.raises(ValueError):
        ClientCredentials(
            TOKEN_URL, "x", client_secret="s", private_key=OKPKey.generate_key("Ed25519")
        )


def test_public_key_is_refused() -> None:
    key = ECKey.generate_key("P-256")
    with pytest.raises(ValueError):
        ClientCredentials(TOKEN_URL, "x", private_key=key.as_dict(private=False))


def test_assertion_kid_matches_a_registered_kid() -> None:
    key = OKPKey.generate_key("Ed25519")
    hub = FakeHub(client_secret=None, public_key=key, public_key_params={"kid": "partner-1"})
    jwk = key.as_dict(private=True) | {"kid": "partner-1"}
    with HubClient(BASE, "dealer-1", private_key=jwk, transport=httpx.MockTransport(hub)) as client:
        assert client.list_agreements()
    assert hub.assertions[0]["header"]["kid"] == "partner-1"
