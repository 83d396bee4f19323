"""The OAuth 2.0 token endpoint: Authlib's generic server wired to the hub's partner registry.

Only the client-credentials grant exists (partners are machines). Clients authenticate with
``client_secret_basic`` or ``private_key_jwt`` (RFC 7523); assertion ids are single-use across
every hub process because they are stored in the database. Access tokens are RFC 9068 JWTs
(``typ: at+jwt``) signed with the hub's Ed25519 key; with a DPoP proof (RFC 9449) they are bound
to the proof's key (``cnf.jkt``, ``token_type: DPoP``), and a partner registered as
``dpop_required`` gets no token without one.

Rate limits (:mod:`hub.ratelimit.token_endpoint`, when the server is given a
:class:`TokenEndpointLimiter`): a request first reserves a failure token keyed by the client id
it claims *and* its source address, and one of its source address; only once the client has
authenticated is the partner's own ``token`` bucket spent (and the reservation given back). A
stranger who knows a partner's client id can exhaust only the buckets of its own address, never
the partner's.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import orjson
from authlib.oauth2 import rfc6749
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    InvalidClientError,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from hub.auth import dpop
from hub.auth.algorithms import FAPI_ALGORITHMS, fapi_registry, keys_for
from hub.auth.keys import SIGNING_ALG, SigningKeys
from hub.auth.models import UsedAssertion
from hub.auth.secrets import client_secret_matches
from hub.ratelimit.token_endpoint import TokenAttempt, TokenEndpointLimiter
from hub.registry import service as registry
from hub.registry.jwks import JwksFetcher, PartnerKeyResolver
from hub.registry.models import Partner

#: Asymmetric algorithms accepted for client assertions (FAPI 2.0 set), each with its own key type.
ASSERTION_ALGORITHMS = list(FAPI_ALGORITHMS)
MAX_ASSERTION_IAT_SKEW_SECONDS = 60
MAX_ASSERTION_LIFETIME_SECONDS = 300
#: One token request in this many purges expired assertion and proof ids.
PURGE_ONE_IN = 20
log = logging.getLogger("tollhouse.auth")


@dataclass(frozen=True)
class PartnerClient(ClientMixin):  # type: ignore[misc]
    """A detached view of a partner's OAuth client, safe to use outside its session."""

    partner_id: str
    client_id: str
    # --- registry (issue 9): every live secret (rotation grace), keys by URL, token epoch ---
    secret_hashes: tuple[str, ...]
    jwks: Mapping[str, Any] | None
    scopes: tuple[str, ...]
    role: str
    jwks_uri: str | None = None
    jwks_fetched_at: datetime | None = None
    token_epoch: int = 0
    #: The ``kid`` the client assertion names (set while authenticating with it).
    assertion_kid: str | None = None
    #: Hardening (issue 12): tokens only with a DPoP proof; the proof's key thumbprint once given.
    dpop_required: bool = False
    dpop_jkt: str | None = None
    #: The partner's own rate limits (``partners.rate_limits``), for its token bucket.
    rate_limits: Mapping[str, Any] | None = None

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return " ".join(self.scopes)
        return " ".join(s for s in scope.split() if s in self.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        matches = [client_secret_matches(client_secret, h) for h in self.secret_hashes]
        return any(matches)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if method == "client_secret_basic":
            return bool(self.secret_hashes)
        if method == "private_key_jwt":
            return bool(self.jwks or self.jwks_uri)
        return False

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class _FormRequest(OAuth2Request):  # type: ignore[misc]
    def __init__(
        self, method: str, uri: str, headers: Mapping[str, str], form: dict[str, str]
    ) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self._form = form
        self.payload = BasicOAuth2Payload(form)
        #: The failure tokens the request reserved (None: no limits).
        self.attempt: TokenAttempt | None = None
        #: Set once the client has proved who it is (a later refusal is not a failed login).
        self.authenticated = False

    @property
    def args(self) -> dict[str, str]:
        return {}

    @property
    def form(self) -> dict[str, str]:
        return self._form


@dataclass(frozen=True)
class TokenRequest:
    """What the HTTP layer hands the token endpoint: the request as plain data."""

    method: str
    url: str
    headers: Mapping[str, str]
    form: dict[str, str]
    #: The client's network address (the ASGI client host): failure buckets are keyed by it.
    source: str | None = None


@dataclass(frozen=True)
class TokenResponse:
    status: int
    body: dict[str, Any]
    headers: list[tuple[str, str]]


class _PrivateKeyJWT(JWTBearerClientAssertion):  # type: ignore[misc]
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, server: HubAuthorizationServer) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self._server = server

    def get_audiences(self) -> list[str]:
        return [self._server.token_endpoint, self._server.issuer]

    def __call__(self, query_client: Any, request: OAuth2Request) -> Any:
        # The assertion's kid travels with the client so that a JWKS URL is refetched when
        # the partner has rotated to a key the hub has not seen yet.
        kid: str | None = None
        assertion = request.form.get("client_assertion")
        if isinstance(assertion, str):
            try:
                header = jws.extract_compact(assertion.encode()).headers()
                kid = header.get("kid") if isinstance(header.get("kid"), str) else None
            except (JoseError, ValueError, TypeError):
                kid = None

        def query(client_id: str) -> PartnerClient | None:
            client: PartnerClient | None = query_client(client_id)
            return replace(client, assertion_kid=kid) if client is not None else None

        return super().__call__(query, request)

    def resolve_client_public_key(self, client: PartnerClient) -> KeySet:
        try:
            keys = self._server.key_resolver.document(
                partner_id=client.partner_id,
                jwks=client.jwks,
                jwks_uri=client.jwks_uri,
                fetched_at=client.jwks_fetched_at,
                wanted_kid=client.assertion_kid,
            )
            document: Any = dict(keys or {"keys": []})
            return KeySet.import_key_set(document)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise InvalidClientError(
                description="The client's registered keys are unusable."
            ) from exc

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        try:
            # Only the registered keys of the kind the header's algorithm is for (FAPI 2.0).
            alg = jws.extract_compact(assertion.encode()).headers().get("alg")
            if not isinstance(alg, str) or alg not in FAPI_ALGORITHMS:
                raise InvalidClientError(description="Assertion algorithm not accepted.")
            keys = keys_for(alg, resolve_key) if isinstance(resolve_key, KeySet) else resolve_key
            token = jwt.decode(assertion, keys, algorithms=[alg], registry=fapi_registry(alg))
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidClientError(description="Invalid client assertion.") from exc
        claims = token.claims
        now = time.time()
        iat = claims.get("iat")
        if iat is not None and (
            not isinstance(iat, int | float) or iat > now + MAX_ASSERTION_IAT_SKEW_SECONDS
        ):
            raise InvalidClientError(description="Assertion 'iat' is in the future.")
        exp = claims.get("exp")
        if isinstance(exp, int | float) and exp - now > MAX_ASSERTION_LIFETIME_SECONDS + 60:
            raise InvalidClientError(description="Assertion lives too long.")
        if not isinstance(claims.get("aud"), str):
            raise InvalidClientError(description="Assertion 'aud' must be a single string.")
        self.verify_claims(claims)
        return claims

    def validate_jti(self, claims: Mapping[str, Any], jti: Any) -> bool:
        if not isinstance(jti, str) or not jti or len(jti) > 200:
            return False
        return self._server.remember_assertion(str(claims["sub"]), jti, claims.get("exp"))


class InvalidDPoPProofError(rfc6749.OAuth2Error):  # type: ignore[misc]
    """RFC 9449 5: a token request with a bad DPoP proof, or none where one is required."""

    error = "invalid_dpop_proof"
    status_code = 400


class _ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "private_key_jwt"]

    def authenticate_token_endpoint_client(self) -> PartnerClient:
        client: PartnerClient = super().authenticate_token_endpoint_client()
        server: HubAuthorizationServer = self.server
        server.client_authenticated(self.request, client)
        return client

    def validate_token_request(self) -> None:
        super().validate_token_request()
        client: PartnerClient = self.request.client
        server: HubAuthorizationServer = self.server
        jkt = server.check_dpop_proof(self.request.headers, client)
        if jkt is not None:
            self.request.client = replace(client, dpop_jkt=jkt)


class _AccessTokenGenerator(JWTBearerTokenGenerator):  # type: ignore[misc]
    """RFC 9068 access tokens for the client-credentials grant, signed with Ed25519.

    Authlib's generator signs without naming the algorithm, which joserfc refuses for Ed25519,
    so the claims are built here (the same ones Authlib would set) and signed explicitly.
    """

    def __init__(self, server: HubAuthorizationServer, ttl_seconds: int) -> None:
        super().__init__(
            issuer=server.issuer, alg=SIGNING_ALG, expires_generator=lambda *_: ttl_seconds
        )
        self._server = server
        self._ttl = ttl_seconds

    def access_token_generator(
        self, client: PartnerClient, grant_type: str, user: Any, scope: str
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": client.client_id,
            "aud": self._server.issuer,
            "client_id": client.client_id,
            "iat": now,
            "exp": now + self._ttl,
            "jti": secrets.token_urlsafe(16),
            "scope": scope,
            "partner_id": client.partner_id,
            "role": client.role,
            "epoch": client.token_epoch,
        }
        if client.dpop_jkt is not None:
            claims["cnf"] = {"jkt": client.dpop_jkt}
        header = {"alg": SIGNING_ALG, "typ": "at+jwt", "kid": self._server.signing_keys.kid}
        token: str = jwt.encode(
            header, claims, self._server.signing_keys.private_key, algorithms=[SIGNING_ALG]
        )
        return token

    def generate(
        self,
        grant_type: str,
        client: PartnerClient,
        user: Any = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        token: dict[str, Any] = super().generate(
            grant_type, client, user, scope, expires_in, include_refresh_token
        )
        if client.dpop_jkt is not None:
            token["token_type"] = dpop.TOKEN_TYPE
        return token


class HubAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib's authorization server bound to the partner table. Synchronous: run in a thread."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        signing_keys: SigningKeys,
        issuer: str,
        token_ttl_seconds: int,
        scopes_supported: list[str],
        jwks_fetcher: JwksFetcher | None = None,
        token_limiter: TokenEndpointLimiter | None = None,
    ) -> None:
        super().__init__(scopes_supported=scopes_supported)
        self.session_factory = session_factory
        self.token_limiter = token_limiter
        self.key_resolver = PartnerKeyResolver(
            session_factory=session_factory, fetcher=jwks_fetcher or JwksFetcher()
        )
        self.signing_keys = signing_keys
        self.issuer = issuer.rstrip("/")
        self.token_endpoint = self.issuer + "/oauth/token"
        self.register_grant(_ClientCredentials)
        self.register_client_auth_method("private_key_jwt", _PrivateKeyJWT(self))
        self.register_token_generator("default", _AccessTokenGenerator(self, token_ttl_seconds))

    @property
    def jwks_fetcher(self) -> JwksFetcher:
        return self.key_resolver.fetcher

    @jwks_fetcher.setter
    def jwks_fetcher(self, fetcher: JwksFetcher) -> None:
        self.key_resolver.fetcher = fetcher

    def query_client(self, client_id: str) -> PartnerClient | None:
        with self.session_factory() as session:
            view = registry.active_client(session, client_id=client_id)
            if view is None:
                return None
            partner = session.get(Partner, view.partner_id)  # loaded by active_client
            return PartnerClient(
                partner_id=view.partner_id,
                client_id=view.client_id,
                secret_hashes=view.secret_hashes,
                jwks=view.jwks,
                scopes=view.scopes,
                role=view.role,
                jwks_uri=view.jwks_uri,
                jwks_fetched_at=view.jwks_fetched_at,
                token_epoch=view.token_epoch,
                dpop_required=view.dpop_required,
                rate_limits=partner.rate_limits if partner is not None else None,
            )

    def remember_assertion(self, client_id: str, jti: str, exp: Any) -> bool:
        """Store the assertion id; False if it was used before (by any process)."""
        expires = datetime.fromtimestamp(
            float(exp) if isinstance(exp, int | float) else time.time() + 600, UTC
        )
        with self.session_factory() as session:
            session.add(UsedAssertion(client_id=client_id, jti=jti, expires_at=expires))
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                return False
        if secrets.randbelow(PURGE_ONE_IN) == 0:
            self.purge_used_assertions()
        return True

    def purge_used_assertions(self, now: datetime | None = None) -> int:
        """Forget assertion and DPoP proof ids past their expiry (they are refused as stale
        anyway). Run now and then by token requests, so the table stays small."""
        cutoff = now or datetime.now(UTC)
        with self.session_factory() as session:
            result = session.execute(delete(UsedAssertion).where(UsedAssertion.expires_at < cutoff))
            session.commit()
        return int(getattr(result, "rowcount", 0) or 0)

    def check_dpop_proof(self, headers: Mapping[str, str], client: PartnerClient) -> str | None:
        """The thumbprint of the key of the token request's DPoP proof, None without a proof
        (refused for a ``dpop_required`` partner). The proof's id is single-use."""
        proofs = _header_values(headers, "dpop")
        if not proofs:
            if client.dpop_required:
                raise InvalidDPoPProofError(description="This client must send a DPoP proof.")
            return None
        if len(proofs) > 1:
            raise InvalidDPoPProofError(description="Send exactly one DPoP proof.")
        try:
            proof = dpop.verify_proof(
                proofs[0], method="POST", url=self.token_endpoint, now=time.time()
            )
        except dpop.InvalidProof as exc:
            raise InvalidDPoPProofError(description=f"Invalid DPoP proof: {exc}.") from exc
        expires = proof.expires_at.timestamp()
        if not self.remember_assertion(dpop.JTI_NAMESPACE + proof.jkt, proof.jti, expires):
            raise InvalidDPoPProofError(description="The DPoP proof was used before.")
        return proof.jkt

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Access tokens are self-contained JWTs; nothing to store."""

    def create_oauth2_request(self, request: TokenRequest | OAuth2Request) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request  # made by issue_token, which keeps it to read the outcome
        return _FormRequest(request.method, request.url, request.headers, request.form)

    def client_authenticated(self, request: OAuth2Request, client: PartnerClient) -> None:
        """The client proved who it is: its failure reservation goes back and its own token
        bucket pays (429 when empty; the request's credentials are not a failed guess)."""
        if not isinstance(request, _FormRequest):
            return
        request.authenticated = True
        if self.token_limiter is not None:
            self.token_limiter.authenticated(
                request.attempt, partner_id=client.partner_id, overrides=client.rate_limits
            )

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError("the hub exposes no JSON OAuth endpoints")

    def handle_response(
        self, status: int, body: dict[str, Any], headers: list[tuple[str, str]]
    ) -> TokenResponse:
        return TokenResponse(status=status, body=body, headers=headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Authlib announces events (client authenticated, token revoked); the hub has no hooks."""

    def issue_token(self, request: TokenRequest) -> TokenResponse:
        """Answer a token request. With a limiter, the failure buckets of the claimed client
        and the source are reserved first, and a request that does not authenticate keeps what
        it reserved. Raises :class:`~hub.ratelimit.RateLimitedError` (429) when a failure
        bucket is empty (before any credential is checked) or, once the client has
        authenticated, when its own bucket is."""
        oauth_request = _FormRequest(request.method, request.url, request.headers, request.form)
        limiter = self.token_limiter
        if limiter is not None:
            oauth_request.attempt = limiter.admit(
                claimed_client_id(request.headers, request.form), request.source
            )
        try:
            response: TokenResponse = self.create_token_response(oauth_request)
        except (ValueError, TypeError, JoseError) as exc:
            # Key and algorithm problems surface as plain exceptions in Authlib; they are the
            # client's fault, never a server error.
            log.info("token request refused: %s", type(exc).__name__, exc_info=exc)
            error = rfc6749.InvalidClientError(description="Client authentication failed.")
            response = TokenResponse(
                status=error.status_code, body=dict(error.get_body()), headers=error.get_headers()
            )
        if limiter is not None and not oauth_request.authenticated:
            limiter.failed(oauth_request.attempt)
        return response


def _header_values(headers: Mapping[str, str], name: str) -> list[str]:
    """Every value of a header (Starlette's headers keep repeats; a plain mapping has one)."""
    getlist = getattr(headers, "getlist", None)
    if callable(getlist):
        return [str(v) for v in getlist(name)]
    return [v for k, v in headers.items() if k.lower() == name]


def claimed_client_id(headers: Mapping[str, str], form: Mapping[str, str]) -> str | None:
    """The client id a token request names (Basic user, ``client_id``, or the assertion's
    ``sub``), unverified: only to key the failure buckets."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    try:
        if scheme.lower() == "basic" and value:
            user = base64.b64decode(value.strip(), validate=True).decode().partition(":")[0]
            return unquote(user)[:128] or None
        if form.get("client_id"):
            return form["client_id"][:128]
        assertion = form.get("client_assertion", "")
        if assertion.count(".") == 2:
            payload = assertion.split(".")[1]
            claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            sub = claims.get("sub") if isinstance(claims, dict) else None
            return sub[:128] if isinstance(sub, str) and sub else None
    except (ValueError, binascii.Error, UnicodeDecodeError, orjson.JSONDecodeError):
        return None
    return None
