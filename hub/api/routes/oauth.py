"""The OAuth 2.0 token endpoint and the discovery documents (RFC 8414, JWKS)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from hub.api.deps import RuntimeDep
from hub.auth.server import ASSERTION_ALGORITHMS, TokenRequest
from hub.runtime import SCOPES

router = APIRouter(tags=["oauth"])

_TOKEN_DOC = """Client-credentials grant. Authenticate with HTTP Basic (`client_secret_basic`) or
with a signed assertion (`private_key_jwt`, RFC 7523: `client_assertion_type` and
`client_assertion`). Returns a short-lived JWT access token (`typ: at+jwt`, Ed25519). With a
`DPoP` proof header (RFC 9449) the token is bound to the proof's key (`token_type: DPoP`,
`cnf.jkt`); partners registered as `dpop_required` must send one. Errors follow RFC 6749
(`{"error", "error_description"}`; `invalid_dpop_proof` for a bad or missing proof)."""

# RFC 6749 section 5.2: the token endpoint's errors are OAuth JSON, not problem+json.
_OAUTH_ERROR = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {"type": "string"},
                    "error_description": {"type": "string"},
                },
            }
        }
    }
}


@router.post(
    "/oauth/token",
    summary="Get an access token",
    description=_TOKEN_DOC,
    responses={
        400: {"description": "Invalid request, grant or scope (RFC 6749)", **_OAUTH_ERROR},
        401: {"description": "Client authentication failed (RFC 6749)", **_OAUTH_ERROR},
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type"],
                        "properties": {
                            "grant_type": {"type": "string", "enum": ["client_credentials"]},
                            "scope": {"type": "string", "example": "records:pull"},
                            "client_assertion_type": {"type": "string"},
                            "client_assertion": {"type": "string"},
                        },
                    }
                }
            },
            "required": True,
        }
    },
)
async def token(request: Request, runtime: RuntimeDep) -> Response:
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    # hardening (issue 12): the server spends the token buckets (429 + Retry-After when
    # empty): failures by claimed client and source address, successes by the partner's own
    token_request = TokenRequest(
        method=request.method,
        url=str(request.url),
        headers=request.headers,
        form=fields,
        source=request.client.host if request.client else None,
    )
    result = await run_in_threadpool(runtime.authorization_server.issue_token, token_request)
    headers = {k: v for k, v in result.headers if k.lower() != "content-type"}
    headers["Cache-Control"] = "no-store"
    return Response(
        orjson.dumps(result.body),
        status_code=result.status,
        media_type="application/json",
        headers=headers,
    )


@router.get("/.well-known/oauth-authorization-server", summary="Authorization server metadata")
async def metadata(runtime: RuntimeDep) -> dict[str, Any]:
    issuer = runtime.authorization_server.issuer
    return {
        "issuer": issuer,
        "token_endpoint": issuer + "/oauth/token",
        "jwks_uri": issuer + "/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "dpop_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "scopes_supported": SCOPES,
        "response_types_supported": [],
    }


@router.get("/.well-known/jwks.json", summary="The hub's public signing keys")
async def jwks(runtime: RuntimeDep) -> dict[str, Any]:
    return runtime.signing_keys.public_jwks()
