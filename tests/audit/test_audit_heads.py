"""Signed tree heads (C2SP checkpoints), the log key, and proofs served from the database."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hub.audit import (
    CheckpointError,
    LogKeyError,
    LogSigner,
    ProofRequestError,
    WitnessSigner,
    append_events,
    consistency_proof,
    inclusion_proof,
    latest_tree_head,
    log_origin,
    parse_verifier_key,
    parse_witness_key,
    sign_tree_head,
    tree_heads,
    verify_checkpoint,
    verify_cosignature,
)
from hub.audit import service as audit_service
from hub.audit.checkpoint import checkpoint_body
from hub.audit.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from hub.audit.models import TreeBlock
from hub.audit.service import leaf_hashes
from tests.audit.audit_helpers import ORIGIN, release_event


def test_key_file_is_created_private_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "data" / "keys" / "audit.pem"
    signer = LogSigner.load_or_create(path, ORIGIN)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = LogSigner.load_or_create(path, ORIGIN)
    assert again.verifier_key == signer.verifier_key
    name, public_key = parse_verifier_key(signer.verifier_key)
    assert name == ORIGIN and public_key == signer.public_key


def test_unsafe_or_bad_key_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.pem"
    LogSigner.load_or_create(path, ORIGIN)
    os.chmod(path, 0o644)
    with pytest.raises(LogKeyError):
        LogSigner.load(path, ORIGIN)
    bad = tmp_path / "bad.pem"
    bad.write_bytes(b"not a key")
    os.chmod(bad, 0o600)
    with pytest.raises(LogKeyError):
        LogSigner.load(bad, ORIGIN)
    with pytest.raises(LogKeyError):
        LogSigner.load(tmp_path / "missing.pem", ORIGIN)


def test_checkpoint_note_format(session: Session, signer: LogSigner) -> None:
    append_events(session, [release_event(n) for n in range(5)])
    head = sign_tree_head(session, signer)
    session.commit()
    note = head.note()
    text, _, signatures = note.partition("\n\n")
    assert text.split("\n") == [ORIGIN, "5", base64.b64encode(head.root_hash).decode()]
    lines = signatures.rstrip("\n").split("\n")
    assert len(lines) == 2 and all(line.startswith(f"\u2014 {ORIGIN} ") for line in lines)
    plain = base64.b64decode(lines[0].split(" ")[2])
    raw_key = base64.b64decode(signer.verifier_key.split("+", 2)[2])[1:]
    expected_id = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw_key).digest()[:4]
    assert plain[:4] == expected_id and len(plain) == 68
    signer.public_key.verify(plain[4:], checkpoint_body(ORIGIN, 5, head.root_hash).encode())
    stamped = base64.b64decode(lines[1].split(" ")[2])
    assert int.from_bytes(stamped[4:12], "big") == head.unix_time
    assert verify_checkpoint(note, signer.public_key, ORIGIN) == head


def test_checkpoint_verification_failures(session: Session, signer: LogSigner) -> None:
    append_events(session, [release_event(0)])
    note = sign_tree_head(session, signer).note()
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(CheckpointError):
        verify_checkpoint(note, other, ORIGIN)
    with pytest.raises(CheckpointError):
        verify_checkpoint(note, signer.public_key, "other.example/log")
    with pytest.raises(CheckpointError):
        verify_checkpoint(note.replace("\n1\n", "\n2\n", 1), signer.public_key)
    with pytest.raises(CheckpointError):
        verify_checkpoint(note.split("\n\n")[0] + "\n", signer.public_key)
    # A witness's cosignature line from an unknown key is ignored, not an error.
    witness = f"\u2014 witness.example/w1 {base64.b64encode(b'x' * 76).decode()}\n"
    assert verify_checkpoint(note + witness, signer.public_key).size == 1


def test_heads_extend_incrementally_and_stay_consistent(
    session: Session, signer: LogSigner
) -> None:
    empty = sign_tree_head(session, signer)
    assert (empty.size, empty.root_hash) == (0, EMPTY_ROOT)
    sizes = [3, 4, 11, 11, 32]
    appended = 0
    for size in sizes:
        append_events(session, [release_event(n) for n in range(appended, size)])
        appended = size
        sign_tree_head(session, signer)
        session.commit()
    heads = tree_heads(session)
    assert [h.size for h in heads] == [0, *sizes]
    hashes = leaf_hashes(session)
    for head in heads:
        assert head.root_hash == root_hash(hashes[: head.size])
    latest = latest_tree_head(session)
    assert latest is not None and latest.size == 32
    for old in heads:
        proof = consistency_proof(session, old.size, latest.size)
        assert verify_consistency(old.size, latest.size, old.root_hash, latest.root_hash, proof)
    for index in (0, 7, 31):
        proof = inclusion_proof(session, index, 32)
        assert verify_inclusion(hashes[index], index, 32, proof, latest.root_hash)


def test_proof_requests_are_checked(session: Session) -> None:
    append_events(session, [release_event(n) for n in range(3)])
    session.commit()
    with pytest.raises(ProofRequestError):
        inclusion_proof(session, 3, 3)
    with pytest.raises(ProofRequestError):
        inclusion_proof(session, 0, 4)
    with pytest.raises(ProofRequestError):
        consistency_proof(session, 3, 2)


@pytest.mark.parametrize(
    ("issuer", "origin"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000/audit"),
        ("https://hub.example.cn/", "hub.example.cn/audit"),
        ("https://hub.example.cn/tollhouse", "hub.example.cn/tollhouse/audit"),
        ("http://testserver", "testserver/audit"),
    ],
)
def test_log_origin_follows_the_issuer(issuer: str, origin: str) -> None:
    assert log_origin(issuer) == origin


def test_witness_cosignatures_verify_and_bind_their_head(
    session: Session, signer: LogSigner, tmp_path: Path
) -> None:
    append_events(session, [release_event(n) for n in range(3)])
    head = sign_tree_head(session, signer)
    witness = WitnessSigner.load_or_create(tmp_path / "w.pem", "witness.example/w1")
    assert stat.S_IMODE(os.stat(tmp_path / "w.pem").st_mode) == 0o600
    now = datetime.now(UTC)
    line = witness.cosign(head, now)
    name, public_key = parse_witness_key(witness.verifier_key)
    assert name == "witness.example/w1"
    assert verify_cosignature(line, head, name, public_key) == now.replace(microsecond=0)
    # The log's own note verifier still accepts the note with the cosignature appended.
    assert verify_checkpoint(head.note() + line + "\n", signer.public_key) == head
    other_head = sign_tree_head(session, signer)  # same size, another timestamp: same body
    assert verify_cosignature(line, other_head, name, public_key)
    append_events(session, [release_event(3)])
    grown = sign_tree_head(session, signer)
    with pytest.raises(CheckpointError):
        verify_cosignature(line, grown, name, public_key)
    with pytest.raises(CheckpointError):
        verify_cosignature(line, head, "witness.example/w2", public_key)
    with pytest.raises(CheckpointError):
        parse_witness_key(signer.verifier_key)  # a note key (0x01) is not a cosignature key
    with pytest.raises(CheckpointError):
        parse_verifier_key(witness.verifier_key)


@pytest.mark.parametrize("drop_blocks", [False, True])
def test_proofs_from_stored_blocks_match_the_full_tree(
    session: Session, signer: LogSigner, monkeypatch: pytest.MonkeyPatch, drop_blocks: bool
) -> None:
    """Proofs combine stored block roots and leaf ranges; blocks of 4 leaves exercise every
    alignment, with blocks stored by heads, missing, and beyond the latest head."""
    monkeypatch.setattr(audit_service, "TREE_BLOCK_SIZE", 4)
    appended = 0
    for size in (5, 13, 18, 23):
        append_events(session, [release_event(n) for n in range(appended, size)])
        appended = size
        if size < 23:
            sign_tree_head(session, signer)
    session.commit()
    stored = session.scalars(select(TreeBlock.block).order_by(TreeBlock.block)).all()
    assert stored == list(range(4))  # complete blocks under the latest head (size 18)
    if drop_blocks:
        session.execute(delete(TreeBlock).where(TreeBlock.block.in_([0, 2])))
        session.commit()
    tree = MerkleTree(leaf_hashes(session))
    for size in (1, 4, 5, 7, 8, 12, 16, 17, 18, 21, 23):
        for index in range(size):
            proof = audit_service.prove_inclusion(session, index, size)
            assert proof.path == tree.inclusion_proof(index, size), (index, size)
            assert proof.leaf_hash == tree.leaf(index)
        for old in range(0, size + 1):
            assert consistency_proof(session, old, size) == tree.consistency_proof(old, size)
