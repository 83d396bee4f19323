"""Routes whose synchronous work runs in ONE thread-pool call (the record pulls).

FastAPI runs each sync dependency and the sync endpoint as a thread-pool call of its own, and a
generator dependency (the request's session) as two: a one-record pull made six hops (the
session in and out, the caller, the denial audit in and out, the endpoint), each ~100 µs of
CPU, plus the dependency solver itself. A :class:`SingleHopRoute` is declared like any route,
with the same ``Annotated`` dependencies (so the OpenAPI document is the one FastAPI writes for
it), but serves each request with one call that does what those dependencies do, in the order
FastAPI does it:

1. a session (:func:`hub.api.deps.get_session`);
2. the caller: token check, then the rate limit (:func:`hub.api.deps.get_limited_caller`);
3. the scope checks (:func:`hub.api.deps.require_scope`), in declaration order;
4. the path and query parameters, validated by FastAPI's own code (the same 422 errors);
5. the endpoint; then the commit, before the response is sent; a rollback on any error; the
   session closed.

Only the dependencies listed in ``_KNOWN`` are understood; a route declaring any other (or a
header, cookie or body parameter) is refused when the app is built, so nothing can be declared
and silently skipped. With dependency overrides installed (tests), the route falls back to
FastAPI's own handler.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import fastapi.routing
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from hub.api.denials import AuditDeniedAgreement
from hub.api.deps import (
    REQUIRED_SCOPES,
    check_scope,
    get_limited_caller,
    get_runtime,
    get_session,
    limited_caller,
    request_id,
)
from hub.api.ratelimit import ROUTE_CLASSES
from hub.runtime import Runtime

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

#: What an endpoint parameter receives, by the dependency it declares.
_SESSION, _RUNTIME, _REQUEST_ID, _CALLER = "session", "runtime", "request_id", "caller"
_KNOWN: dict[Callable[..., Any], str] = {
    get_session: _SESSION,
    get_runtime: _RUNTIME,
    request_id: _REQUEST_ID,
    get_limited_caller: _CALLER,
}
#: Logs refused object ids; for a pull route it re-raises only (the pipeline logs the refusal
#: as ``release.denied``), so it is understood on pull routes and nowhere else.
_AUDIT_DENIED = AuditDeniedAgreement.dependency


@dataclass(frozen=True, slots=True)
class _Plan:
    endpoint: Callable[..., Any]
    scopes: tuple[str, ...]
    #: endpoint parameter name -> what it receives (``_SESSION`` ...)
    injected: tuple[tuple[str, str], ...]
    dependant: Dependant


class SingleHopRoute(APIRoute):
    """An :class:`~fastapi.routing.APIRoute` served by one thread-pool call (module docstring)."""

    def get_route_handler(self) -> Handler:
        default = super().get_route_handler()
        route: Any = self
        # An included route is served through its inclusion's copy (include-level
        # dependencies added): plan from that one, as FastAPI's own handler does.
        context_var = getattr(fastapi.routing, "_effective_route_context_var", None)
        context = context_var.get() if context_var is not None else None
        if context is not None and context.original_route is self:
            route = context
        plan = _plan(route.dependant, path=route.path, methods=route.methods)
        overrides = route.dependency_overrides_provider

        async def handler(request: Request) -> Response:
            if overrides is not None and getattr(overrides, "dependency_overrides", None):
                return await default(request)
            return await run_in_threadpool(_serve, plan, request)

        return handler


def _plan(dependant: Dependant, *, path: str, methods: set[str] | None) -> _Plan:
    if dependant.call is None:
        raise TypeError(f"{path}: a single-hop route needs an endpoint")
    where = f"single-hop route {sorted(methods or ())} {path}"
    if dependant.header_params or dependant.cookie_params or dependant.body_params:
        raise TypeError(f"{where}: only path and query parameters are supported")
    pull = all(ROUTE_CLASSES.get((m, path)) == "pull" for m in methods or ())
    scopes: list[str] = []
    injected: list[tuple[str, str]] = []
    for sub in dependant.dependencies:
        call = sub.call
        if call is None:
            raise TypeError(f"{where}: a dependency without a callable")
        if call is _AUDIT_DENIED and pull:
            kind = None
        elif call in REQUIRED_SCOPES:
            scopes.append(REQUIRED_SCOPES[call])
            kind = _CALLER
        elif call in _KNOWN:
            kind = _KNOWN[call]
        else:
            raise TypeError(f"{where}: dependency {call!r} is not understood")
        _check_inner(sub, where)
        if sub.name is not None:
            if kind is None:
                raise TypeError(f"{where}: {sub.name} receives nothing")
            injected.append((sub.name, kind))
    return _Plan(
        endpoint=dependant.call,
        scopes=tuple(scopes),
        injected=tuple(injected),
        dependant=dependant,
    )


def _check_inner(dependant: Dependant, where: str) -> None:
    """A known dependency's own dependencies: known ones, the bearer scheme (documents the
    security scheme, reads nothing the caller check does not), no parameters."""
    if (
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
    ):
        raise TypeError(f"{where}: a dependency with parameters is not understood")
    for sub in dependant.dependencies:
        call = sub.call
        if isinstance(call, HTTPBearer) and not call.auto_error:
            continue
        if call not in _KNOWN and call not in REQUIRED_SCOPES:
            raise TypeError(f"{where}: dependency {call!r} is not understood")
        _check_inner(sub, where)


def _serve(plan: _Plan, request: Request) -> Response:
    """The request's whole synchronous part, in the order FastAPI would run it."""
    runtime: Runtime = request.app.state.runtime
    session = runtime.session_factory()
    try:
        caller = limited_caller(request, runtime, session)
        for scope in plan.scopes:
            check_scope(caller, scope)
        dependant = plan.dependant
        values, errors = request_params_to_args(dependant.path_params, request.path_params)
        if dependant.query_params:
            query_values, query_errors = request_params_to_args(
                dependant.query_params, request.query_params
            )
            values.update(query_values)
            errors += query_errors
        if errors:
            raise RequestValidationError(errors)
        given = {
            _SESSION: session,
            _RUNTIME: runtime,
            _REQUEST_ID: request.state.request_id,
            _CALLER: caller,
        }
        for name, kind in plan.injected:
            values[name] = given[kind]
        response = plan.endpoint(**values)
        if not isinstance(response, Response):
            raise TypeError("a single-hop endpoint returns a Response")
        session.commit()
        return response
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
