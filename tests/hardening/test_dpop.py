"""Stolen tokens: DPoP (RFC 9449) sender-constrained access tokens.

A token bound to a key (``cnf.jkt``) works only with a fresh proof signed by that key, for
this method and URL, carrying the token's hash; a partner registered as ``dpop_required`` gets
no token without a proof, and its bearer tokens stop. Every refusal is a 401 problem+json with
``WWW-Authenticate: DPoP ... error="invalid_dpop_proof"`` (or ``invalid_token`` for a token
under the wrong scheme); at the token endpoint, RFC 9449's 400 ``invalid_dpop_proof``. Only
PS256, ES256 and Ed25519 are accepted, for proofs and client assertions alike (FAPI 2.0).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey
from sqlalchemy import select

from hub.auth.algorithms import fapi_registry
from hub.auth.models import UsedAssertion
from hub.registry.models import Partner
from tests.support.hub import TEST_ISSUER, HubEnv

LENDER = "lender-jinqiao"
AGREEMENTS = "/v1/agreements"
TOKEN_URL = TEST_ISSUER + "/oauth/token"
AnyKey = OKPKey | ECKey | RSAKey


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _ath(token: str) -> str:
    return _b64(hashlib.sha256(token.encode()).digest())


def _alg(key: AnyKey) -> str:
    if isinstance(key, OKPKey):
        return "Ed25519"
    return "ES256" if isinstance(key, ECKey) else "PS256"


def proof(
    key: AnyKey,
    *,
    htm: str = "GET",
    htu: str = TEST_ISSUER + AGREEMENTS,
    token: str | None = None,
    alg: str | None = None,
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """A DPoP proof; ``claims`` override (None removes) the defaults."""
    body: dict[str, Any] = {
        "jti": uuid.uuid4().hex,
        "htm": htm,
        "htu": htu,
        "iat": int(time.time()),
    }
    if token is not None:
        body["ath"] = _ath(token)
    for name, value in claims.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    alg = alg or _alg(key)
    head = {"typ": "dpop+jwt", "alg": alg, "jwk": key.as_dict(private=False), **(header or {})}
    return jwt.encode(head, body, key, algorithms=[alg], registry=fapi_registry(alg))


def _unsigned(head: dict[str, Any], body: dict[str, Any], signature: bytes = b"") -> str:
    parts = [json.dumps(head).encode(), json.dumps(body).encode()]
    return ".".join([*(_b64(p) for p in parts), _b64(signature)])


def dpop_token(hub: HubEnv, key: AnyKey, ref: str = LENDER) -> str:
    response = hub.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={
            "Authorization": hub.basic_auth(ref),
            "DPoP": proof(key, htm="POST", htu=TOKEN_URL),
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    token: str = body["access_token"]
    return token


def _get(hub: HubEnv, token: str, dpop: str | list[str] | None, scheme: str = "DPoP") -> Any:
    headers: list[tuple[str, str]] = [("Authorization", f"{scheme} {token}")]
    for value in [dpop] if isinstance(dpop, str) else dpop or []:
        headers.append(("DPoP", value))
    return hub.client.get(AGREEMENTS, headers=headers)


def assert_dpop_refused(response: Any, error: str = "invalid_dpop_proof") -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("DPoP ") and f'error="{error}"' in challenge, challenge
    assert response.json()["status"] == 401


@pytest.fixture(scope="module")
def key() -> OKPKey:
    return OKPKey.generate_key("Ed25519", private=True)


@pytest.fixture(scope="module")
def token(hub: HubEnv, key: OKPKey) -> str:
    return dpop_token(hub, key)


# -- the happy paths ----------------------------------------------------------------------------


def test_a_proof_at_the_token_endpoint_binds_the_token_to_the_key(
    hub: HubEnv, key: OKPKey, token: str
) -> None:
    claims = jwt.decode(token, hub.runtime.signing_keys.public_key_set, algorithms=["Ed25519"])
    assert claims.claims["cnf"] == {"jkt": key.thumbprint()}
    response = _get(hub, token, proof(key, token=token))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "make_key",
    [
        lambda: ECKey.generate_key("P-256", private=True),
        lambda: RSAKey.generate_key(2048, private=True),
        lambda: OKPKey.generate_key("Ed25519", private=True),
    ],
    ids=["ES256", "PS256", "Ed25519"],
)
def test_every_fapi_algorithm_works(hub: HubEnv, make_key: Any) -> None:
    key = make_key()
    token = dpop_token(hub, key)
    assert _get(hub, token, proof(key, token=token)).status_code == 200


def test_eddsa_is_the_old_name_of_ed25519(hub: HubEnv) -> None:
    key = OKPKey.generate_key("Ed25519", private=True)
    token = dpop_token(hub, key)
    assert _get(hub, token, proof(key, token=token, alg="EdDSA")).status_code == 200


def test_the_htu_is_compared_without_query_and_with_default_port(
    hub: HubEnv, key: OKPKey, token: str
) -> None:
    for htu in (
        TEST_ISSUER + AGREEMENTS + "?limit=3#x",
        "HTTP://TESTSERVER:80" + AGREEMENTS,
    ):
        assert _get(hub, token, proof(key, token=token, htu=htu)).status_code == 200, htu


# -- stolen and misused tokens ------------------------------------------------------------------


def test_a_bound_token_presented_as_bearer_is_refused(hub: HubEnv, token: str) -> None:
    assert_dpop_refused(_get(hub, token, None, scheme="Bearer"), "invalid_token")


def test_a_bound_token_without_a_proof_is_refused(hub: HubEnv, token: str) -> None:
    assert_dpop_refused(_get(hub, token, None))


def test_a_bearer_token_presented_as_dpop_is_refused(hub: HubEnv, key: OKPKey) -> None:
    bearer = hub.token(LENDER)
    assert_dpop_refused(_get(hub, bearer, proof(key, token=bearer)), "invalid_token")


def test_a_proof_from_another_key_is_refused(hub: HubEnv, token: str) -> None:
    thief = OKPKey.generate_key("Ed25519", private=True)
    assert_dpop_refused(_get(hub, token, proof(thief, token=token)))


def test_two_proofs_are_refused(hub: HubEnv, key: OKPKey, token: str) -> None:
    assert_dpop_refused(_get(hub, token, [proof(key, token=token), proof(key, token=token)]))


def test_a_replayed_proof_is_refused(hub: HubEnv, key: OKPKey, token: str) -> None:
    once = proof(key, token=token)
    assert _get(hub, token, once).status_code == 200
    assert_dpop_refused(_get(hub, token, once))


def test_a_proof_replayed_concurrently_is_used_once(hub: HubEnv, key: OKPKey, token: str) -> None:
    once = proof(key, token=token)
    with ThreadPoolExecutor(4) as pool:
        statuses = sorted(pool.map(lambda _: _get(hub, token, once).status_code, range(4)))
    assert statuses.count(200) == 1, statuses
    assert all(s in (200, 401, 503) for s in statuses), statuses


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        # a pull route (single-hop: one thread-pool call): the query fails after the caller
        ("/v1/agreements/{agreement}/records?limit=many", 422),
        # an ordinary route: a 404 problem, its transaction rolled back
        ("/v1/agreements/agr_no_such_agreement", 404),
    ],
)
def test_a_proof_of_a_failed_request_cannot_be_replayed(
    hub: HubEnv, key: OKPKey, token: str, monkeypatch: pytest.MonkeyPatch, path: str, refused: int
) -> None:
    # With no rate limit to commit the request's transaction early, only the proof check itself
    # can keep the id: a request that fails after the check rolls back everything else.
    monkeypatch.setattr(hub.runtime.rate_limiter, "enabled", False)
    url = path.format(agreement=hub.partner(LENDER)["agreements"][0]["id"])
    once = proof(key, token=token, htu=TEST_ISSUER + url.partition("?")[0])
    headers = {"Authorization": f"DPoP {token}", "DPoP": once}
    first = hub.client.get(url, headers=headers)
    assert first.status_code == refused, first.text
    assert_dpop_refused(hub.client.get(url, headers=headers))


def _bad_proofs(key: OKPKey, token: str) -> dict[str, str]:
    now = int(time.time())
    other_key = OKPKey.generate_key("Ed25519", private=True)
    hs_key = OctKey.generate_key(256)
    base = {"jti": uuid.uuid4().hex, "htm": "GET", "htu": TEST_ISSUER + AGREEMENTS, "iat": now}
    base["ath"] = _ath(token)
    public = key.as_dict(private=False)
    return {
        "wrong htm": proof(key, token=token, htm="POST"),
        "wrong htu path": proof(key, token=token, htu=TEST_ISSUER + "/v1/datasets"),
        "wrong htu host": proof(key, token=token, htu="http://evil.example" + AGREEMENTS),
        "wrong htu scheme": proof(key, token=token, htu="https://testserver" + AGREEMENTS),
        "htu not a URL": proof(key, token=token, htu="not a url"),
        "ath mismatch": proof(key, token=token, ath=_ath(token + "x")),
        "ath missing": proof(key, token=token, ath=None),
        "stale iat": proof(key, token=token, iat=now - 300),
        "future iat": proof(key, token=token, iat=now + 300),
        "iat missing": proof(key, token=token, iat=None),
        "iat a string": proof(key, token=token, iat=str(now)),
        "jti missing": proof(key, token=token, jti=None),
        "jti too long": proof(key, token=token, jti="j" * 201),
        "typ JWT": proof(key, token=token, header={"typ": "JWT"}),
        "alg none": _unsigned({"typ": "dpop+jwt", "alg": "none", "jwk": public}, base),
        "HS256 with the public key as secret": jwt.encode(
            {"typ": "dpop+jwt", "alg": "HS256", "jwk": public},
            base,
            OctKey.import_key(json.dumps(public).encode()),
            algorithms=["HS256"],
        ),
        "HS256 with an oct jwk": jwt.encode(
            {"typ": "dpop+jwt", "alg": "HS256", "jwk": hs_key.as_dict()},
            base,
            hs_key,
            algorithms=["HS256"],
        ),
        "RS256 (not FAPI)": _rs256(base),
        "ES256 with an Ed25519 key": _unsigned(
            {"typ": "dpop+jwt", "alg": "ES256", "jwk": public}, base, b"x" * 64
        ),
        "PS256 with a 1024-bit key": _small_rsa(base),
        "private key in the header": proof(
            key, token=token, header={"jwk": key.as_dict(private=True)}
        ),
        "jwk of another key": proof(
            key, token=token, header={"jwk": other_key.as_dict(private=False)}
        ),
        "no jwk": _unsigned({"typ": "dpop+jwt", "alg": "Ed25519"}, base, b"x" * 64),
        "bad signature": proof(key, token=token)[:-4] + "AAAA",
        "not a JWT": "not-a-jwt",
        "two segments": "e30.e30",
        "garbage base64": "!!!.???.***",
        "claims empty": _unsigned({"typ": "dpop+jwt", "alg": "Ed25519", "jwk": public}, {}),
        "huge": "a" * 20_000,
    }


def _rs256(claims: dict[str, Any]) -> str:
    rsa = RSAKey.generate_key(2048, private=True)
    head = {"typ": "dpop+jwt", "alg": "RS256", "jwk": rsa.as_dict(private=False)}
    return jwt.encode(head, claims, rsa, algorithms=["RS256"])


def _small_rsa(claims: dict[str, Any]) -> str:
    # Built by hand: joserfc refuses (warns about) keys under 2048 bits.
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    numbers = private.public_key().public_numbers()
    jwk = {"kty": "RSA", "n": _b64(numbers.n.to_bytes(128, "big")), "e": _b64(b"\x01\x00\x01")}
    head = {"typ": "dpop+jwt", "alg": "PS256", "jwk": jwk}
    signing_input = ".".join(_b64(json.dumps(p).encode()) for p in (head, claims))
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    signature = private.sign(signing_input.encode(), pss, hashes.SHA256())
    return signing_input + "." + _b64(signature)


def test_bad_proofs_are_refused_with_401_problem(hub: HubEnv, key: OKPKey, token: str) -> None:
    for case, bad in _bad_proofs(key, token).items():
        response = _get(hub, token, bad)
        assert response.status_code == 401, (case, response.text)
        assert_dpop_refused(response)
    # ... and none of them spent the token: a good proof still works.
    assert _get(hub, token, proof(key, token=token)).status_code == 200


# -- the token endpoint -------------------------------------------------------------------------


def _token_request(hub: HubEnv, dpop: list[str], ref: str = LENDER) -> Any:
    headers = [("Authorization", hub.basic_auth(ref)), *(("DPoP", d) for d in dpop)]
    return hub.client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=headers
    )


def test_bad_proofs_at_the_token_endpoint_are_400_invalid_dpop_proof(
    hub: HubEnv, key: OKPKey
) -> None:
    cases = {
        "wrong htm": proof(key, htm="GET", htu=TOKEN_URL),
        "wrong htu": proof(key, htm="POST", htu=TEST_ISSUER + AGREEMENTS),
        "stale": proof(key, htm="POST", htu=TOKEN_URL, iat=int(time.time()) - 600),
        "HS256": _bad_proofs(key, "t")["HS256 with an oct jwk"],
        "alg none": _bad_proofs(key, "t")["alg none"],
    }
    for case, bad in cases.items():
        response = _token_request(hub, [bad])
        assert response.status_code == 400, (case, response.text)
        assert response.json()["error"] == "invalid_dpop_proof", case
    two = [proof(key, htm="POST", htu=TOKEN_URL), proof(key, htm="POST", htu=TOKEN_URL)]
    assert _token_request(hub, two).json()["error"] == "invalid_dpop_proof"


def test_a_proof_replayed_at_the_token_endpoint_is_refused(hub: HubEnv, key: OKPKey) -> None:
    once = proof(key, htm="POST", htu=TOKEN_URL)
    assert _token_request(hub, [once]).status_code == 200
    response = _token_request(hub, [once])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_dpop_proof"


def test_a_proof_never_rescues_bad_client_credentials(hub: HubEnv, key: OKPKey) -> None:
    response = hub.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(hub.partner(LENDER)["client_id"], "wrong"),
        headers={"DPoP": proof(key, htm="POST", htu=TOKEN_URL)},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


# -- required per partner -----------------------------------------------------------------------


def _set_required(hub: HubEnv, ref: str, required: bool) -> dict[str, Any]:
    partner_id = hub.partner(ref)["partner_id"]
    response = hub.client.put(
        f"/v1/partners/{partner_id}/dpop",
        json={"required": required, "reason": "stolen-token drill"},
        headers=hub.auth("operator"),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_dpop_required_partner_gets_no_token_without_a_proof(hub: HubEnv) -> None:
    ref = "insurer-anxin"
    bearer = hub.token(ref)
    assert hub.client.get(AGREEMENTS, headers=hub.auth(ref)).status_code == 200
    assert _set_required(hub, ref, True)["dpop_required"] is True
    try:
        response = _token_request(hub, [], ref=ref)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_dpop_proof"
        # The bearer token issued before the requirement stops at once.
        assert_dpop_refused(_get(hub, bearer, None, scheme="Bearer"), "invalid_token")
        key = ECKey.generate_key("P-256", private=True)
        token = dpop_token(hub, key, ref=ref)
        assert _get(hub, token, proof(key, token=token)).status_code == 200
        events = hub.client.get(
            f"/v1/partners/{hub.partner(ref)['partner_id']}/events", headers=hub.auth("operator")
        ).json()["items"]
        assert "dpop_required" in [e["event"] for e in events]
    finally:
        assert _set_required(hub, ref, False)["dpop_required"] is False
    assert _token_request(hub, [], ref=ref).status_code == 200


def test_the_setting_is_validated(hub: HubEnv) -> None:
    partner_id = hub.partner(LENDER)["partner_id"]
    for body in ({}, {"required": "maybe"}, {"required": True, "status": "active"}):
        response = hub.client.put(
            f"/v1/partners/{partner_id}/dpop", json=body, headers=hub.auth("operator")
        )
        assert response.status_code == 422, body
    response = hub.client.put(
        "/v1/partners/ptn_missing/dpop", json={"required": True}, headers=hub.auth("operator")
    )
    assert response.status_code == 404
    response = hub.client.put(
        f"/v1/partners/{partner_id}/dpop", json={"required": True}, headers=hub.auth(LENDER)
    )
    assert response.status_code == 403


# -- client assertions: FAPI algorithms only ----------------------------------------------------


def _register_jwks(hub: HubEnv, ref: str, *keys: Any) -> None:
    with hub.session() as session:
        partner = session.get(Partner, hub.partner(ref)["partner_id"])
        assert partner is not None
        partner.jwks = {"keys": [k.as_dict(private=False) for k in keys]}
        session.commit()


def _assertion(client_id: str, key: Any, alg: str) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "iat": now,
              "exp": now + 120, "jti": uuid.uuid4().hex}  # fmt: skip
    head = {"alg": alg, "kid": key.kid}
    if alg in ("Ed25519", "EdDSA", "ES256", "PS256"):
        return jwt.encode(head, claims, key, algorithms=[alg], registry=fapi_registry(alg))
    return jwt.encode(head, claims, key, algorithms=[alg])


def _with_assertion(hub: HubEnv, assertion: str) -> Any:
    return hub.client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )


def test_client_assertions_accept_only_fapi_algorithms(hub: HubEnv) -> None:
    ref = "lender-pearl"
    client_id = hub.partner(ref)["client_id"]
    ed = OKPKey.generate_key("Ed25519", private=True, auto_kid=True)
    ec = ECKey.generate_key("P-256", private=True, auto_kid=True)
    ps = RSAKey.generate_key(2048, private=True, auto_kid=True)
    ed448 = OKPKey.generate_key("Ed448", private=True, auto_kid=True)
    p384 = ECKey.generate_key("P-384", private=True, auto_kid=True)
    _register_jwks(hub, ref, ed, ec, ps, ed448, p384)
    for key, alg in ((ed, "Ed25519"), (ed, "EdDSA"), (ec, "ES256"), (ps, "PS256")):
        response = _with_assertion(hub, _assertion(client_id, key, alg))
        assert response.status_code == 200, (alg, response.text)
    for key, alg in (
        (ed448, "EdDSA"),
        (ed448, "Ed448"),
        (p384, "ES384"),
        (ps, "RS256"),
    ):
        response = _with_assertion(hub, _assertion(client_id, key, alg))
        assert response.status_code in (400, 401), (alg, response.text)
        assert response.json()["error"] == "invalid_client", alg
    meta = hub.client.get("/.well-known/oauth-authorization-server").json()
    assert set(meta["token_endpoint_auth_signing_alg_values_supported"]) <= {
        "PS256", "ES256", "Ed25519", "EdDSA"
    }  # fmt: skip


def test_expired_proof_ids_are_purged(hub: HubEnv) -> None:
    server = hub.runtime.authorization_server
    old, fresh = uuid.uuid4().hex, uuid.uuid4().hex
    assert server.remember_assertion("dpop:purge-test", old, time.time() - 3600)
    assert server.remember_assertion("dpop:purge-test", fresh, time.time() + 3600)
    server.purge_used_assertions()  # (token requests also purge, now and then)
    with hub.session() as session:
        left = set(
            session.scalars(
                select(UsedAssertion.jti).where(UsedAssertion.client_id == "dpop:purge-test")
            )
        )
    assert left == {fresh}
