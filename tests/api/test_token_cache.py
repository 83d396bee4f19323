"""The verified-token cache skips only the signature check: every other check still runs."""

from __future__ import annotations

import time

import pytest
from joserfc.jwk import KeySet, OKPKey

from hub.auth.tokens import _VerifiedTokens
from tests.support.hub import HubEnv


def test_an_expired_token_is_refused_after_its_signature_was_cached(
    hub: HubEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = hub.auth("dealer-nanfang")
    assert hub.client.get("/v1/agreements", headers=headers).status_code == 200
    assert hub.client.get("/v1/agreements", headers=headers).status_code == 200  # a hit
    claims = hub.runtime.token_verifier._claims
    monkeypatch.setattr(claims, "_now", lambda: int(time.time()) + 7 * 24 * 3600)
    assert hub.client.get("/v1/agreements", headers=headers).status_code == 401


def test_a_token_issued_in_the_future_is_refused_after_its_signature_was_cached(
    hub: HubEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = hub.auth("dealer-huadong")
    assert hub.client.get("/v1/agreements", headers=headers).status_code == 200
    assert hub.client.get("/v1/agreements", headers=headers).status_code == 200  # a hit
    claims = hub.runtime.token_verifier._claims
    monkeypatch.setattr(claims, "_now", lambda: int(time.time()) - 3600)  # before its iat
    assert hub.client.get("/v1/agreements", headers=headers).status_code == 401


def test_a_token_that_differs_in_any_byte_is_verified_again(hub: HubEnv) -> None:
    token = hub.token("dealer-nanfang")
    assert hub.client.get("/v1/agreements", headers={"Authorization": f"Bearer {token}"}).is_success
    header, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    for forged in (f"{header}.{payload}.{flipped}", f"{header}.{payload[:-1]}x.{signature}"):
        response = hub.client.get("/v1/agreements", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401


def test_entries_are_bound_to_the_key_set_and_bounded() -> None:
    cache = _VerifiedTokens(max_entries=2)
    keys = KeySet([OKPKey.generate_key("Ed25519")])
    other = KeySet([OKPKey.generate_key("Ed25519")])
    cache.put("a", keys, {"sub": "a"})
    assert cache.get("a", keys) == {"sub": "a"}
    assert cache.get("a", other) is None
    cache.put("b", keys, {"sub": "b"})
    cache.put("c", keys, {"sub": "c"})
    assert cache.get("a", keys) is None
    assert cache.get("c", keys) == {"sub": "c"}
