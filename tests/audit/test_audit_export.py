"""Exports and the offline verifier: tampering with the file or the database is detected and the
first bad index is named."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from hub.audit import (
    AuditEvent,
    ExportFormatError,
    LogSigner,
    NoTreeHeadError,
    append_events,
    export_events,
    sign_tree_head,
    verify_export,
)
from tests.audit.audit_helpers import release_event

N = 40


@pytest.fixture
def log(session: Session, signer: LogSigner) -> Session:
    """A log of N events with heads signed at sizes 10, 25 and N."""
    for lo, hi in ((0, 10), (10, 25), (25, N)):
        append_events(session, [release_event(n) for n in range(lo, hi)])
        sign_tree_head(session, signer)
    session.commit()
    return session


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def test_untouched_export_verifies(log: Session, signer: LogSigner, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    head = export_events(log, out, 0, N)
    lines = lines_of(out)
    assert len(lines) == N + 1
    assert orjson.loads(lines[3])["index"] == 3
    report = verify_export(out, signer.public_key)
    assert report.ok, report.problems
    assert report.events_checked == N and report.tree_size == head.size == N
    assert report.heads_checked == 3 and report.first_bad_index is None
    assert verify_export(out, signer.verifier_key).ok


@pytest.mark.parametrize(("start", "end"), [(0, 0), (5, 20), (10, 25), (0, 1), (39, 40), (7, 7)])
def test_sub_range_export_verifies(
    log: Session, signer: LogSigner, tmp_path: Path, start: int, end: int
) -> None:
    out = tmp_path / "range.jsonl"
    export_events(log, out, start, end)
    report = verify_export(out, signer.public_key)
    assert report.ok, report.problems
    assert report.events_checked == end - start


def test_export_needs_a_covering_head(session: Session, tmp_path: Path) -> None:
    append_events(session, [release_event(0)])
    with pytest.raises(NoTreeHeadError):
        export_events(session, tmp_path / "x.jsonl", 0, 1)


def test_wrong_key_or_forged_head_fails(log: Session, signer: LogSigner, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    export_events(log, out, 0, N)
    report = verify_export(out, Ed25519PrivateKey.generate().public_key())
    assert not report.ok and "signed tree head" in report.problems[0]
    # A rewritten log re-signed with another key under the same origin: refused.
    lines = lines_of(out)
    forger = LogSigner(Ed25519PrivateKey.generate(), signer.origin)
    trailer = orjson.loads(lines[-1])
    trailer["checkpoint"] = forger.sign_head(N, b"\x00" * 32, datetime.now(UTC)).note()
    write_lines(out, [*lines[:-1], orjson.dumps(trailer)])
    report = verify_export(out, signer.public_key)
    assert not report.ok and report.tree_size is None


# --- tampering with the export file


@pytest.mark.parametrize("bad", [0, 17, N - 1])
def test_flipped_byte_in_file_names_the_index(
    log: Session, signer: LogSigner, tmp_path: Path, bad: int
) -> None:
    out = tmp_path / "audit.jsonl"
    export_events(log, out, 0, N)
    lines = lines_of(out)
    line = bytearray(lines[bad])
    pos = line.index(b'"purpose":"') + len(b'"purpose":"')
    line[pos] ^= 0x01  # "credit..." -> "bredit...": still valid canonical JSON
    lines[bad] = bytes(line)
    write_lines(out, lines)
    report = verify_export(out, signer.public_key)
    assert not report.ok
    assert report.first_bad_index == bad
    assert any(f"index {bad}" in p for p in report.problems)


def test_broken_json_line_names_the_index(log: Session, signer: LogSigner, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    export_events(log, out, 0, N)
    lines = lines_of(out)
    lines[12] = lines[12][:-1]
    write_lines(out, lines)
    report = verify_export(out, signer.public_key)
    assert not report.ok and report.first_bad_index == 12


@pytest.mark.parametrize("bad", [0, 21, N - 1])
def test_deleted_line_names_the_index(
    log: Session, signer: LogSigner, tmp_path: Path, bad: int
) -> None:
    out = tmp_path / "audit.jsonl"
    export_events(log, out, 0, N)
    lines = lines_of(out)
    del lines[bad]
    write_lines(out, lines)
    report = verify_export(out, signer.public_key)
    assert not report.ok and report.first_bad_index == bad


@pytest.mark.parametrize(("i", "j"), [(3, 4), (5, 30), (0, N - 1)])
def test_swapped_lines_name_the_first(
    log: Session, signer: LogSigner, tmp_path: Path, i: int, j: int
) -> None:
    out = tmp_path / "audit.jsonl"
    export_events(log, out, 0, N)
    lines = lines_of(out)
    lines[i], lines[j] = lines[j], lines[i]
    write_lines(out, lines)
    report = verify_export(out, signer.public_key)
    assert not report.ok and report.first_bad_index == i


def test_rewritten_event_and_hash_is_localised_by_signed_heads(
    log: Session, signer: LogSigner, tmp_path: Path
) -> None:
    """A forger who also rewrites the recorded leaf hash can only be pinned to the span between
    two signed heads: the first index after the last head that still matches."""
    out = tmp_path / "audit.jsonl"
    export_events(log, out, 0, N)
    lines = lines_of(out)
    lines[17] = lines[17].replace(b"credit_assessment", b"fraud_prevention!")
    trailer = orjson.loads(lines[-1])
    recorded = bytearray(base64.b64decode(trailer["leaf_hashes"]))
    recorded[17 * 32 : 18 * 32] = hashlib.sha256(b"\x00" + lines[17]).digest()
    trailer["leaf_hashes"] = base64.b64encode(bytes(recorded)).decode()
    write_lines(out, [*lines[:-1], orjson.dumps(trailer)])
    report = verify_export(out, signer.public_key)
    assert not report.ok
    assert report.first_bad_index == 10  # heads at 10 match, the head at 25 does not
    assert any("[10, 25)" in p for p in report.problems)


def test_extra_and_missing_tail_events(log: Session, signer: LogSigner, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    export_events(log, out, 0, 20)
    lines = lines_of(out)
    write_lines(out, [*lines[:15], lines[-1]])
    report = verify_export(out, signer.public_key)
    assert not report.ok and report.first_bad_index == 15
    write_lines(out, [*lines[:-1], lines[0], lines[-1]])
    report = verify_export(out, signer.public_key)
    assert not report.ok and report.first_bad_index == 20


@pytest.mark.parametrize("content", [b"", b"{}\n", b"not json\n", b'{"type": "other"}\n'])
def test_unreadable_bundles_raise(signer: LogSigner, tmp_path: Path, content: bytes) -> None:
    out = tmp_path / "junk.jsonl"
    out.write_bytes(content)
    with pytest.raises(ExportFormatError):
        verify_export(out, signer.public_key)


# --- tampering with the database, then exporting


def _flip_db_byte(session: Session, index: int, *, fix_hash: bool) -> None:
    row = session.get(AuditEvent, index)
    assert row is not None
    canonical = row.canonical.replace(b"credit_assessment", b"credit_assessmenT")
    values: dict[str, object] = {"canonical": canonical}
    if fix_hash:
        values["leaf_hash"] = hashlib.sha256(b"\x00" + canonical).digest()
    session.execute(update(AuditEvent).where(AuditEvent.index == index).values(**values))
    session.commit()


def test_db_flipped_byte_names_the_index(log: Session, signer: LogSigner, tmp_path: Path) -> None:
    _flip_db_byte(log, 23, fix_hash=False)
    out = tmp_path / "audit.jsonl"
    export_events(log, out, 0, N)
    report = verify_export(out, signer.public_key)
    assert not report.ok and report.first_bad_index == 23


def test_db_rewritten_row_with_hash_is_localised(
    log: Session, signer: LogSigner, tmp_path: Path
) -> None:
    _flip_db_byte(log, 30, fix_hash=True)
    out = tmp_path / "audit.jsonl"
    export_events(log, out, 0, N)
    report = verify_export(out, signer.public_key)
    assert not report.ok and report.first_bad_index == 25


def test_db_deleted_row_names_the_index(log: Session, signer: LogSigner, tmp_path: Path) -> None:
    log.execute(delete(AuditEvent).where(AuditEvent.index == 8))
    log.commit()
    out = tmp_path / "audit.jsonl"
    export_events(log, out, 0, N)
    report = verify_export(out, signer.public_key)
    assert not report.ok and report.first_bad_index == 8


def test_db_reordered_rows_name_the_first(log: Session, signer: LogSigner, tmp_path: Path) -> None:
    log.execute(update(AuditEvent).where(AuditEvent.index == 11).values(index=-1))
    log.execute(update(AuditEvent).where(AuditEvent.index == 33).values(index=11))
    log.execute(update(AuditEvent).where(AuditEvent.index == -1).values(index=33))
    log.commit()
    out = tmp_path / "audit.jsonl"
    export_events(log, out, 0, N)
    report = verify_export(out, signer.public_key)
    assert not report.ok and report.first_bad_index == 11


@pytest.mark.parametrize(("start", "end"), [(0, N), (3, 37), (8, 16), (9, 10)])
def test_small_blocks_exercise_the_block_path(
    log: Session,
    signer: LogSigner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    start: int,
    end: int,
) -> None:
    import hub.audit.export as export_module

    monkeypatch.setattr(export_module, "_BLOCK_HEIGHT", 2)
    out = tmp_path / "audit.jsonl"
    export_events(log, out, start, end)
    report = verify_export(out, signer.public_key)
    assert report.ok, report.problems
    lines = lines_of(out)
    bad = (end - start) // 2
    lines[bad] = lines[bad].replace(b"credit", b"debit!")
    write_lines(out, lines)
    assert verify_export(out, signer.public_key).first_bad_index == start + bad
