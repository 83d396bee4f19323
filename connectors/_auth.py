"""OAuth 2.0 client credentials as an ``httpx.Auth`` flow.

The flow fetches a token from the hub's token endpoint when it has none or the one it has expires
within ``leeway`` seconds, adds it as a Bearer token, and on a 401 fetches a new one and retries
once. Being a generator of requests, it runs unchanged under ``httpx.Client`` and
``httpx.AsyncClient``.

Client authentication: ``client_secret_basic`` (RFC 6749 2.3.1) or ``private_key_jwt``
(RFC 7523), the assertion signed with Ed25519 or ES256 by joserfc.

Authlib's httpx integration is not used: importing it in Authlib 1.9 raises a deprecation warning
(it wants ``httpx2``), which our ``filterwarnings = error`` turns into a failure, and the flow is
small enough to own.
"""

from __future__ import annotations

import base64
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
# Answers from the token endpoint that the client's retry policy handles rather than the flow.
_PASS_THROUGH = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires_at: float
    scope: str | None


class ClientCredentials(httpx.Auth):
    """OAuth 2.0 client credentials grant, with ``client_secret`` or ``private_key`` (PEM/JWK)."""

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
            response = yield self.token_request()
            if not self._accept(response):
                return  # a retryable answer: the client's retry policy sees it
            fresh = True
        assert self._token is not None
        request.headers["Authorization"] = f"Bearer {self._token.value}"
        response = yield request
        if response.status_code != 401 or fresh:
            return
        self.invalidate()
        token_response = yield self.token_request()
        if not self._accept(token_response):
            return
        request.headers["Authorization"] = f"Bearer {self._token.value}"
        yield request

    def _valid(self) -> bool:
        return self._token is not None and self._clock() < self._token.expires_at - self.leeway

    def token_request(self) -> httpx.Request:
        """The token request, client authentication included."""
        form = {"grant_type": "client_credentials"}
        if self.scopes:
            form["scope"] = " ".join(self.scopes)
        headers = {"Accept": "application/json"}
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
        if token_type.lower() != "bearer":
            raise DecodeError(f"unsupported token_type {token_type!r}")
        if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
            raise DecodeError("token response with a non-numeric expires_in")
        scope = body.get("scope")
        self._token = _Token(
            token, self._clock() + expires_in, scope if isinstance(scope, str) else None
        )
        return True
