"""``tollhouse partners``: the same services from the command line."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from hub.cli import app
from hub.registry import cli as partners_cli
from tests.registry.support import token_response
from tests.support.hub import HubEnv

runner = CliRunner()


@pytest.fixture
def on_hub(hub: HubEnv) -> Iterator[None]:
    previous = partners_cli.settings_provider
    partners_cli.settings_provider = lambda: hub.settings
    yield
    partners_cli.settings_provider = previous


def _json(output: str) -> dict[str, object]:
    start = output.index("{")
    parsed: dict[str, object] = json.loads(output[start:])
    return parsed


def test_register_rotate_suspend_from_the_cli(hub: HubEnv, on_hub: None) -> None:
    result = runner.invoke(
        app,
        ["partners", "register", "--name", "Pearl Leasing", "--legal-name", "Pearl Leasing Ltd",
         "--registration-id", "91440300CLI0001", "--role", "lender", "--contact-name", "Ops",
         "--client-id", "pearl-leasing"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    issued = _json(result.output)
    assert issued["client_id"] == "pearl-leasing"
    assert token_response(hub, "pearl-leasing", str(issued["client_secret"])).status_code == 200

    result = runner.invoke(
        app, ["partners", "rotate-secret", "pearl-leasing", "--grace-seconds", "0"]
    )
    assert result.exit_code == 0, result.output
    new_secret = str(_json(result.output)["client_secret"])
    assert token_response(hub, "pearl-leasing", str(issued["client_secret"])).status_code == 401
    assert token_response(hub, "pearl-leasing", new_secret).status_code == 200

    result = runner.invoke(app, ["partners", "suspend", "pearl-leasing", "--reason", "test"])
    assert result.exit_code == 0, result.output
    assert token_response(hub, "pearl-leasing", new_secret).status_code == 401

    result = runner.invoke(app, ["partners", "list", "--status", "suspended"])
    assert result.exit_code == 0 and "pearl-leasing" in result.output

    result = runner.invoke(app, ["partners", "suspend", "pearl-leasing", "--reason", "again"])
    assert result.exit_code == 1 and "suspended already" in result.output

    result = runner.invoke(app, ["partners", "show", "pearl-leasing"])
    assert result.exit_code == 0 and '"suspended"' in result.output


def test_agreement_commands(hub: HubEnv, on_hub: None) -> None:
    result = runner.invoke(app, ["partners", "agreements", "list", "--status", "active"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["partners", "agreements", "sweep"])
    assert result.exit_code == 0 and "activated" in result.output
    result = runner.invoke(app, ["partners", "agreements", "attestations-due"])
    assert result.exit_code == 0
