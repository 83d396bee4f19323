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
`client_assertion`). Returns a short-lived JWT access token (`typ: at+jwt`, Ed25519).
Errors follow RFC 6749 (`{"error", "error_description"}`)."""


@router.post(
    "/oauth/token",
    summary="Get an access token",
    description=_TOKEN_DOC,
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
    token_request = TokenRequest(
        method=request.method,
        url=str(request.url),
        headers=request.headers,
        form={key: value for key, value in form.items() if isinstance(value, str)},
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
        "scopes_supported": SCOPES,
        "response_types_supported": [],
    }


@router.get("/.well-known/jwks.json", summary="The hub's public signing keys")
async def jwks(runtime: RuntimeDep) -> dict[str, Any]:
    return runtime.signing_keys.public_jwks()
