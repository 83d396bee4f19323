"""The OPA engine against the regorus-backed OPA-compatible server on a real loopback port."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hub.policy import (
    EmbeddedPolicyEngine,
    OpaPolicyEngine,
    PolicyEvaluationError,
    build_bundle,
    load_bundle,
    load_policy_engine,
    push_bundle,
)
from hub.policy.opa_server import create_opa_app
from tests.policy.conftest import BASE_INPUT, make_input
from tests.policy.servers import LoopbackServer

pytestmark = pytest.mark.slow


def test_health_and_decision(policy_server: LoopbackServer, engine: EmbeddedPolicyEngine) -> None:
    opa = OpaPolicyEngine(policy_server.url)
    assert opa.ready()
    assert opa.revision == engine.revision
    remote, local = opa.decide(BASE_INPUT), engine.decide(BASE_INPUT)
    assert (remote.allow, dict(remote.obligations), remote.reasons) == (
        local.allow,
        dict(local.obligations),
        local.reasons,
    )
    assert remote.policy_revision == engine.revision
    assert opa.explain(make_input(consent={"sensitive": False})) == engine.explain(
        make_input(consent={"sensitive": False})
    )
    opa.close()


def test_load_policy_engine_opa(policy_server: LoopbackServer) -> None:
    opa = load_policy_engine(kind="opa", opa_url=policy_server.url)
    assert opa.decide({}).allow is False


def test_unreachable_server_is_an_evaluation_error() -> None:
    opa = OpaPolicyEngine("http://127.0.0.1:9", timeout=0.5, revision="r")
    assert opa.ready() is False
    with pytest.raises(PolicyEvaluationError):
        opa.decide(BASE_INPUT)


def test_server_error_is_an_evaluation_error(policy_server: LoopbackServer) -> None:
    opa = OpaPolicyEngine(policy_server.url)
    with pytest.raises(PolicyEvaluationError):
        opa.decide(make_input(now="2026-13-45T00:00:00Z"))
    assert opa.decide(BASE_INPUT).allow is True


@pytest.fixture
def empty_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(create_opa_app()) as server:
        yield server


def test_push_bundle_then_decide(empty_server: LoopbackServer, policies_dir: Path) -> None:
    bundle = load_bundle(policies_dir)
    opa = OpaPolicyEngine(empty_server.url, revision="x")
    with pytest.raises(PolicyEvaluationError):
        opa.decide(BASE_INPUT)  # no policy yet: undefined decision, never allow
    push_bundle(empty_server.url, bundle)
    opa = OpaPolicyEngine(empty_server.url)
    assert opa.revision == bundle.revision
    assert opa.decide(BASE_INPUT).allow is True


def test_policy_and_data_api(empty_server: LoopbackServer) -> None:
    with httpx.Client(base_url=empty_server.url) as client:
        assert client.get("/health").json() == {}
        assert (
            client.put("/v1/policies/a.rego", content="package a\n\nx := data.d.v + 1\n").json()
            == {}
        )
        assert client.get("/v1/policies").json()["result"][0]["id"] == "a.rego"
        assert client.get("/v1/policies/a.rego").json()["result"]["raw"].startswith("package a")
        assert client.put("/v1/data/d", json={"v": 41}).status_code == 204
        assert client.get("/v1/data/d/v").json() == {"result": 41}
        assert client.post("/v1/data/a/x", json={}).json() == {"result": 42}
        assert client.post("/v1/data/a/missing", json={"input": {}}).json() == {}
        broken = client.put("/v1/policies/b.rego", content="package b\nx := {")
        assert broken.status_code == 400 and broken.json()["code"] == "invalid_parameter"
        assert client.post("/v1/data/a/x", content=b"{nope").status_code == 400
        assert client.delete("/v1/data/d/v").status_code == 204
        assert client.get("/v1/data/d").json() == {"result": {}}
        assert client.delete("/v1/data/d/v").status_code == 404
        assert client.delete("/v1/policies/a.rego").json() == {}
        assert client.get("/v1/policies/a.rego").status_code == 404
        assert client.delete("/v1/policies/a.rego").status_code == 404


@pytest.mark.skipif(shutil.which("opa") is None, reason="no opa binary on PATH")
def test_real_opa_runs_the_bundle_and_its_tests(policies_dir: Path, tmp_path: Path) -> None:
    opa = shutil.which("opa")
    assert opa is not None
    build_bundle(policies_dir, tmp_path / "bundle.tar.gz")
    subprocess.run([opa, "test", str(policies_dir)], check=True, capture_output=True)
    subprocess.run(
        [opa, "eval", "-b", str(tmp_path / "bundle.tar.gz"), "data.tollhouse.release.decision"],
        check=True,
        capture_output=True,
    )
