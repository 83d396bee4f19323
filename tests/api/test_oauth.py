"""The token endpoint and the checks on every access token."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, OKPKey

from hub.registry.models import Partner, PartnerStatus
from tests.support.hub import TEST_ISSUER, HubEnv


def test_metadata_and_jwks_describe_the_server(hub: HubEnv) -> None:
    meta = hub.client.get("/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == TEST_ISSUER
    assert meta["token_endpoint"] == TEST_ISSUER + "/oauth/token"
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]
    keys = hub.client.get("/.well-known/jwks.json").json()["keys"]
    assert keys and all("d" not in k for k in keys), "the JWKS must never carry private parts"


def test_client_credentials_issue_a_short_lived_jwt(hub: HubEnv) -> None:
    response = hub.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "records:pull"},
        headers={"Authorization": hub.basic_auth("lender-jinqiao")},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"].lower() == "bearer"
    assert body["scope"] == "records:pull"
    assert 0 < body["expires_in"] <= 3600
    header = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[0] + "=="))
    assert header == {"alg": "Ed25519", "typ": "at+jwt", "kid": header["kid"]}


def test_scope_is_cut_to_what_the_partner_may_have(hub: HubEnv) -> None:
    response = hub.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "records:pull admin"},
        headers={"Authorization": hub.basic_auth("lender-jinqiao")},
    )
    assert response.status_code == 200
    assert "admin" not in response.json()["scope"].split()


@pytest.mark.parametrize(
    ("auth", "form", "error"),
    [
        ("wrong-secret", {"grant_type": "client_credentials"}, "invalid_client"),
        ("unknown-client", {"grant_type": "client_credentials"}, "invalid_client"),
        ("none", {"grant_type": "client_credentials"}, "invalid_client"),
        ("good", {"grant_type": "password"}, "unsupported_grant_type"),
        ("good", {}, "unsupported_grant_type"),
    ],
)
def test_bad_token_requests_are_refused(
    hub: HubEnv, auth: str, form: dict[str, str], error: str
) -> None:
    partner = hub.partner("lender-jinqiao")
    headers = {
        "good": {"Authorization": hub.basic_auth("lender-jinqiao")},
        "wrong-secret": {
            "Authorization": "Basic "
            + base64.b64encode(f"{partner['client_id']}:nope".encode()).decode()
        },
        "unknown-client": {"Authorization": "Basic " + base64.b64encode(b"ghost:secret").decode()},
        "none": {},
    }[auth]
    response = hub.client.post("/oauth/token", data=form, headers=headers)
    assert response.status_code in (400, 401)
    assert response.json()["error"] == error


def _forge(claims: dict[str, object], key: OKPKey | OctKey, alg: str, typ: str = "at+jwt") -> str:
    return jwt.encode({"alg": alg, "typ": typ}, claims, key, algorithms=[alg])


def _claims(hub: HubEnv, **overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": TEST_ISSUER,
        "aud": TEST_ISSUER,
        "sub": hub.partner("lender-jinqiao")["client_id"],
        "client_id": hub.partner("lender-jinqiao")["client_id"],
        "scope": "records:pull",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return claims


def _alg_none(claims: dict[str, object]) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = json.dumps({"alg": "none", "typ": "at+jwt"}).encode()
    return f"{b64(header)}.{b64(json.dumps(claims).encode())}."


@pytest.mark.parametrize(
    "case",
    ["missing", "malformed", "expired", "wrong_issuer", "wrong_audience", "alg_none",
     "hs256_with_public_key", "foreign_key", "not_an_access_token", "basic_scheme"],
)  # fmt: skip
def test_bad_access_tokens_get_401_problem(hub: HubEnv, case: str) -> None:
    signing = hub.runtime.signing_keys.private_key
    foreign = OKPKey.generate_key("Ed25519")
    public_bytes = json.dumps(hub.runtime.signing_keys.public_jwks()["keys"][0]).encode()
    tokens = {
        "missing": None,
        "malformed": "not.a.jwt",
        "expired": _forge(_claims(hub, exp=int(time.time()) - 120), signing, "Ed25519"),
        "wrong_issuer": _forge(_claims(hub, iss="https://evil.example"), signing, "Ed25519"),
        "wrong_audience": _forge(_claims(hub, aud="someone-else"), signing, "Ed25519"),
        "alg_none": _alg_none(_claims(hub)),
        "hs256_with_public_key": _forge(_claims(hub), OctKey.import_key(public_bytes), "HS256"),
        "foreign_key": _forge(_claims(hub), foreign, "Ed25519"),
        "not_an_access_token": _forge(_claims(hub), signing, "Ed25519", typ="JWT"),
        "basic_scheme": "basic",
    }
    token = tokens[case]
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    if case == "basic_scheme":
        headers = {"Authorization": hub.basic_auth("lender-jinqiao")}
    response = hub.client.get("/v1/agreements", headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/unauthorized")
    assert "WWW-Authenticate" in response.headers


def test_token_in_query_string_is_not_accepted(hub: HubEnv) -> None:
    token = hub.token("lender-jinqiao")
    response = hub.client.get(f"/v1/agreements?access_token={token}")
    assert response.status_code == 401


def test_wrong_scope_is_403(hub: HubEnv) -> None:
    response = hub.client.get(
        "/v1/audit/events", headers=hub.auth("lender-jinqiao", "records:pull")
    )
    assert response.status_code == 403
    assert response.json()["type"].endswith("/insufficient-scope")


def _register_jwks(hub: HubEnv, ref: str, key: OKPKey) -> None:
    with hub.session() as session:
        partner = session.get(Partner, hub.partner(ref)["partner_id"])
        assert partner is not None
        partner.jwks = {"keys": [key.as_dict(private=False)]}
        session.commit()


def _assertion(hub: HubEnv, client_id: str, key: OKPKey, **overrides: object) -> str:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": client_id,
        "sub": client_id,
        "aud": TEST_ISSUER + "/oauth/token",
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return jwt.encode({"alg": "Ed25519"}, claims, key, algorithms=["Ed25519"])


def _token_with_assertion(hub: HubEnv, assertion: str) -> tuple[int, dict[str, object]]:
    response = hub.client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )
    return response.status_code, response.json()


def test_private_key_jwt_works_once_per_assertion(hub: HubEnv) -> None:
    key = OKPKey.generate_key("Ed25519", private=True)
    _register_jwks(hub, "lender-pearl", key)
    client_id = hub.partner("lender-pearl")["client_id"]
    assertion = _assertion(hub, client_id, key)
    status, body = _token_with_assertion(hub, assertion)
    assert status == 200, body
    status, body = _token_with_assertion(hub, assertion)
    assert status in (400, 401), "a replayed jti must be refused"
    assert body["error"] == "invalid_client"


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "https://elsewhere.example/token"},
        {"aud": [TEST_ISSUER + "/oauth/token", "other"]},
        {"iat": int(time.time()) + 3600},
        {"exp": int(time.time()) - 300},
        {"sub": "someone-else"},
    ],
)
def test_private_key_jwt_bad_claims_are_refused(hub: HubEnv, overrides: dict[str, object]) -> None:
    key = OKPKey.generate_key("Ed25519", private=True)
    _register_jwks(hub, "lender-pearl", key)
    client_id = hub.partner("lender-pearl")["client_id"]
    status, body = _token_with_assertion(hub, _assertion(hub, client_id, key, **overrides))
    assert status in (400, 401)
    assert body["error"] == "invalid_client"


def test_suspending_a_partner_stops_its_tokens_at_once(hub: HubEnv) -> None:
    headers = hub.auth("dealer-nanfang")
    assert hub.client.get("/v1/agreements", headers=headers).status_code == 200
    with hub.session() as session:
        partner = session.get(Partner, hub.partner("dealer-nanfang")["partner_id"])
        assert partner is not None
        partner.status = PartnerStatus.SUSPENDED
        session.commit()
    try:
        assert hub.client.get("/v1/agreements", headers=headers).status_code == 401
    finally:
        with hub.session() as session:
            partner = session.get(Partner, hub.partner("dealer-nanfang")["partner_id"])
            assert partner is not None
            partner.status = PartnerStatus.ACTIVE
            session.commit()
