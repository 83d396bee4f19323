"""Witnesses against the hub in-process (the app's TestClient is the witness's httpx client):
they cosign a growing log and refuse a rewritten or forked one, keeping the evidence."""

from __future__ import annotations

import contextlib
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import orjson
import pytest
import rfc8785
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from hub.audit import (
    AuditEvent,
    Cosignature,
    LogSigner,
    SignedTreeHead,
    SplitViewError,
    WitnessError,
    WitnessSigner,
    parse_verifier_key,
    verify_checkpoint,
    verify_cosignature,
)
from hub.audit import cli as audit_cli
from hub.audit.merkle import CompactRange
from hub.audit.witness import WitnessOutcome, WitnessState, run_witness
from hub.cli import app as tollhouse
from tests.support.hub import HubEnv

REGULATOR = "regulator-fsr"
LENDER = "lender-jinqiao"
DATASET = "dealer-huadong.loan-applications"


def witness_name(tmp_path: Path) -> str:
    """One witness per test: names are bound to their first key, and ``hub`` is shared."""
    return f"witness.test/{tmp_path.name}"


def pull(hub: HubEnv) -> None:
    response = hub.client.get(
        f"/v1/agreements/{hub.agreement(LENDER, DATASET)}/records",
        params={"limit": 5},
        headers=hub.auth(LENDER),
    )
    assert response.status_code == 200, response.text


def witness_round(
    hub: HubEnv, tmp_path: Path, *, log_key: str | None = None, secret: str | None = None
) -> WitnessOutcome:
    partner = hub.partner(REGULATOR)
    return run_witness(
        cast(httpx.Client, hub.client),  # TestClient is an httpx(2) client without a network
        client_id=partner["client_id"],
        client_secret=secret or partner["client_secret"],
        signer=WitnessSigner.load_or_create(tmp_path / "witness.pem", witness_name(tmp_path)),
        state=WitnessState(tmp_path / "state"),
        log_key=log_key,
    )


def served_checkpoint(hub: HubEnv) -> str:
    response = hub.client.get("/v1/audit/checkpoint", headers=hub.auth(REGULATOR))
    assert response.status_code == 200
    return response.text


def test_witness_cosigns_a_growing_log(hub: HubEnv, tmp_path: Path) -> None:
    first = witness_round(hub, tmp_path)
    assert first.previous_size is None and first.pinned_log_key and first.stored_by_hub
    state = tmp_path / "state"
    assert (
        verify_checkpoint(
            (state / "checkpoint").read_text(),
            parse_verifier_key((state / "log-key").read_text())[1],
        ).size
        == first.size
    )

    note = served_checkpoint(hub)
    assert note.endswith(first.cosignature + "\n")
    head = verify_checkpoint(note, hub.runtime.audit_signer.public_key)
    witness = WitnessSigner.load_or_create(tmp_path / "witness.pem", witness_name(tmp_path))
    verify_cosignature(first.cosignature, head, witness.name, witness.public_key)

    pull(hub)
    pull(hub)
    second = witness_round(hub, tmp_path)
    assert second.previous_size == first.size and second.size > first.size
    assert not second.pinned_log_key and second.stored_by_hub

    same = witness_round(hub, tmp_path)  # nothing appended: the same head, already cosigned
    assert same.size == second.size and not same.stored_by_hub


def test_witness_refuses_a_wrong_log_key_or_credentials(hub: HubEnv, tmp_path: Path) -> None:
    witness_round(hub, tmp_path)
    wrong = LogSigner.load_or_create(tmp_path / "wrong.pem", "testserver/audit").verifier_key
    with pytest.raises(WitnessError, match="differs from the one pinned"):
        witness_round(hub, tmp_path, log_key=wrong)
    with pytest.raises(WitnessError, match="credentials"):
        witness_round(hub, tmp_path / "b", secret="wrong")
    # A fresh witness told the wrong key refuses the hub's checkpoint.
    with pytest.raises(WitnessError, match="does not verify"):
        witness_round(hub, tmp_path / "c", log_key=wrong)


def _cli_witness(hub: HubEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    partner = hub.partner(REGULATOR)
    monkeypatch.setattr(audit_cli, "_http_client", lambda url: contextlib.nullcontext(hub.client))
    monkeypatch.setenv("TOLLHOUSE_WITNESS_CLIENT_SECRET", partner["client_secret"])
    args = [
        "audit",
        "witness",
        "--hub",
        "http://testserver",
        "--client-id",
        partner["client_id"],
        "--key",
        str(tmp_path / "witness.pem"),
        "--state",
        str(tmp_path / "state"),
        "--name",
        witness_name(tmp_path),
    ]
    return CliRunner().invoke(tollhouse, args)


def test_witness_command_cosigns(
    hub: HubEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _cli_witness(hub, tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "cosigned" in result.output and "pinned the log key" in result.output


def _rewrite_event(hub: HubEnv, index: int) -> None:
    """What an operator hiding an access would do: rewrite an event and its leaf hash."""
    with hub.session() as session, session.begin():
        row = session.get(AuditEvent, index)
        assert row is not None
        doc = orjson.loads(row.canonical)
        doc["outcome"] = "rewritten"
        canonical = rfc8785.dumps(doc)
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.index == index)
            .values(canonical=canonical, leaf_hash=hashlib.sha256(b"\x00" + canonical).digest())
        )


def _evidence(tmp_path: Path) -> dict[str, Any]:
    files = sorted((tmp_path / "state").glob("evidence-*.json"))
    assert len(files) == 1
    evidence: dict[str, Any] = json.loads(files[0].read_text())
    return evidence


def _cosigned_sizes(hub: HubEnv) -> list[int]:
    with hub.session() as session:
        return list(session.scalars(select(Cosignature.size).order_by(Cosignature.id)))


def test_witness_refuses_a_rewritten_and_resigned_log(
    fresh_hub: HubEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = fresh_hub
    for _ in range(4):
        pull(hub)
    first = witness_round(hub, tmp_path)
    stored = (tmp_path / "state" / "checkpoint").read_text()

    # The operator rewrites an event and signs the rewritten log from scratch: same size,
    # another root, a valid signature.
    _rewrite_event(hub, first.size // 2)
    with hub.session() as session, session.begin():
        session.execute(delete(SignedTreeHead))
    result = _cli_witness(hub, tmp_path, monkeypatch)
    assert result.exit_code == 2, result.output
    assert "REFUSED" in result.output and "split view" in result.output

    evidence = _evidence(tmp_path)
    key = hub.runtime.audit_signer.public_key
    cosigned = verify_checkpoint(evidence["cosigned_checkpoint"], key)
    presented = verify_checkpoint(evidence["presented_checkpoint"], key)
    assert cosigned.size == presented.size and cosigned.root_hash != presented.root_hash
    # Nothing changed in the witness's memory, and the forged head got no cosignature.
    assert (tmp_path / "state" / "checkpoint").read_text() == stored
    assert _cosigned_sizes(hub) == [first.size]


def test_witness_refuses_a_rewrite_hidden_behind_growth(fresh_hub: HubEnv, tmp_path: Path) -> None:
    hub = fresh_hub
    for _ in range(5):
        pull(hub)
    first = witness_round(hub, tmp_path)
    # Heads extend their stored frontier, so the new head's root still looks consistent; the
    # consistency proof is computed from the stored leaves and gives the rewrite away. (From a
    # size that is a power of two, the proof would not cover the old leaves at all: only the
    # export verifier would see the rewrite.)
    assert first.size >= 3 and first.size & (first.size - 1)
    _rewrite_event(hub, 1)
    pull(hub)
    with pytest.raises(SplitViewError, match="consistency proof") as caught:
        witness_round(hub, tmp_path)
    assert caught.value.evidence is not None and caught.value.evidence.exists()
    evidence = _evidence(tmp_path)
    assert evidence["consistency_proof"]
    assert (
        verify_checkpoint(
            evidence["presented_checkpoint"], hub.runtime.audit_signer.public_key
        ).size
        > first.size
    )
    assert _cosigned_sizes(hub) == [first.size]


def test_witness_detects_two_heads_of_one_size(fresh_hub: HubEnv, tmp_path: Path) -> None:
    hub = fresh_hub
    for _ in range(4):
        pull(hub)
    first = witness_round(hub, tmp_path)
    # A fork: the log key signs a second head of the same size over another history.
    signer = hub.runtime.audit_signer
    forked_root = hashlib.sha256(b"another history").digest()
    fork = signer.sign_head(first.size, forked_root, datetime.now(UTC))
    with hub.session() as session, session.begin():
        session.add(
            SignedTreeHead(
                origin=fork.origin,
                size=fork.size,
                root_hash=fork.root_hash,
                timestamp=fork.timestamp,
                key_id=fork.key_id,
                timestamp_key_id=fork.timestamp_key_id,
                signature=fork.signature,
                timestamp_signature=fork.timestamp_signature,
                checkpoint=fork.note(),
                frontier=CompactRange(
                    first.size, [forked_root] * first.size.bit_count()
                ).to_bytes(),
            )
        )
    with pytest.raises(SplitViewError, match=f"two different tree heads of size {first.size}"):
        witness_round(hub, tmp_path)
    evidence = _evidence(tmp_path)
    # The evidence stands on its own: two validly signed checkpoints of one size.
    heads = [
        verify_checkpoint(evidence[k], signer.public_key)
        for k in ("cosigned_checkpoint", "presented_checkpoint")
    ]
    assert heads[0].size == heads[1].size and heads[0].root_hash != heads[1].root_hash
