"""Request dependencies as ``Annotated`` aliases: the runtime, a session, the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

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


async def get_session(runtime: RuntimeDep) -> AsyncIterator[Session]:
    """One session per request: committed when the handler returns, before the response is
    sent (so a release is never answered before its audit event is stored); rolled back on
    any error.

    ``async``: making a session does no I/O (it connects at its first statement), so only the
    end (commit or rollback, then close) runs in the thread pool: one hop per request where a
    sync generator dependency costs two."""
    session = runtime.session_factory()
    try:
        yield session
    except BaseException:
        await run_in_threadpool(end_session, session, commit=False)
        raise
    await run_in_threadpool(end_session, session, commit=True)


def end_session(session: Session, *, commit: bool) -> None:
    """Commit (or roll back), then close; a failed commit is rolled back and raised."""
    try:
        if commit:
            try:
                session.commit()
            except BaseException:
                session.rollback()
                raise
        else:
            session.rollback()
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="An access token from POST /oauth/token.")


def authenticate_request(
    request: Request, runtime: Runtime, session: Session
) -> AuthenticatedPartner:
    """The caller of ``request``, from its access token (401 when there is none or it fails)."""
    # --- hardening (issue 12): `Authorization: DPoP <token>` plus a `DPoP` proof (RFC 9449) ---
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() not in ("bearer", "dpop") or not token.strip():
        raise UnauthorizedError("A bearer access token is required.", error="invalid_request")
    dpop = scheme.lower() == "dpop"
    return runtime.token_verifier.authenticate(
        session,
        scheme=scheme,
        token=token.strip(),
        proofs=request.headers.getlist("dpop"),
        method=request.method,
        # only a DPoP proof is checked against the path: no URL to build for a bearer token
        path=request.url.path if dpop else "/",
    )


def limited_caller(request: Request, runtime: Runtime, session: Session) -> AuthenticatedPartner:
    """The caller, once a token of its rate-limit bucket is spent (429 when empty; issue 12)."""
    caller = authenticate_request(request, runtime, session)
    enforce_rate_limit(request, runtime, session, caller)
    return caller


def get_caller(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuthenticatedPartner:
    return authenticate_request(request, runtime, session)


def get_limited_caller(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuthenticatedPartner:
    """The caller, once a token of its rate-limit bucket is spent (429 when empty; issue 12).

    Authenticates itself rather than depending on :func:`get_caller`: one thread hop per
    request instead of two, same checks in the same order."""
    return limited_caller(request, runtime, session)


CallerDep = Annotated[AuthenticatedPartner, Depends(get_limited_caller)]


#: The scope each :func:`require_scope` check demands, by the check (``hub.api.single_hop``
#: runs these checks itself).
REQUIRED_SCOPES: dict[Callable[..., Any], str] = {}


def require_scope(
    scope: str,
) -> Callable[[AuthenticatedPartner], Coroutine[Any, Any, AuthenticatedPartner]]:
    async def check(caller: CallerDep) -> AuthenticatedPartner:
        check_scope(caller, scope)
        return caller

    check.__name__ = f"require_{scope.replace(':', '_')}"
    REQUIRED_SCOPES[check] = scope
    return check


def check_scope(caller: AuthenticatedPartner, scope: str) -> None:
    if scope not in caller.scopes:
        raise InsufficientScopeError(f"This call needs the scope '{scope}'.")


async def request_id(request: Request) -> str:
    value: str = request.state.request_id
    return value


RequestIdDep = Annotated[str, Depends(request_id)]
Puller = Annotated[AuthenticatedPartner, Depends(require_scope("records:pull"))]
Publisher = Annotated[AuthenticatedPartner, Depends(require_scope("records:publish"))]
Auditor = Annotated[AuthenticatedPartner, Depends(require_scope("audit:read"))]
Administrator = Annotated[AuthenticatedPartner, Depends(require_scope("admin"))]
