"""Function-level authorization: every role's token against every route the app serves.

A principal outside a route's entry in ``matrix.MATRIX`` gets 401 (no token, or the wrong kind
of token) or 403 (a partner without the scope), as problem+json; a principal inside it is never
refused at the function level. A route without a matrix entry fails the suite.
"""

from __future__ import annotations

import pytest

from tests.hardening.matrix import (
    ANON,
    LOOPBACK_ONLY,
    MATRIX,
    PORTAL_SESSION,
    PRINCIPALS,
    REGULATOR_SESSION,
    TOKEN_ENDPOINT,
    Route,
    served_routes,
)
from tests.support.hub import HubEnv


def test_every_served_route_has_a_matrix_entry(hub: HubEnv) -> None:
    served = {(r.method, r.path) for r in served_routes(hub.client.app)}  # type: ignore[arg-type]
    missing = sorted(served - MATRIX.keys())
    assert not missing, f"routes without an allow-matrix entry (add them to matrix.py): {missing}"
    stale = sorted(MATRIX.keys() - served)
    assert not stale, f"matrix entries for routes that no longer exist: {stale}"


def _call(hub: HubEnv, route: Route, headers: dict[str, str]) -> tuple[int, str, str]:
    kwargs: dict[str, object] = {"headers": headers, "follow_redirects": False}
    if route.method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    response = hub.client.request(route.method, route.url(), **kwargs)  # type: ignore[arg-type]
    ctype = response.headers.get("content-type", "")
    kind = response.json().get("type", "") if ctype.startswith("application/problem+json") else ""
    return response.status_code, ctype, kind


@pytest.mark.parametrize("key", sorted(MATRIX), ids=lambda k: f"{k[0]} {k[1]}")
def test_route_against_every_principal(
    hub: HubEnv, principal_headers: dict[str, dict[str, str]], key: tuple[str, str]
) -> None:
    allowed = MATRIX[key]
    if allowed is TOKEN_ENDPOINT:
        pytest.skip("client authentication: tests/api/test_oauth.py")
    route = Route(*key)
    failures: list[str] = []
    for principal in PRINCIPALS:
        status, ctype, kind = _call(hub, route, principal_headers[principal])
        if status >= 500:
            failures.append(f"{principal}: {status}")
        elif allowed is PORTAL_SESSION or allowed is REGULATOR_SESSION:
            if status < 300 or status >= 500:
                failures.append(f"{principal}: {status} (a session page without the session)")
        elif allowed is LOOPBACK_ONLY:
            # The test client is not on loopback: the route does not exist for it.
            if status != 404:
                failures.append(f"{principal}: {status} (expected 404 off loopback)")
        elif principal in allowed:
            refused = status == 401 or kind.endswith("/insufficient-scope")
            if refused:
                failures.append(f"{principal}: refused with {status} {kind}")
        else:
            expected = {401} if principal == ANON else {401, 403}
            if status not in expected or not ctype.startswith("application/problem+json"):
                failures.append(f"{principal}: {status} {ctype} (expected {sorted(expected)})")
    assert not failures, f"{key}: " + "; ".join(failures)
