"""A small OPA-compatible policy server backed by regorus (``tollhouse policy serve``).

It speaks the subset of OPA's REST API that ``opa-python-client`` and :class:`OpaPolicyEngine`
use, so the sidecar deployment runs where no OPA binary can be installed:

- ``GET /health``
- ``GET /v1/policies``, ``GET|PUT|DELETE /v1/policies/{id}`` (PUT body: Rego text)
- ``GET|PUT|DELETE /v1/data/{path}`` (PUT body: JSON document)
- ``POST /v1/data/{path}`` with ``{"input": ...}``: ``{"result": ...}``, or ``{}`` if undefined

Errors have OPA's shape ``{"code": ..., "message": ...}``. Handlers are ``async`` so all
evaluation happens on the event loop's thread; engines are still kept per thread and per
generation of the policy set (:mod:`hub.policy.threads`), so no regorus engine crosses a thread.
"""

from __future__ import annotations

import re
import secrets
import threading
from pathlib import Path
from typing import Any

import orjson
import regorus
from fastapi import FastAPI, Request, Response

from hub.policy.bundle import REVISION_ROOT, PolicyBundle, load_bundle
from hub.policy.rego import engine_message
from hub.policy.threads import discard_thread_engine, thread_engine

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NOT_A_RULE = "not a valid rule path"
# regorus' eval_rule_as_json answers this string for an undefined rule (a rule whose value is
# this very string reads as undefined: none of ours is).
_UNDEFINED = "<undefined>"


class ServerError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class RegoStore:
    """Policies and data of the server; every change bumps the generation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._modules: dict[str, str] = {}
        self._data: dict[str, Any] = {}
        self._generation = 0
        self._token = secrets.token_hex(8)

    def load_bundle(self, bundle: PolicyBundle) -> None:
        data = orjson.loads(bundle.data_json())
        data[REVISION_ROOT] = {"revision": bundle.revision}
        modules = {module.path: module.text for module in bundle.modules}
        self._check(modules, data)
        with self._lock:
            self._modules, self._data = modules, data
            self._generation += 1

    def policies(self) -> dict[str, str]:
        with self._lock:
            return dict(self._modules)

    def put_policy(self, policy_id: str, text: str) -> None:
        with self._lock:
            modules = {**self._modules, policy_id: text}
            data = self._data
        self._check(modules, data)
        with self._lock:
            self._modules = {**self._modules, policy_id: text}
            self._generation += 1

    def delete_policy(self, policy_id: str) -> None:
        with self._lock:
            if policy_id not in self._modules:
                raise ServerError(404, "resource_not_found", f"policy not found: {policy_id}")
            self._modules = {key: raw for key, raw in self._modules.items() if key != policy_id}
            self._generation += 1

    def put_data(self, path: list[str], value: Any) -> None:
        with self._lock:
            if not path:
                if not isinstance(value, dict):
                    raise ServerError(400, "invalid_parameter", "root document must be an object")
                self._data = value
            else:
                self._data = orjson.loads(orjson.dumps(self._data))  # copy on write
                node = self._data
                for part in path[:-1]:
                    child = node.get(part)
                    if not isinstance(child, dict):
                        child = {}
                        node[part] = child
                    node = child
                node[path[-1]] = value
            self._generation += 1

    def delete_data(self, path: list[str]) -> None:
        with self._lock:
            node: Any = self._data
            for part in path[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
            if not path or not isinstance(node, dict) or path[-1] not in node:
                raise ServerError(404, "resource_not_found", "storage_not_found_error")
            self._data = orjson.loads(orjson.dumps(self._data))  # copy on write
            node = self._data
            for part in path[:-1]:
                node = node[part]
            del node[path[-1]]
            self._generation += 1

    def evaluate(self, path: list[str], policy_input: Any, has_input: bool) -> tuple[bool, Any]:
        """(defined, value) of ``data.<path>`` for the input.

        A rule path goes through ``eval_rule`` (fast); anything else (a data document, a
        package) through ``eval_query``, which re-analyses the policies on every call.
        """
        engine = self._engine()
        query = "data" + "".join(
            f".{part}" if _IDENTIFIER.match(part) else f"[{orjson.dumps(part).decode()}]"
            for part in path
        )
        try:
            engine.set_input_json(orjson.dumps(policy_input).decode() if has_input else "{}")
            try:
                value = orjson.loads(engine.eval_rule_as_json(query))
            except RuntimeError as error:
                if _NOT_A_RULE not in str(error):
                    raise
                answer = orjson.loads(engine.eval_query_as_json(query))
                rows = answer.get("result") or []
                return (True, rows[0]["expressions"][0]["value"]) if rows else (False, None)
        except RuntimeError as error:
            discard_thread_engine(self._key())
            raise ServerError(500, "internal_error", engine_message(error)) from error
        if value == _UNDEFINED:
            return False, None
        return True, value

    def _key(self) -> str:
        return f"opa-server:{self._token}:{self._generation}"

    def _engine(self) -> Any:
        with self._lock:
            key = self._key()
            modules = self._modules
            data = self._data

        def build() -> Any:
            with self._lock:
                return _compile(dict(modules), orjson.dumps(data).decode())

        return thread_engine(key, build)

    @staticmethod
    def _check(modules: dict[str, str], data: dict[str, Any]) -> None:
        _compile(modules, orjson.dumps(data).decode())


def _compile(modules: dict[str, str], data_json: str) -> Any:
    engine = regorus.Engine()
    try:
        for policy_id, text in modules.items():
            engine.add_policy(policy_id, text)
        engine.add_data_json(data_json)
    except RuntimeError as error:
        raise ServerError(400, "invalid_parameter", engine_message(error)) from error
    return engine


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _split(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


def create_opa_app(bundle: PolicyBundle | None = None) -> FastAPI:
    """The server app, preloaded with ``bundle`` when given."""
    store = RegoStore()
    if bundle is not None:
        store.load_bundle(bundle)
    app = FastAPI(title="tollhouse policy server (OPA REST subset)", openapi_url=None)
    app.state.store = store

    @app.exception_handler(ServerError)
    async def server_error(_: Request, error: ServerError) -> Response:
        return _json({"code": error.code, "message": error.message}, error.status)

    @app.get("/health")
    async def health() -> Response:
        return _json({})

    @app.get("/v1/policies")
    @app.get("/v1/policies/")
    async def list_policies() -> Response:
        policies = store.policies()
        return _json({"result": [{"id": key, "raw": raw} for key, raw in policies.items()]})

    @app.get("/v1/policies/{policy_id:path}")
    async def get_policy(policy_id: str) -> Response:
        raw = store.policies().get(policy_id)
        if raw is None:
            raise ServerError(404, "resource_not_found", f"storage_policy_not_found: {policy_id}")
        return _json({"result": {"id": policy_id, "raw": raw}})

    @app.put("/v1/policies/{policy_id:path}")
    async def put_policy(policy_id: str, request: Request) -> Response:
        try:
            text = (await request.body()).decode("utf-8")
        except UnicodeDecodeError as error:
            raise ServerError(400, "invalid_parameter", "policy is not UTF-8") from error
        store.put_policy(policy_id, text)
        return _json({})

    @app.delete("/v1/policies/{policy_id:path}")
    async def delete_policy(policy_id: str) -> Response:
        store.delete_policy(policy_id)
        return _json({})

    @app.put("/v1/data")
    @app.put("/v1/data/{path:path}")
    async def put_data(request: Request, path: str = "") -> Response:
        store.put_data(_split(path), await _read_json(request))
        return Response(status_code=204)

    @app.delete("/v1/data/{path:path}")
    async def delete_data(path: str) -> Response:
        store.delete_data(_split(path))
        return Response(status_code=204)

    @app.get("/v1/data")
    @app.get("/v1/data/{path:path}")
    async def get_data(path: str = "") -> Response:
        return _result(store.evaluate(_split(path), None, has_input=False))

    @app.post("/v1/data")
    @app.post("/v1/data/{path:path}")
    async def query_data(request: Request, path: str = "") -> Response:
        body = await _read_json(request, allow_empty=True)
        if body is not None and not isinstance(body, dict):
            raise ServerError(400, "invalid_parameter", "body must be an object")
        has_input = isinstance(body, dict) and "input" in body
        policy_input = body.get("input") if isinstance(body, dict) else None
        return _result(store.evaluate(_split(path), policy_input, has_input))

    return app


async def _read_json(request: Request, *, allow_empty: bool = False) -> Any:
    raw = await request.body()
    if not raw and allow_empty:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ServerError(400, "invalid_parameter", f"body is not JSON: {error}") from error


def _result(answer: tuple[bool, Any]) -> Response:
    defined, value = answer
    return _json({"result": value} if defined else {})


def serve(policies_dir: Path, *, host: str = "127.0.0.1", port: int = 8181) -> None:
    """Run the server on ``host:port`` with ``policies_dir`` preloaded (blocking)."""
    import uvicorn

    app = create_opa_app(load_bundle(policies_dir))
    uvicorn.run(app, host=host, port=port, log_level="warning")
