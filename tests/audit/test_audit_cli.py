"""``tollhouse audit`` end to end on a hub's database: sign, verifier-key, export, and an offline
verify that exits 1 and names the first bad index when rows were flipped, deleted or reordered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from hub.audit import AuditEvent, log_size, verify_checkpoint
from hub.cli import app as tollhouse
from hub.settings import get_settings
from tests.support.hub import TEST_ISSUER, HubEnv


@pytest.fixture
def cli_env(fresh_hub: HubEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubEnv]:
    """Point the CLI's settings (environment variables) at ``fresh_hub``."""
    settings = fresh_hub.settings
    monkeypatch.setenv("TOLLHOUSE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TOLLHOUSE_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("TOLLHOUSE_ISSUER", TEST_ISSUER)
    get_settings.cache_clear()
    agreement = fresh_hub.agreement("lender-jinqiao", "dealer-huadong.loan-applications")
    for _ in range(8):  # a log of 8 pulls
        response = fresh_hub.client.get(
            f"/v1/agreements/{agreement}/records",
            params={"limit": 3},
            headers=fresh_hub.auth("lender-jinqiao"),
        )
        assert response.status_code == 200
    yield fresh_hub
    get_settings.cache_clear()


def tollhouse_audit(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(tollhouse, ["audit", *args], terminal_width=200)
    return result.exit_code, result.output


def _swap(session: Session, a: int, b: int) -> None:
    rows = {i: session.get(AuditEvent, i) for i in (a, b)}
    values = {i: (r.canonical, r.leaf_hash) for i, r in rows.items() if r is not None}
    session.execute(delete(AuditEvent).where(AuditEvent.index.in_([a, b])))
    session.flush()
    for index, other in ((a, b), (b, a)):
        canonical, digest = values[other]
        source = rows[other]
        assert source is not None
        session.add(
            AuditEvent(
                index=index,
                event_id=source.event_id + "x",
                created_at=source.created_at,
                kind=source.kind,
                canonical=canonical,
                leaf_hash=digest,
            )
        )


def damage(session: Session, how: str, index: int) -> None:
    if how == "flip":
        row = session.get(AuditEvent, index)
        assert row is not None
        flipped = row.canonical.replace(b'"kind":"', b'"kind":"X', 1)
        assert flipped != row.canonical
        session.execute(
            update(AuditEvent).where(AuditEvent.index == index).values(canonical=flipped)
        )
    elif how == "delete":
        session.execute(delete(AuditEvent).where(AuditEvent.index == index))
    else:
        _swap(session, index, index + 1)


def test_sign_verifier_key_export_verify(cli_env: HubEnv, tmp_path: Path) -> None:
    code, output = tollhouse_audit("verifier-key")
    assert code == 0, output
    vkey = output.strip()
    assert vkey == cli_env.runtime.audit_signer.verifier_key
    key_file = tmp_path / "log.vkey"
    key_file.write_text(vkey + "\n")

    code, output = tollhouse_audit("sign")
    assert code == 0, output
    note = output[output.index("testserver/audit\n") :]
    head = verify_checkpoint(note, cli_env.runtime.audit_signer.public_key)
    with cli_env.session() as session:
        assert head.size == log_size(session)

    out = tmp_path / "all.jsonl"
    code, output = tollhouse_audit("export", "--out", str(out))
    assert code == 0, output
    code, output = tollhouse_audit("verify", str(out), "--key", str(key_file))
    assert code == 0, output
    assert "intact" in output and f"{head.size} events verified" in output

    code, output = tollhouse_audit("export", "--start", "2", "--end", "5", "--out", str(out))
    assert code == 0, output
    code, output = tollhouse_audit("verify", str(out), "--key", vkey)
    assert code == 0 and "3 events verified" in output

    code, output = tollhouse_audit("export", "--start", "5", "--end", "2", "--out", str(out))
    assert code == 1 and "invalid export range" in output
    code, output = tollhouse_audit("verify", str(tmp_path / "missing.jsonl"), "--key", vkey)
    assert code == 1 and "no such file" in output
    code, output = tollhouse_audit("verify", str(out), "--key", "not-a-key")
    assert code == 1 and "verifier key" in output


@pytest.mark.parametrize("how", ["flip", "delete", "reorder"])
def test_verify_names_the_first_bad_index_after_database_damage(
    cli_env: HubEnv, tmp_path: Path, how: str
) -> None:
    code, output = tollhouse_audit("sign")
    assert code == 0, output
    with cli_env.session() as session:
        size = log_size(session)
    assert size >= 6
    bad = size // 2
    with cli_env.session() as session, session.begin():
        damage(session, how, bad)

    out = tmp_path / "damaged.jsonl"
    code, output = tollhouse_audit("export", "--end", str(size), "--out", str(out))
    assert code == 0, output
    code, output = tollhouse_audit(
        "verify", str(out), "--key", cli_env.runtime.audit_signer.verifier_key
    )
    assert code == 1, output
    assert "DAMAGED" in output
    assert f"first bad index: {bad}" in output
