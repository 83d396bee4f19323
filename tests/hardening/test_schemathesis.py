"""Schemathesis against the hub's OpenAPI document, with the demo credentials (issue 12).

Every operation of ``/openapi.json`` is fuzzed in process over ASGI, as a principal the
allow-matrix admits (so calls get past authentication and reach the real handlers); path
parameters also draw the seeded hub's real ids (documented as examples in a test copy of the
document). Positive and negative cases; every answer must pass:

* ``not_a_server_error``: zero 5xx;
* ``status_code_conformance``: the status is documented (errors are documented per operation by
  :mod:`hub.api.openapi`);
* ``content_type_conformance``: the media type is the documented one (problem+json for errors);
* ``response_schema_conformance``: the body matches the documented schema (2xx and problems).

``make test`` runs a few examples per operation; ``TOLLHOUSE_FUZZ_EXAMPLES=200`` runs more, with
schemathesis's coverage phase too (``make soak``). The cookie-session portal and regulator pages
are HTML forms outside the document (tested in tests/portal and tests/regulator).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.hardening.matrix import ANON, CONSUMER, MATRIX, TOKEN_ENDPOINT
from tests.support.hub import HubEnv

SOAK_EXAMPLES = int(os.environ.get("TOLLHOUSE_FUZZ_EXAMPLES", "0"))
EXAMPLES = SOAK_EXAMPLES or 3
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: The principal a call is made as: the first of these the operation's matrix entry admits.
#: The lender holds agreements, datasets, consents and webhooks in the demo seed.
PREFERENCE = ("lender", "operator", "regulator", CONSUMER, ANON)


def principal_for(method: str, path: str) -> str:
    allowed = MATRIX[(method.upper(), path)]
    if allowed is TOKEN_ENDPOINT:
        return "lender"  # client authentication (HTTP Basic), see principal_headers below
    return next(who for who in PREFERENCE if who in allowed)


def _ids(hub: HubEnv, headers: dict[str, dict[str, str]]) -> dict[str, list[str]]:
    """Real ids of the seeded hub, as the lender and the consumer see them (first few each)."""
    lender = hub.partner("lender-jinqiao")
    agreements = [a["id"] for a in lender["agreements"]]
    foreign = hub.partner("lender-pearl")["agreements"][0]["id"]  # not the lender's: a 404
    ids: dict[str, list[str]] = {
        # Reads see the agreements records are pulled under; the lifecycle routes (suspension,
        # termination, ...) change only the last one, so pulls keep answering 200.
        "agreement_id": [*agreements[:2], foreign],
        "agreement_id:write": [agreements[-1], foreign],
        "dataset_id": list(lender["datasets"][:1]),
        # Partners no fuzzed call is made as: the registry routes suspend them, rotate their
        # secrets and require DPoP of them.
        "partner_id": [
            hub.partner(ref)["partner_id"] for ref in ("lender-pearl", "dealer-nanfang")
        ],
    }

    def first(url: str, who: str, field: str = "id", n: int = 2) -> list[str]:
        response = hub.client.get(url, headers=headers[who])
        assert response.status_code == 200, (url, response.text)
        body = response.json()
        items = body.get("items", body) if isinstance(body, dict) else body
        return [str(item[field]) for item in items[:n] if field in item]

    ids["consent_id"] = first("/v1/me/consents", CONSUMER) + first("/v1/consents", "lender")
    ids["webhook_id"] = first("/v1/webhooks", "lender")
    ids["notification_id"] = first("/v1/consent-notifications", "lender")
    ids["request_id"] = first("/v1/rights-requests", "lender")
    ids["record_key"] = first(f"/v1/agreements/{agreements[0]}/records", "lender", "record_key")
    return {name: values for name, values in ids.items() if values}


def with_examples(doc: dict[str, Any], ids: dict[str, list[str]]) -> dict[str, Any]:
    """A copy of the document whose path parameters list the real ids as examples."""
    doc = copy.deepcopy(doc)
    for item in doc["paths"].values():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                name = parameter["name"]
                values = ids.get(f"{name}:write" if method != "get" else name, ids.get(name))
                if parameter["in"] == "path" and values:
                    parameter["examples"] = {f"id{i}": {"value": v} for i, v in enumerate(values)}
    return doc


@pytest.fixture(scope="module")
def api_schema(
    hub: HubEnv, principal_headers: dict[str, dict[str, str]]
) -> Iterator[schemathesis.BaseSchema]:
    doc = hub.client.get("/openapi.json").json()
    config = schemathesis.Config.from_dict(
        {
            "phases": {
                "examples": {"enabled": True},
                "fuzzing": {"enabled": True},
                "coverage": {"enabled": bool(SOAK_EXAMPLES)},
                "stateful": {"enabled": False},
            },
            "generation": {"mode": "all", "max-examples": EXAMPLES},
        }
    )
    schema = schemathesis.openapi.from_dict(
        with_examples(doc, _ids(hub, principal_headers)), config=config
    )
    schema.app = hub.client.app  # in process, over ASGI (the app's lifespan runs once more)
    yield schema
    # Stop the app's second lifespan and schemathesis's event-loop thread with its worker threads
    # now, not at interpreter exit: those threads hold per-thread regorus engines, which must be
    # dropped on their own thread (hub/policy/threads.py). ``_shutdown`` is what schemathesis
    # registers with atexit; the next schema starts a new loop.
    asgi._shutdown()


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32.5's lazy loader reads ``Node._nodeid``, which pytest 9 no longer has."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=not SOAK_EXAMPLES,
    suppress_health_check=list(HealthCheck),
)
def test_openapi_fuzz(
    case: Case[Any], hub: HubEnv, principal_headers: dict[str, dict[str, str]]
) -> None:
    who = principal_for(case.operation.method, case.operation.path)
    if MATRIX[(case.operation.method.upper(), case.operation.path)] is TOKEN_ENDPOINT:
        headers = {"Authorization": hub.basic_auth("lender-jinqiao")}
    else:
        headers = principal_headers[who]
    case.call_and_validate(headers=headers, checks=CHECKS)
