"""A bounded fuzz of every operation in the OpenAPI document (schemathesis is not installed).

Hypothesis draws path, query and JSON body values from each operation's schemas (and, now and
then, values outside them: wrong types, out-of-range numbers, odd strings, unknown members),
with the demo credentials of a principal the allow-matrix admits (or none). Every answer must be
below 500, every error problem+json, and every 2xx JSON body must match the operation's
response schema. ``make test`` runs a few examples per operation; the soak variant runs
``TOLLHOUSE_FUZZ_EXAMPLES`` per operation.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hardening.matrix import ANON, MATRIX, TOKEN_ENDPOINT
from tests.support.hub import HubEnv

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
ODD_TEXT = st.sampled_from(
    ["", " ", "0", "-1", "null", "../../etc/passwd", "%00", "' OR 1=1 --", "💥", "a" * 300,
     "${jndi:ldap://x}", "<script>", "000000000000000000", "agr_" + "A" * 16]
)  # fmt: skip


class Schemas:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def strategy(self, schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
        schema = self.resolve(schema)
        if depth > 4:
            return st.none()
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        if "const" in schema:
            return st.just(schema["const"])
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return st.one_of([self.strategy(s, depth + 1) for s in schema[key]])
        kind = schema.get("type")
        if kind == "string":
            if schema.get("format") == "date-time":
                return st.datetimes(timezones=st.just(__import__("datetime").UTC)).map(
                    lambda d: d.isoformat()
                )
            if schema.get("format") == "date":
                return st.dates().map(lambda d: d.isoformat())
            limit = min(schema.get("maxLength", 40), 60)
            return st.text(max_size=limit) | ODD_TEXT
        if kind == "integer":
            return st.integers(schema.get("minimum"), schema.get("maximum")) | st.integers()
        if kind == "number":
            return st.floats(allow_nan=False, allow_infinity=False)
        if kind == "boolean":
            return st.booleans()
        if kind == "null":
            return st.none()
        if kind == "array":
            items = self.strategy(schema.get("items", {}), depth + 1)
            return st.lists(items, max_size=3)
        if kind == "object" or "properties" in schema:
            props = schema.get("properties", {})
            required = set(schema.get("required", []))
            return st.fixed_dictionaries(
                {k: self.strategy(v, depth + 1) for k, v in props.items() if k in required},
                optional={
                    k: self.strategy(v, depth + 1) for k, v in props.items() if k not in required
                },
            )
        return JSON


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if MATRIX[(method.upper(), path)] is not TOKEN_ENDPOINT
    ]


def _known_ids(hub: HubEnv) -> list[str]:
    lender = hub.partner("lender-jinqiao")
    return [
        lender["partner_id"],
        lender["agreements"][0]["id"],
        hub.partner("dealer-huadong")["datasets"][0],
        hub.partner("lender-pearl")["agreements"][0]["id"],
    ]


def _fuzz_operation(
    hub: HubEnv,
    headers: dict[str, dict[str, str]],
    doc: dict[str, Any],
    operation: tuple[str, str, dict[str, Any]],
    examples: int,
) -> None:
    method, path, op = operation
    schemas = Schemas(doc)
    ids = _known_ids(hub)
    allowed = sorted(MATRIX[(method, path)] - {ANON})
    who_strategy = st.sampled_from([*allowed, ANON]) if allowed else st.just(ANON)
    params = op.get("parameters", [])
    body = op.get("requestBody", {}).get("content", {}).get("application/json")
    responses = op.get("responses", {})
    ok = responses.get("200", responses.get("201", {}))
    response_schema = ok.get("content", {}).get("application/json", {}).get("schema")

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=examples <= 10,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        who = data.draw(who_strategy)
        url = path
        query: dict[str, Any] = {}
        for p in params:
            if p["in"] == "query":
                value = data.draw(schemas.strategy(p.get("schema", {})) | ODD_TEXT)
                if value is not None:
                    query[p["name"]] = value if not isinstance(value, dict) else str(value)
            elif p["in"] == "path":
                value = data.draw(
                    st.sampled_from(ids) | st.text(min_size=1, max_size=70) | ODD_TEXT
                )
                url = url.replace("{" + p["name"] + "}", quote(str(value) or "x", safe=""))
        kwargs: dict[str, Any] = {"params": query, "headers": headers[who]}
        if body is not None:
            kwargs["json"] = data.draw(schemas.strategy(body["schema"]) | JSON)
        response = hub.client.request(method, url, **kwargs)
        where = f"{method} {path} as {who}: {response.status_code}"
        assert response.status_code < 500, f"{where} {response.text[:300]}"
        ctype = response.headers.get("content-type", "")
        if response.status_code >= 400:
            assert ctype.startswith("application/problem+json"), where
        elif response_schema and ctype.startswith("application/json"):
            validator = jsonschema.Draft202012Validator(
                {**response_schema, "components": doc["components"]}
            )
            errors = [e.message for e in validator.iter_errors(response.json())]
            assert not errors, f"{where}: response does not match its schema: {errors[:3]}"

    run()


def _fuzz(hub: HubEnv, headers: dict[str, dict[str, str]], examples: int) -> list[str]:
    doc = hub.client.get("/openapi.json").json()
    failures: list[str] = []
    for operation in _operations(doc):
        try:
            _fuzz_operation(hub, headers, doc, operation, examples)
        except Exception as exc:  # every operation is fuzzed; all failures are reported
            failures.append(f"{operation[0]} {operation[1]}: {str(exc).splitlines()[0][:400]}")
    return failures


def test_fuzz_every_operation_bounded(
    hub: HubEnv, principal_headers: dict[str, dict[str, str]]
) -> None:
    failures = _fuzz(hub, principal_headers, examples=4)
    assert not failures, failures


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("TOLLHOUSE_FUZZ_EXAMPLES"),
    reason="a soak: TOLLHOUSE_FUZZ_EXAMPLES=60 pytest tests/hardening/test_fuzz.py",
)
def test_fuzz_every_operation_longer(
    hub: HubEnv, principal_headers: dict[str, dict[str, str]]
) -> None:
    examples = int(os.environ["TOLLHOUSE_FUZZ_EXAMPLES"])
    failures = _fuzz(hub, principal_headers, examples=examples)
    assert not failures, failures
