"""The OPA engine: decisions from an OPA server (or ``tollhouse policy serve``) over REST."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson
from opa_client import OpaClient

from hub.policy.bundle import REVISION_ROOT, PolicyBundle
from hub.policy.errors import PolicyError, PolicyEvaluationError, PolicyLoadError
from hub.policy.interfaces import Decision, decision_from_result

DECISION = ("tollhouse.release", "decision")
EXPLANATION = ("tollhouse.explain", "explanation")
REVISION_DATA_PATH = REVISION_ROOT
UNKNOWN_REVISION = "unknown"


def opa_client(url: str, *, timeout: float = 2.0, token: str | None = None) -> Any:
    """An ``opa_client.OpaClient`` for ``http(s)://host:port``."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise PolicyLoadError(f"not an OPA base URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 8181)
    return OpaClient(
        host=parts.hostname,
        port=port,
        ssl=parts.scheme == "https",
        timeout=timeout,
        token=token,
        retries=1,
    )


def _json_ready(value: Mapping[str, Any]) -> Any:
    try:
        return orjson.loads(orjson.dumps(value, option=orjson.OPT_UTC_Z))
    except TypeError as error:
        raise PolicyEvaluationError(f"policy input is not JSON: {error}") from error


class OpaPolicyEngine:
    """Decides by ``POST /v1/data/tollhouse/release/decision`` on an OPA server.

    ``revision`` is the policy bundle revision the server holds: given, or read from
    ``data.tollhouse_bundle.revision`` (set by :func:`push_bundle` and by ``bundle.tar.gz``)
    at construction and again on every :meth:`ready` call. Transport failures, HTTP errors and
    an undefined decision raise :class:`PolicyEvaluationError`.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 2.0,
        token: str | None = None,
        revision: str | None = None,
    ) -> None:
        self.url = url
        self._client = opa_client(url, timeout=timeout, token=token)
        self._fixed_revision = revision
        self._revision = revision or self._read_revision() or UNKNOWN_REVISION

    @property
    def revision(self) -> str:
        return self._revision

    def ready(self) -> bool:
        if not self._client.check_health():
            return False
        if self._fixed_revision is None:
            self._revision = self._read_revision() or UNKNOWN_REVISION
        return True

    def decide(self, policy_input: Mapping[str, Any]) -> Decision:
        return decision_from_result(self._query(policy_input, DECISION), self._revision)

    def explain(self, policy_input: Mapping[str, Any]) -> Mapping[str, Any]:
        result = self._query(policy_input, EXPLANATION)
        if not isinstance(result, Mapping):
            raise PolicyEvaluationError("policy returned no explanation")
        return result

    def close(self) -> None:
        self._client.close_connection()

    def _query(self, policy_input: Mapping[str, Any], rule: tuple[str, str]) -> Any:
        payload = _json_ready(policy_input)
        package, name = rule
        try:
            response = self._client.query_rule(payload, package, name)
        except PolicyError:
            raise
        except Exception as error:  # requests and opa_client errors alike: deny upstream
            raise PolicyEvaluationError(f"OPA query failed: {type(error).__name__}") from error
        if not isinstance(response, Mapping) or "result" not in response:
            raise PolicyEvaluationError(f"OPA returned no result for {package}.{name}")
        return response["result"]

    def _read_revision(self) -> str | None:
        try:
            body = self._client.get_data(f"{REVISION_DATA_PATH}/revision")
        except Exception:  # an unreadable revision is reported as unknown
            return None
        value = body.get("result") if isinstance(body, Mapping) else None
        return value if isinstance(value, str) else None


def push_bundle(url: str, bundle: PolicyBundle, *, token: str | None = None) -> None:
    """Load a bundle into a running OPA through the Policy and Data APIs.

    Data first, then every module (tests excluded), then the revision marker. Each upload
    is checked by the server; a rejected module raises :class:`PolicyLoadError`.
    """
    client = opa_client(url, token=token)
    try:
        for key, document in bundle.data.items():
            if not isinstance(document, dict):
                raise PolicyLoadError(f"top-level data document {key!r} must be an object")
            client.update_or_create_data(document, key)
        for module in bundle.modules:
            client.update_policy_from_string(module.text, module.path, rego_compat=False)
        client.update_or_create_data({"revision": bundle.revision}, REVISION_DATA_PATH)
    except PolicyError:
        raise
    except Exception as error:
        raise PolicyLoadError(f"pushing the bundle to OPA failed: {error}") from error
    finally:
        client.close_connection()
