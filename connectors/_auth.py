"""OAuth 2.0 client credentials as an ``httpx.Auth`` flow.

The flow fetches a token from the hub's token endpoint when it has none or the one it has expires
within ``leeway`` seconds, adds it as a Bearer token, and on a 401 fetches a new one and retries
once. Being a generator of requests, it runs unchanged under ``httpx.Client`` and
``httpx.AsyncClient``.

Client authentication: ``client_secret_basic`` (RFC 6749 2.3.1) or ``private_key_jwt``
(RFC 7523), the assertion signed with Ed25519 or ES256 by joserfc.

Sender-constrained tokens (DPoP, RFC 9449): with ``dpop_key`` every token request and every API
request carries a fresh proof signed with that key (``htm``, ``htu`` without query, ``iat``, a
unique ``jti``, and ``ath`` on API requests); the token is sent as ``Authorization: DPoP``. A
server nonce (``DPoP-Nonce``, ``use_dpop_nonce``) is remembered and the request retried once.

Authlib's httpx integration is not used: importing it in Authlib 1.9 raises a deprecation warning
(it wants ``httpx2``), which our ``filterwarnings = error`` turns into a failure, and the flow is
small enough to own.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from urllib.parse import quote

import httpx
from joserfc import jwt

from ._exceptions import DecodeError, OAuthError
from ._keys import KeyInput, PartnerKey, load_key, signing_alg

__all__ = ["ClientCredentials"]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DPOP_PROOF_TYPE = "dpop+jwt"
# Answers from the token endpoint that the client's retry policy handles rather than the flow.
_PASS_THROUGH = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires_at: float
    scope: str | None
    token_type: str = "Bearer"


class ClientCredentials(httpx.Auth):
    """OAuth 2.0 client credentials grant, with ``client_secret`` or ``private_key`` (PEM/JWK);
    with ``dpop_key`` (PEM/JWK, Ed25519 or P-256) the tokens are DPoP-bound to that key."""

    requires_response_body = True

    def __init__(
        self,
        token_url: str,
        client_id: str,
        *,
        client_secret: str | None = None,
        private_key: KeyInput | None = None,
        scopes: Iterable[str] = (),
        leeway: float = 30.0,
        assertion_lifetime: int = 120,
        clock: Callable[[], float] = time.time,
        dpop_key: KeyInput | None = None,
    ) -> None:
        if (client_secret is None) == (private_key is None):
            raise ValueError("give exactly one of client_secret and private_key")
        if not 0 < assertion_lifetime <= 300:
            raise ValueError("assertion_lifetime must be within (0, 300] seconds")
        self.token_url = token_url
        self.client_id = client_id
        self.scopes = tuple(scopes)
        self.leeway = leeway
        self.assertion_lifetime = assertion_lifetime
        self._clock = clock
        self._secret = client_secret
        self._key: PartnerKey | None = None
        self._alg = ""
        if private_key is not None:
            self._key = load_key(private_key)
            self._alg = signing_alg(self._key)
        self._token: _Token | None = None
        self._dpop_key: PartnerKey | None = None
        self._dpop_alg = ""
        self._dpop_nonce: str | None = None
        if dpop_key is not None:
            self._dpop_key = load_key(dpop_key)
            self._dpop_alg = signing_alg(self._dpop_key)

    @property
    def method(self) -> str:
        return "client_secret_basic" if self._secret is not None else "private_key_jwt"

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self.client_id!r}, method={self.method!r})"

    def invalidate(self) -> None:
        """Forget the cached token; the next request fetches a new one."""
        self._token = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        fresh = False
        if not self._valid():
            response = yield from self._fetch_token()
            if not self._accept(response):
                return  # a retryable answer: the client's retry policy sees it
            fresh = True
        self._authorize(request)
        response = yield request
        if self._nonce_wanted(response):
            self._authorize(request)
            response = yield request
        if response.status_code != 401 or fresh:
            return
        self.invalidate()
        token_response = yield from self._fetch_token()
        if not self._accept(token_response):
            return
        self._authorize(request)
        yield request

    def _fetch_token(self) -> Generator[httpx.Request, httpx.Response, httpx.Response]:
        response = yield self.token_request()
        if self._nonce_wanted(response):
            response = yield self.token_request()
        return response

    def _authorize(self, request: httpx.Request) -> None:
        assert self._token is not None
        if self._token.token_type.lower() == "dpop":
            request.headers["Authorization"] = f"DPoP {self._token.value}"
            request.headers["DPoP"] = self.dpop_proof(
                request.method, str(request.url), access_token=self._token.value
            )
        else:
            request.headers["Authorization"] = f"Bearer {self._token.value}"

    def _nonce_wanted(self, response: httpx.Response) -> bool:
        """Remember a ``DPoP-Nonce``; True if the server refused the proof for lack of it."""
        if self._dpop_key is None:
            return False
        nonce = response.headers.get("DPoP-Nonce")
        if not nonce or nonce == self._dpop_nonce:
            return False
        self._dpop_nonce = nonce
        if response.status_code == 401:
            return 'error="use_dpop_nonce"' in response.headers.get("WWW-Authenticate", "")
        if response.status_code == 400:
            try:
                body = response.json()
            except ValueError:
                return False
            return isinstance(body, dict) and body.get("error") == "use_dpop_nonce"
        return False

    def dpop_proof(self, method: str, url: str, *, access_token: str | None = None) -> str:
        """A fresh DPoP proof (RFC 9449) for ``method`` ``url``, bound to ``access_token``."""
        if self._dpop_key is None:
            raise ValueError("no dpop_key was given")
        claims: dict[str, object] = {
            "jti": uuid.uuid4().hex,
            "htm": method.upper(),
            "htu": str(httpx.URL(url).copy_with(query=None, fragment=None)),
            "iat": int(self._clock()),
        }
        if access_token is not None:
            digest = hashlib.sha256(access_token.encode()).digest()
            claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if self._dpop_nonce is not None:
            claims["nonce"] = self._dpop_nonce
        header = {
            "typ": DPOP_PROOF_TYPE,
            "alg": self._dpop_alg,
            "jwk": self._dpop_key.as_dict(private=False),
        }
        return jwt.encode(header, claims, self._dpop_key, algorithms=[self._dpop_alg])

    def _valid(self) -> bool:
        return self._token is not None and self._clock() < self._token.expires_at - self.leeway

    def token_request(self) -> httpx.Request:
        """The token request, client authentication included."""
        form = {"grant_type": "client_credentials"}
        if self.scopes:
            form["scope"] = " ".join(self.scopes)
        headers = {"Accept": "application/json"}
        if self._dpop_key is not None:
            headers["DPoP"] = self.dpop_proof("POST", self.token_url)
        if self._secret is not None:
            pair = f"{quote(self.client_id, safe='')}:{quote(self._secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"] = self.client_id
            form["client_assertion_type"] = ASSERTION_TYPE
            form["client_assertion"] = self.client_assertion()
        return httpx.Request("POST", self.token_url, data=form, headers=headers)

    def client_assertion(self) -> str:
        """A fresh RFC 7523 client assertion: iss = sub = client_id, aud = token URL."""
        assert self._key is not None
        now = int(self._clock())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_url,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + self.assertion_lifetime,
        }
        # The JWK's own kid, else its RFC 7638 thumbprint: the kid joserfc gives a registered
        # key that has none, so the hub finds the key in the partner's JWKS either way.
        header = {"alg": self._alg, "typ": "JWT", "kid": self._key.kid or self._key.thumbprint()}
        return jwt.encode(header, claims, self._key, algorithms=[self._alg])

    def _accept(self, response: httpx.Response) -> bool:
        """Store the token from a token response; False if the response is for the retry policy."""
        if response.status_code in _PASS_THROUGH:
            return False
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200:
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                raise OAuthError(body["error"], body.get("error_description"), response.status_code)
            raise OAuthError(
                "invalid_response", f"HTTP {response.status_code}", response.status_code
            )
        if not isinstance(body, dict):
            raise DecodeError("token response is not a JSON object")
        token = body.get("access_token")
        token_type = body.get("token_type", "")
        expires_in = body.get("expires_in", 300)
        if not isinstance(token, str) or not isinstance(token_type, str):
            raise DecodeError("token response without access_token")
        if token_type.lower() not in ("bearer", "dpop"):
            raise DecodeError(f"unsupported token_type {token_type!r}")
        if (token_type.lower() == "dpop") != (self._dpop_key is not None):
            raise DecodeError(f"token_type {token_type!r} does not match the DPoP setting")
        if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
            raise DecodeError("token response with a non-numeric expires_in")
        scope = body.get("scope")
        self._token = _Token(
            token,
            self._clock() + expires_in,
            scope if isinstance(scope, str) else None,
            "DPoP" if token_type.lower() == "dpop" else "Bearer",
        )
        return True
