"""Request dependencies as ``Annotated`` aliases: the runtime, a session, the caller."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from hub.auth.tokens import AuthenticatedPartner
from hub.errors import InsufficientScopeError, UnauthorizedError
from hub.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
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
    runtime: RuntimeDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuthenticatedPartner:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise UnauthorizedError("A bearer access token is required.", error="invalid_request")
    return runtime.token_verifier.verify(session, credentials.credentials)


CallerDep = Annotated[AuthenticatedPartner, Depends(get_caller)]


def require_scope(scope: str) -> Callable[[AuthenticatedPartner], AuthenticatedPartner]:
    def check(caller: CallerDep) -> AuthenticatedPartner:
        if scope not in caller.scopes:
            raise InsufficientScopeError(f"This call needs the scope '{scope}'.")
        return caller

    check.__name__ = f"require_{scope.replace(':', '_')}"
    return check


def request_id(request: Request) -> str:
    value: str = request.state.request_id
    return value


RequestIdDep = Annotated[str, Depends(request_id)]
Puller = Annotated[AuthenticatedPartner, Depends(require_scope("records:pull"))]
Publisher = Annotated[AuthenticatedPartner, Depends(require_scope("records:publish"))]
Auditor = Annotated[AuthenticatedPartner, Depends(require_scope("audit:read"))]
Administrator = Annotated[AuthenticatedPartner, Depends(require_scope("admin"))]
