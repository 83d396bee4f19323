"""Partner keys by JWKS URL: fetched safely, cached, refreshed on an unknown kid; never from
loopback, private or reserved addresses unless the setting allows it (tests only)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OKPKey

from hub.registry.errors import JwksFetchError, UnsafeUrlError
from hub.registry.jwks import JwksFetcher, PartnerKeyResolver
from hub.registry.netguard import check_url
from hub.registry.settings import RegistrySettings
from hub.store.base import utcnow
from tests.registry.support import admin, new_partner
from tests.support.hub import TEST_ISSUER, HubEnv


class KeyServer:
    """A loopback HTTP server that serves a JWKS (and misbehaves on request)."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.hits += 1
                if self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "http://169.254.169.254/latest")
                    self.end_headers()
                    return
                if self.path == "/huge":
                    body = b'{"keys": [' + b" " * 200_000 + b"]}"
                else:
                    body = json.dumps(server.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def publish(self, *keys: OKPKey) -> None:
        self.document = {"keys": [k.as_dict(private=False) for k in keys]}


@pytest.fixture(scope="module")
def keyserver() -> Iterator[KeyServer]:
    server = KeyServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def private_ok(hub: HubEnv) -> Iterator[JwksFetcher]:
    fetcher = JwksFetcher(RegistrySettings(allow_private_networks=True, jwks_min_refresh_seconds=0))
    previous = hub.runtime.authorization_server.jwks_fetcher
    hub.runtime.authorization_server.jwks_fetcher = fetcher
    yield fetcher
    hub.runtime.authorization_server.jwks_fetcher = previous


def _key() -> OKPKey:
    return OKPKey.generate_key("Ed25519", private=True, auto_kid=True)


def _token_with(hub: HubEnv, client_id: str, key: OKPKey) -> Any:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": TEST_ISSUER + "/oauth/token",
              "iat": now, "exp": now + 120, "jti": uuid.uuid4().hex}  # fmt: skip
    assertion = jwt.encode({"alg": "Ed25519", "kid": key.kid}, claims, key, algorithms=["Ed25519"])
    return hub.client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )


def test_jwks_url_on_a_private_address_is_refused(hub: HubEnv, keyserver: KeyServer) -> None:
    keyserver.publish(_key())
    created = new_partner(hub)
    hits = keyserver.hits
    response = admin(
        hub, "PUT", f"/v1/partners/{created['partner']['id']}/keys",
        json={"jwks_uri": keyserver.url + "/jwks.json"},
    )  # fmt: skip
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith("/unsafe-url")
    assert keyserver.hits == hits, "the hub must not even connect"


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("https://keys.example/jwks", ["127.0.0.1"]),
        ("https://keys.example/jwks", ["10.1.2.3"]),
        ("https://keys.example/jwks", ["172.16.0.9"]),
        ("https://keys.example/jwks", ["192.168.1.1"]),
        ("https://keys.example/jwks", ["169.254.169.254"]),
        ("https://keys.example/jwks", ["100.64.0.1"]),
        ("https://keys.example/jwks", ["0.0.0.0"]),
        ("https://keys.example/jwks", ["::1"]),
        ("https://keys.example/jwks", ["fe80::1"]),
        ("https://keys.example/jwks", ["fd00::1"]),
        ("https://keys.example/jwks", ["::ffff:127.0.0.1"]),
        ("https://keys.example/jwks", ["240.0.0.1"]),
        ("https://keys.example/jwks", ["93.184.216.34", "10.0.0.1"]),
        ("http://keys.example/jwks", ["93.184.216.34"]),
        ("https://user:pw@keys.example/jwks", ["93.184.216.34"]),
        ("https://keys.example/jwks#frag", ["93.184.216.34"]),
        ("ftp://keys.example/jwks", ["93.184.216.34"]),
        ("https:///jwks", ["93.184.216.34"]),
        ("https://keys.example/jwks", []),
    ],
)
def test_unsafe_urls(url: str, addresses: list[str]) -> None:
    with pytest.raises(UnsafeUrlError):
        check_url(url, what="jwks_uri", allow_private=False, resolver=lambda h, p: addresses)


def test_a_public_https_url_passes_and_is_pinned() -> None:
    checked = check_url("https://keys.example:8443/j?x=1", what="jwks_uri", allow_private=False,
                        resolver=lambda h, p: ["93.184.216.34"])  # fmt: skip
    assert checked.pinned_url() == "https://93.184.216.34:8443/j?x=1"
    assert checked.host_header == "keys.example:8443"


def test_jwks_url_keys_work_and_unknown_kid_refreshes(
    hub: HubEnv, keyserver: KeyServer, private_ok: JwksFetcher
) -> None:
    first, second = _key(), _key()
    keyserver.publish(first)
    created = new_partner(hub)
    pid, cid = created["partner"]["id"], created["client_id"]
    registered = admin(hub, "PUT", f"/v1/partners/{pid}/keys",
                       json={"jwks_uri": keyserver.url + "/jwks.json"})  # fmt: skip
    assert registered.status_code == 200, registered.text
    assert registered.json()["key_ids"] == [first.kid]
    assert private_ok.fetches == 1

    assert _token_with(hub, cid, first).status_code == 200
    assert private_ok.fetches == 1, "served from the cache"

    keyserver.publish(first, second)  # the partner rotates to a new key
    assert _token_with(hub, cid, second).status_code == 200
    assert private_ok.fetches == 2, "an unknown kid refetched the JWKS once"
    assert _token_with(hub, cid, second).status_code == 200
    assert private_ok.fetches == 2

    assert _token_with(hub, cid, _key()).status_code in (400, 401)


def test_jwks_document_registration(hub: HubEnv) -> None:
    key = _key()
    created = new_partner(hub)
    pid, cid = created["partner"]["id"], created["client_id"]
    private = admin(hub, "PUT", f"/v1/partners/{pid}/keys",
                    json={"jwks": {"keys": [key.as_dict(private=True)]}})  # fmt: skip
    assert private.status_code == 422, "private key material is refused"
    both = admin(hub, "PUT", f"/v1/partners/{pid}/keys",
                 json={"jwks": {"keys": []}, "jwks_uri": "https://x.example/j"})  # fmt: skip
    assert both.status_code == 422
    ok = admin(hub, "PUT", f"/v1/partners/{pid}/keys",
               json={"jwks": {"keys": [key.as_dict(private=False)]}})  # fmt: skip
    assert ok.status_code == 200, ok.text
    assert _token_with(hub, cid, key).status_code == 200


def test_fetch_refuses_redirects_and_oversized_documents(keyserver: KeyServer) -> None:
    fetcher = JwksFetcher(RegistrySettings(allow_private_networks=True, jwks_max_bytes=4096))
    keyserver.publish(_key())
    assert fetcher.fetch(keyserver.url + "/jwks.json")["keys"]
    with pytest.raises(JwksFetchError):
        fetcher.fetch(keyserver.url + "/redirect")
    with pytest.raises(JwksFetchError):
        fetcher.fetch(keyserver.url + "/huge")


def test_fetch_checks_the_address_again(keyserver: KeyServer) -> None:
    fetcher = JwksFetcher(RegistrySettings(allow_private_networks=False))
    with pytest.raises(UnsafeUrlError):
        fetcher.fetch(keyserver.url + "/jwks.json")


class _CountingFetcher(JwksFetcher):
    def __init__(self, document: dict[str, Any], *, fail: bool = False) -> None:
        super().__init__(RegistrySettings(jwks_cache_seconds=300, jwks_min_refresh_seconds=30))
        self.document, self.fail = document, fail

    def fetch(self, url: str) -> dict[str, Any]:
        self.fetches += 1
        if self.fail:
            raise JwksFetchError("down")
        return self.document


@pytest.mark.parametrize(
    ("age", "kid", "fetches"),
    [
        (10, None, 0),  # fresh cache
        (400, None, 1),  # stale: refetched
        (10, "new", 0),  # unknown kid, but refetched moments ago
        (40, "new", 1),  # unknown kid: refetched
        (40, "old", 0),  # known kid
    ],
)
def test_cache_and_refresh_rules(hub: HubEnv, age: int, kid: str | None, fetches: int) -> None:
    cached = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "A" * 43, "kid": "old"}]}
    fresh = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "B" * 43, "kid": "new"}]}
    fetcher = _CountingFetcher(fresh)
    resolver = PartnerKeyResolver(session_factory=hub.runtime.session_factory, fetcher=fetcher)
    now = utcnow()
    document = resolver.document(
        partner_id="ptn_missing", jwks=cached, jwks_uri="https://keys.example/j",
        fetched_at=now - timedelta(seconds=age), wanted_kid=kid, now=now,
    )  # fmt: skip
    assert fetcher.fetches == fetches
    assert document == (fresh if fetches else cached)


def test_a_failed_refresh_keeps_the_last_good_keys(hub: HubEnv) -> None:
    cached = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "A" * 43, "kid": "old"}]}
    fetcher = _CountingFetcher(cached, fail=True)
    resolver = PartnerKeyResolver(session_factory=hub.runtime.session_factory, fetcher=fetcher)
    document = resolver.document(
        partner_id="ptn_missing", jwks=cached, jwks_uri="https://keys.example/j",
        fetched_at=None, wanted_kid="old",
    )  # fmt: skip
    assert fetcher.fetches == 1 and document == cached
