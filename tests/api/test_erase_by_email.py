"""The operator erases a subject named by e-mail address (``tollhouse subjects erase --email``);
the erasure is audited under the pseudonym, never the address. (A module of its own: the hub
fixture is per module and this erases a subject.)"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from hub.audit.models import AuditEvent
from hub.cli import app
from hub.settings import get_settings
from tests.portal.helpers import demo_consumers
from tests.support.hub import HubEnv


def test_erase_by_email_through_the_cli(hub: HubEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    consumer = next(c for c in demo_consumers(hub) if c.email)
    monkeypatch.setenv("TOLLHOUSE_DATA_DIR", str(hub.settings.data_dir))
    monkeypatch.setenv("TOLLHOUSE_DATABASE_URL", hub.settings.resolved_database_url)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        malformed = runner.invoke(
            app, ["subjects", "erase", "--email", "not-an-address", "--reason", "x"]
        )
        unknown = runner.invoke(
            app, ["subjects", "erase", "--email", "zhang.wei.1987@163.com", "--reason", "x"]
        )
        erased = runner.invoke(
            app,
            ["subjects", "erase", "--email", consumer.email.upper(), "--reason", "request #7"],
        )
    finally:
        get_settings.cache_clear()
    assert malformed.exit_code == 2 and "--email" in malformed.output
    assert unknown.exit_code == 1, unknown.output
    assert erased.exit_code == 0, erased.output
    pseudonym = hub.runtime.protector.pseudonym("audit", consumer.subject_id)
    assert pseudonym in erased.output

    with hub.session() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.kind == "subject.erased")
        ).all()
    assert [json.loads(e.canonical)["outcome"] for e in events] == ["erased"]
    canonical = events[0].canonical.decode().lower()
    assert consumer.email.lower() not in canonical and pseudonym.lower() in canonical
