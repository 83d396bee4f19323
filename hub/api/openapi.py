"""The OpenAPI document describes the problem+json answers the hub really gives.

FastAPI documents only a 200 and a ``422 HTTPValidationError`` (``application/json``) per
operation; the hub answers every error as RFC 9457 ``application/problem+json``
(:mod:`hub.api.problems`). This post-processing step documents a ``Problem`` schema and the error
statuses each operation can answer, so clients and schema-driven fuzzers (schemathesis, issue 12)
see the real contract.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from hub.api.problems import PROBLEM_MEDIA_TYPE

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "reasons": {"type": "array", "items": {"type": "string"}},
    },
}

_DESCRIPTIONS = {
    "400": "Malformed request (for example a bad cursor)",
    "401": "Missing, malformed or expired access token (or DPoP proof)",
    "403": "The token lacks the scope or role for this operation",
    "404": "No such object visible to you",
    "409": "The object is not in a state that allows this",
    "413": "Request body too large",
    "415": "Unsupported request media type",
    "422": "Validation failed",
    "429": "Rate limited; see Retry-After",
    "503": "Database or policy engine unavailable; retry later",
}
#: What any operation can answer: bad input, limits, an unavailable backend.
_ALWAYS = ("400", "422", "429", "503")


def _problem(code: str) -> dict[str, Any]:
    return {
        "description": _DESCRIPTIONS[code],
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _is_fastapi_validation_error(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def document_problems(doc: dict[str, Any]) -> dict[str, Any]:
    """Add the ``Problem`` schema and the problem+json error answers to every operation."""
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for item in doc.get("paths", {}).values():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            codes = list(_ALWAYS)
            if operation.get("security"):
                codes += ["401", "403"]
            parameters = operation.get("parameters", [])
            if any(p.get("in") == "path" for p in parameters) or method != "get":
                codes += ["404"]
            if method != "get":
                codes += ["409"]
            if "requestBody" in operation:
                codes += ["413", "415"]
            responses = operation.setdefault("responses", {})
            # Error answers the route documents itself (``responses=``) are problems too.
            codes += [c for c in responses if c.startswith("4") and c not in codes]
            for code in codes:
                documented = responses.get(code, {})
                if "content" in documented and not _is_fastapi_validation_error(documented):
                    continue  # the route documents its own error body (the token endpoint)
                problem = _problem(code)
                # Keep a route's own description (``responses=`` on the route), fix the content.
                problem["description"] = documented.get("description") or problem["description"]
                responses[code] = problem
    # FastAPI's own 422 shape is never sent (the handler answers problem+json).
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return doc


def install_openapi(app: FastAPI) -> None:
    """Serve the post-processed document at ``app.openapi_url`` (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    openapi_version=app.openapi_version,
                    description=app.description,
                    routes=app.routes,
                    tags=app.openapi_tags,
                    servers=app.servers,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
