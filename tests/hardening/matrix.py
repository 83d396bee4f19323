"""The function-level allow-matrix: which principal may reach which route.

Every route the application serves must have an entry here; a new route without one fails
``test_authz_matrix``. The matrix describes the *function-level* gate only (token kind and
scope); object-level checks (BOLA) and service-level role rules are tested separately.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

ANON = "anonymous"
CONSUMER = "consumer"
#: Demo partner refs per role (``var/demo-credentials.json``).
PARTNER_REFS: dict[str, str] = {
    "oem": "oem-zhiyuan",
    "dealer": "dealer-huadong",
    "lender": "lender-jinqiao",
    "insurer": "insurer-anxin",
    "regulator": "regulator-fsr",
    "operator": "operator",
}
PARTNERS = frozenset(PARTNER_REFS)
PRINCIPALS = (ANON, CONSUMER, *PARTNER_REFS)

EVERYONE = frozenset(PRINCIPALS)
#: Scopes records:pull / records:publish.
TRADERS = frozenset({"oem", "dealer", "lender", "insurer"})
#: Scope audit:read.
AUDITORS = frozenset({"regulator", "operator"})
#: Scope admin.
ADMIN = frozenset({"operator"})
CONSUMERS = frozenset({CONSUMER})
#: Sentinels: routes that answer nobody through the test client (loopback-only /metrics) and
#: the token endpoint (client authentication, tested in tests/api/test_oauth.py).
LOOPBACK_ONLY = frozenset({"<loopback>"})
TOKEN_ENDPOINT = frozenset({"<client-auth>"})
#: Portal pages behind the portal's own sign-in cookie: no bearer principal gets a 2xx.
PORTAL_SESSION = frozenset({"<portal-session>"})
#: Regulator dashboard pages behind its own signed session cookie (issue 13): likewise.
REGULATOR_SESSION = frozenset({"<regulator-session>"})

A = "/v1/agreements/{agreement_id}"
C = "/v1/consents/{consent_id}"
ME = "/v1/me/consents/{consent_id}"
D = "/v1/datasets/{dataset_id}"
P = "/v1/partners/{partner_id}"

MATRIX: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/openapi.json"): EVERYONE,
    ("GET", "/docs"): EVERYONE,
    ("GET", "/docs/oauth2-redirect"): EVERYONE,
    ("GET", "/redoc"): EVERYONE,
    ("GET", "/healthz"): EVERYONE,
    ("GET", "/readyz"): EVERYONE,
    ("GET", "/metrics"): LOOPBACK_ONLY,
    ("POST", "/oauth/token"): TOKEN_ENDPOINT,
    ("GET", "/.well-known/oauth-authorization-server"): EVERYONE,
    ("GET", "/.well-known/jwks.json"): EVERYONE,
    # agreements: any partner reaches the negotiation routes; the service decides per role
    ("GET", "/v1/agreements"): PARTNERS,
    ("POST", "/v1/agreements"): PARTNERS,
    ("GET", "/v1/agreements/notices"): PARTNERS,
    ("GET", "/v1/agreements/attestations-due"): AUDITORS,
    ("GET", A): PARTNERS,
    ("GET", A + "/history"): PARTNERS,
    ("POST", A + "/acceptance"): PARTNERS,
    ("POST", A + "/rejection"): PARTNERS,
    ("POST", A + "/suspension"): PARTNERS,
    ("POST", A + "/resumption"): PARTNERS,
    ("POST", A + "/termination"): PARTNERS,
    ("POST", A + "/deletion-attestation"): PARTNERS,
    ("GET", A + "/records"): TRADERS,
    ("GET", A + "/records/{record_key}"): TRADERS,
    # datasets
    ("GET", "/v1/datasets"): PARTNERS,
    ("POST", "/v1/datasets"): TRADERS,
    ("GET", D): PARTNERS,
    ("POST", D + "/schema-versions"): TRADERS,
    ("GET", D + "/schema-versions"): PARTNERS,
    ("POST", D + "/records"): TRADERS,
    # audit
    ("GET", "/v1/audit/events"): AUDITORS,
    ("GET", "/v1/audit/tree-head"): AUDITORS,
    ("GET", "/v1/audit/checkpoint"): AUDITORS,
    ("GET", "/v1/audit/proofs/inclusion"): AUDITORS,
    ("GET", "/v1/audit/proofs/consistency"): AUDITORS,
    ("GET", "/v1/audit/export"): AUDITORS,
    ("POST", "/v1/audit/cosignatures"): AUDITORS,
    ("GET", "/v1/audit/statistics/accesses"): AUDITORS,
    ("GET", "/v1/audit/statistics/denials"): AUDITORS,
    ("POST", "/v1/audit/subjects/lookup"): AUDITORS,
    # consents, partner side
    ("POST", "/v1/consent-requests"): TRADERS,
    ("GET", "/v1/consents"): PARTNERS,
    ("GET", "/v1/consents/unacknowledged-withdrawals"): AUDITORS,
    ("GET", C): PARTNERS,
    ("GET", C + "/receipts"): PARTNERS,
    ("POST", C + "/revocations"): ADMIN,
    ("POST", C + "/deletion-attestations"): TRADERS,
    # consents, consumer side
    ("GET", "/v1/me/consents"): CONSUMERS,
    ("GET", "/v1/me/consent-requests"): CONSUMERS,
    ("POST", "/v1/me/consent-requests/{consent_id}/grant"): CONSUMERS,
    ("POST", "/v1/me/consent-requests/{consent_id}/deny"): CONSUMERS,
    ("POST", ME + "/pause"): CONSUMERS,
    ("POST", ME + "/resume"): CONSUMERS,
    ("POST", ME + "/withdraw"): CONSUMERS,
    ("GET", ME + "/history"): CONSUMERS,
    ("GET", ME + "/receipts"): CONSUMERS,
    # webhooks and notifications (recipients)
    ("POST", "/v1/webhooks"): TRADERS,
    ("GET", "/v1/webhooks"): TRADERS,
    ("DELETE", "/v1/webhooks/{webhook_id}"): TRADERS,
    ("GET", "/v1/consent-notifications"): TRADERS,
    ("POST", "/v1/consent-notifications/{notification_id}/acknowledgement"): TRADERS,
    # decisions, statistics
    ("POST", "/v1/decisions/explain"): AUDITORS,
    ("POST", "/v1/policy/reload"): ADMIN,
    ("GET", "/v1/statistics/datasets/{dataset_id}/counts"): AUDITORS,
    # the operator's partner registry
    ("POST", "/v1/partners"): ADMIN,
    ("GET", "/v1/partners"): ADMIN,
    ("GET", P): ADMIN,
    ("GET", P + "/events"): ADMIN,
    ("POST", P + "/secrets"): ADMIN,
    ("GET", P + "/secrets"): ADMIN,
    ("PUT", P + "/keys"): ADMIN,
    ("PUT", P + "/dpop"): ADMIN,
    ("POST", P + "/suspension"): ADMIN,
    ("POST", P + "/reinstatement"): ADMIN,
    # rights requests routed to the record's provider (scope records:publish)
    ("GET", "/v1/rights-requests"): TRADERS,
    ("GET", "/v1/rights-requests/{request_id}"): TRADERS,
    ("POST", "/v1/rights-requests/{request_id}/acknowledgement"): TRADERS,
    ("POST", "/v1/rights-requests/{request_id}/resolution"): TRADERS,
    ("POST", "/v1/rights-requests/{request_id}/rejection"): TRADERS,
    # the consumer portal (issue 5): no bearer tokens; its gate is a cookie session plus a CSRF
    # token on every form (303 to sign-in / 403 for anyone else), tested in tests/portal. Here:
    # its public pages answer everyone; its signed-in pages answer no bearer token at all.
    **{
        (method, "/portal" + path): EVERYONE
        for method, path in (
            ("GET", ""),
            ("GET", "/"),
            ("GET", "/sign-in"),
            ("POST", "/sign-in"),
            ("GET", "/sign-in/code"),
            ("POST", "/sign-in/code"),
            ("POST", "/sign-out"),
            ("POST", "/language"),
        )
    },
    **{
        (method, "/portal" + path): PORTAL_SESSION
        for method, path in (
            ("GET", "/home"),
            ("POST", "/consents/{consent_id}/{action}"),
            ("POST", "/requests/{consent_id}/grant"),
            ("POST", "/requests/{consent_id}/deny"),
            ("GET", "/ledger"),
            ("GET", "/my-data"),
            ("GET", "/my-data.{fmt}"),
            ("GET", "/consents/{consent_id}/receipts"),
            ("GET", "/consents/{consent_id}/receipts/{receipt_id}.jwt"),
            ("POST", "/consents/{consent_id}/receipts/{receipt_id}/verify"),
            ("GET", "/rights"),
            ("GET", "/rights/correction"),
            ("POST", "/rights/correction"),
            ("GET", "/rights/erasure"),
            ("POST", "/rights/erasure"),
        )
    },
    # the regulator dashboard (issue 13): sign-in with client id and secret, then a signed
    # session cookie plus a CSRF token on every form; tested in tests/regulator.
    **{
        (method, "/regulator" + path): EVERYONE
        for method, path in (
            ("GET", ""),
            ("GET", "/"),
            ("GET", "/sign-in"),
            ("POST", "/sign-in"),
            ("POST", "/sign-out"),
            ("POST", "/language"),
        )
    },
    **{
        (method, "/regulator" + path): REGULATOR_SESSION
        for method, path in (
            ("GET", "/overview"),
            ("GET", "/events"),
            ("GET", "/lookup"),
            ("POST", "/lookup"),
            ("GET", "/withdrawals"),
            ("GET", "/verify"),
            ("POST", "/verify"),
        )
    },
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str

    def url(self, **values: str) -> str:
        """The path with every parameter filled (unknown ones with a missing-looking id)."""
        url = self.path
        while "{" in url:
            start = url.index("{")
            end = url.index("}", start)
            name = url[start + 1 : end]
            url = url[:start] + values.get(name, f"missing-{name}") + url[end + 1 :]
        return url


def served_routes(app: FastAPI) -> Iterator[Route]:
    """Every (method, path) the application answers, HEAD aside."""
    for route in iter_route_contexts(app.routes):
        if route.path is None:
            continue
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                yield Route(method, route.path)
