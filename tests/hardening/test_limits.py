"""Resource limits: page sizes beyond the maximum, 10 MB bodies (declared or streamed) and
deeply nested JSON are refused with a 4xx problem, never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.hardening.matrix import CONSUMER, MATRIX, Route
from tests.support.hub import HubEnv

TEN_MB = 10 * 1024 * 1024


def _principal(method: str, path: str) -> str:
    allowed = MATRIX[(method, path)]
    for preferred in ("lender", "dealer", "regulator", "operator", CONSUMER):
        if preferred in allowed:
            return preferred
    raise AssertionError(f"nobody may call {method} {path}")


def _operations(hub: HubEnv) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in hub.client.get("/openapi.json").json()["paths"].items():
        for method, op in item.items():
            yield method.upper(), path, op


def _assert_problem(response: Any, allowed: set[int]) -> None:
    assert response.status_code in allowed, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json")


def test_bounded_integer_query_parameters_refuse_out_of_range(
    hub: HubEnv, principal_headers: dict[str, dict[str, str]]
) -> None:
    checked = 0
    for method, path, op in _operations(hub):
        for param in op.get("parameters", []):
            schema = param.get("schema", {})
            if param["in"] != "query":
                continue
            variants = [s for s in [schema, *schema.get("anyOf", [])] if "maximum" in s]
            if not variants:
                continue
            maximum = variants[0]["maximum"]
            for value in (maximum + 1, 10**30, -(10**30), "1e400", "NaN"):
                response = hub.client.request(
                    method,
                    Route(method, path).url(),
                    params={param["name"]: str(value)},
                    headers=principal_headers[_principal(method, path)],
                    **({"json": {}} if method in ("POST", "PUT") else {}),
                )
                _assert_problem(response, {422})
                checked += 1
    assert checked >= 20, "the walk must reach the paginated routes"


def _body_routes(hub: HubEnv) -> list[tuple[str, str]]:
    return [
        (method, path)
        for method, path, op in _operations(hub)
        if "application/json" in op.get("requestBody", {}).get("content", {})
    ]


def test_a_10_mb_body_is_413_on_every_body_route(
    hub: HubEnv, principal_headers: dict[str, dict[str, str]]
) -> None:
    payload = b'{"pad": "' + b"x" * TEN_MB + b'"}'
    for method, path in _body_routes(hub):
        response = hub.client.request(
            method,
            Route(method, path).url(),
            content=payload,
            headers={"content-type": "application/json"}
            | principal_headers[_principal(method, path)],
        )
        _assert_problem(response, {413})


def test_a_streamed_body_without_length_is_cut_at_the_cap(hub: HubEnv) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"records": ['
        for _ in range(TEN_MB // 65536):
            yield b" " * 65536
        yield b"]}"

    dataset = hub.partner("dealer-huadong")["datasets"][0]
    response = hub.client.post(
        f"/v1/datasets/{dataset}/records",
        content=chunks(),
        headers={"content-type": "application/json"} | hub.auth("dealer-huadong"),
    )
    _assert_problem(response, {413})


@pytest.mark.parametrize("depth", [1_000, 10_000, 100_000])
def test_deeply_nested_json_is_a_4xx_on_every_body_route(
    hub: HubEnv, principal_headers: dict[str, dict[str, str]], depth: int
) -> None:
    bodies = [b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth]
    for method, path in _body_routes(hub):
        for body in bodies:
            response = hub.client.request(
                method,
                Route(method, path).url(),
                content=body,
                headers={"content-type": "application/json"}
                | principal_headers[_principal(method, path)],
            )
            # 400: the JSON parser gives up (RecursionError, mapped by FastAPI); 422: valid
            # JSON of the wrong shape. Never a 5xx.
            _assert_problem(response, {400, 413, 422})


def test_a_publish_batch_beyond_the_cap_is_413(hub: HubEnv) -> None:
    dataset = hub.partner("dealer-huadong")["datasets"][0]
    record = {"record_key": "K", "subject": {"vin": "LSVAU2180N2183294"}, "fields": {}}
    batch = {"records": [record] * (hub.settings.max_publish_batch + 1)}
    response = hub.client.post(
        f"/v1/datasets/{dataset}/records", json=batch, headers=hub.auth("dealer-huadong")
    )
    _assert_problem(response, {413})
