"""Request dependencies as ``Annotated`` aliases: the runtime, a session, the caller."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from hub.api.ratelimit import enforce_rate_limit
from hub.auth.tokens import AuthenticatedPartner
from hub.errors import InsufficientScopeError, UnauthorizedError
from hub.runtime import Runtime


# Dependencies that only read the request are ``async def``: FastAPI runs a sync dependency in
# the thread pool (a thread hop per call, per request); these never block.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    """One session per request: committed when the handler returns, before the response is
    sent (so a release is never answered before its audit event is stored); rolled back on
    any error."""
    session = runtime.session_factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="An access token from POST /oauth/token.")


def get_caller(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuthenticatedPartner:
    # --- hardening (issue 12): `Authorization: DPoP <token>` plus a `DPoP` proof (RFC 9449) ---
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() not in ("bearer", "dpop") or not token.strip():
        raise UnauthorizedError("A bearer access token is required.", error="invalid_request")
    return runtime.token_verifier.authenticate(
        session,
        scheme=scheme,
        token=token.strip(),
        proofs=request.headers.getlist("dpop"),
        method=request.method,
        path=request.url.path,
    )


def get_limited_caller(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuthenticatedPartner:
    """The caller, once a token of its rate-limit bucket is spent (429 when empty; issue 12).

    Authenticates by calling :func:`get_caller` itself rather than depending on it: one thread
    hop per request instead of two, same checks in the same order."""
    caller = get_caller(request, runtime, session, credentials)
    enforce_rate_limit(request, runtime, session, caller)
    return caller


CallerDep = Annotated[AuthenticatedPartner, Depends(get_limited_caller)]


def require_scope(
    scope: str,
) -> Callable[[AuthenticatedPartner], Coroutine[Any, Any, AuthenticatedPartner]]:
    async def check(caller: CallerDep) -> AuthenticatedPartner:
        if scope not in caller.scopes:
            raise InsufficientScopeError(f"This call needs the scope '{scope}'.")
        return caller

    check.__name__ = f"require_{scope.replace(':', '_')}"
    return check


async def request_id(request: Request) -> str:
    value: str = request.state.request_id
    return value


RequestIdDep = Annotated[str, Depends(request_id)]
Puller = Annotated[AuthenticatedPartner, Depends(require_scope("records:pull"))]
Publisher = Annotated[AuthenticatedPartner, Depends(require_scope("records:publish"))]
Auditor = Annotated[AuthenticatedPartner, Depends(require_scope("audit:read"))]
Administrator = Annotated[AuthenticatedPartner, Depends(require_scope("admin"))]
