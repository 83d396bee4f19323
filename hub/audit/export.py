"""Signed JSONL exports of a range of the log, and the offline verifier a regulator runs.

Bundle format (``tollhouse.audit.export/v1``), one JSON document per line:

- lines ``0 .. end-start-1``: the stored RFC 8785 bytes of events ``start .. end-1``, verbatim
  (canonical JSON never contains a raw newline); each line's leaf hash is ``SHA-256(0x00||line)``.
- the final line, the trailer: ``{"type", "start", "end", "checkpoint", "heads", "left",
  "right", "leaf_hashes"}`` where ``checkpoint`` is the signed head (C2SP note) of a size
  ``N >= end``; ``heads`` are the other signed heads with ``start <= size <= end``, used to
  localise damage; ``left`` is the compact range of leaves ``[0, start)`` and ``right`` the
  subtree roots covering ``[end, N)`` (base64, in :func:`range_decomposition` order), so that a
  range can be checked against the head without the rest of the log; ``leaf_hashes`` is the
  base64 of the leaf hashes the log stored for the range (32 bytes each).

The verifier needs only the file and the log's public key. It recomputes every leaf hash and the
root, checks the heads' signatures, and names the first bad index: exactly for removed, inserted
or reordered events (each event carries its index) and for changed events whose stored leaf hash
still matches the signed root; otherwise as the first index after the last signed head that still
matches. (No verifier can pin a change more finely than the signed data allows.)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.audit.checkpoint import LogSigner, TreeHead, parse_verifier_key, verify_checkpoint
from hub.audit.errors import (
    CheckpointError,
    ExportFormatError,
    InvalidAuditQueryError,
    NoTreeHeadError,
)
from hub.audit.merkle import HASH_SIZE, CompactRange, range_decomposition, root_hash
from hub.audit.models import AuditEvent
from hub.audit.service import current_tree_head, latest_tree_head, tree_heads

EXPORT_TYPE = "tollhouse.audit.export/v1"
_READ_BLOCK = 1 << 20
_sha256 = hashlib.sha256


def _stored_hashes(session: Session, start: int, end: int | None) -> list[bytes]:
    """Stored leaf hashes of rows with ``start <= index < end``, as found (no gap checks)."""
    stmt = select(AuditEvent.leaf_hash).where(AuditEvent.index >= start)
    if end is not None:
        stmt = stmt.where(AuditEvent.index < end)
    return [bytes(h) for h in session.scalars(stmt.order_by(AuditEvent.index))]


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """What an export of events ``[start, end)`` against ``head`` will carry, minus the events.

    Built by :func:`plan_export` (which raises on bad requests, so an HTTP response can refuse
    before streaming starts); :meth:`chunks` then streams the bundle from any session.
    """

    start: int
    end: int
    head: TreeHead
    heads: list[str]
    left: list[bytes]
    right: list[bytes]

    def chunks(self, session: Session, *, batch: int = 5000) -> Iterator[bytes]:
        """The bundle's bytes: event lines in batches, then the trailer line."""
        digests: list[bytes] = []
        stmt = (
            select(AuditEvent.canonical, AuditEvent.leaf_hash)
            .where(AuditEvent.index >= self.start, AuditEvent.index < self.end)
            .order_by(AuditEvent.index)
            .execution_options(yield_per=batch)
        )
        pending: list[bytes] = []
        for canonical, digest in session.execute(stmt):
            pending.append(bytes(canonical))
            digests.append(bytes(digest))
            if len(pending) >= batch:
                yield b"\n".join(pending) + b"\n"
                pending = []
        if pending:
            yield b"\n".join(pending) + b"\n"
        trailer: dict[str, Any] = {
            "type": EXPORT_TYPE,
            "start": self.start,
            "end": self.end,
            "checkpoint": self.head.note(),
            "heads": self.heads,
            "left": [base64.b64encode(n).decode() for n in self.left],
            "right": [base64.b64encode(n).decode() for n in self.right],
            "leaf_hashes": base64.b64encode(b"".join(digests)).decode(),
        }
        yield orjson.dumps(trailer, option=orjson.OPT_SORT_KEYS) + b"\n"


def plan_export(
    session: Session, start: int, end: int, *, head: TreeHead | None = None
) -> ExportPlan:
    """Prepare an export of events ``[start, end)`` against ``head`` (default: the latest signed
    head, which must cover ``end``)."""
    if not 0 <= start <= end:
        raise InvalidAuditQueryError(f"invalid export range [{start}, {end})")
    head = head or latest_tree_head(session)
    if head is None or head.size < end:
        raise NoTreeHeadError(f"no signed tree head covers index {end - 1}; sign one first")
    left = CompactRange()
    left.extend(_stored_hashes(session, 0, start))
    right_leaves = _stored_hashes(session, end, head.size)
    right = [
        root_hash(right_leaves[first - end : first - end + (1 << height)])
        for height, first in range_decomposition(end, head.size)
    ]
    heads = [
        h.note()
        for h in tree_heads(session, min_size=max(start, 1), max_size=end)
        if h.note() != head.note()
    ]
    return ExportPlan(start=start, end=end, head=head, heads=heads, left=left.nodes, right=right)


def plan_current_export(
    session: Session, signer: LogSigner, start: int, end: int | None = None
) -> ExportPlan:
    """Plan an export against the current head (signed now if the log has grown); ``end``
    defaults to that head's size."""
    head = current_tree_head(session, signer)
    if end is not None and end > head.size:
        raise InvalidAuditQueryError(f"the log has {head.size} events; 'end' is beyond it")
    return plan_export(session, start, head.size if end is None else end, head=head)


def stream_export(factory: sessionmaker[Session], plan: ExportPlan) -> Iterator[bytes]:
    """Stream ``plan``'s bundle from a session of its own (for a streaming HTTP response)."""
    with factory() as session:
        yield from plan.chunks(session)


def export_events(
    session: Session, out_path: Path, start: int, end: int, *, head: TreeHead | None = None
) -> TreeHead:
    """Write events ``[start, end)`` and a signed-head trailer to ``out_path``; return the head.

    The head is ``head`` or else the latest signed head, which must cover ``end`` (sign one with
    :func:`hub.audit.service.sign_tree_head` first). Rows are written as stored, so damage in the
    database shows up in the verifier's report rather than stopping the export.
    """
    plan = plan_export(session, start, end, head=head)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as out:
        for chunk in plan.chunks(session):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(out_path)
    return plan.head


@dataclass
class VerifyReport:
    """What the offline verifier found. ``ok`` only if every check passed."""

    ok: bool = False
    origin: str | None = None
    tree_size: int | None = None
    root_hash: bytes | None = None
    start: int = 0
    end: int = 0
    events_checked: int = 0
    heads_checked: int = 0
    first_bad_index: int | None = None
    problems: list[str] = field(default_factory=list)

    def _bad(self, index: int, problem: str) -> None:
        if self.first_bad_index is None or index < self.first_bad_index:
            self.first_bad_index = index
        if len(self.problems) < 100:
            self.problems.append(problem)


def _read_trailer(path: Path) -> tuple[bytes, int]:
    """The last line of the file and the offset where it starts."""
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            raise ExportFormatError("the export is empty")
        end = size - 1 if _last_byte(f, size) == b"\n" else size
        pos = end
        chunks: list[bytes] = []
        while pos > 0:
            step = min(_READ_BLOCK, pos)
            f.seek(pos - step)
            block = f.read(step)
            cut = block.rfind(b"\n")
            if cut >= 0:
                chunks.append(block[cut + 1 :])
                pos = pos - step + cut + 1
                break
            chunks.append(block)
            pos -= step
        chunks.reverse()
        return b"".join(chunks)[: end - pos], pos


def _last_byte(f: Any, size: int) -> bytes:
    f.seek(size - 1)
    data: bytes = f.read(1)
    return data


def _b64_hashes(items: Any, what: str) -> list[bytes]:
    if not isinstance(items, list):
        raise ExportFormatError(f"the trailer's '{what}' is not a list")
    try:
        out = [base64.b64decode(item, validate=True) for item in items]
    except (binascii.Error, TypeError, ValueError) as exc:
        raise ExportFormatError(f"the trailer's '{what}' is not base64") from exc
    if any(len(h) != HASH_SIZE for h in out):
        raise ExportFormatError(f"the trailer's '{what}' holds hashes that are not 32 bytes")
    return out


_BLOCK_HEIGHT = 14  # blocks of 16,384 leaves, hashed level by level


def _fast_pass(
    path: Path,
    events_end: int,
    start: int,
    end: int,
    frontier: CompactRange,
    right: list[tuple[tuple[int, int], bytes]],
    recorded: bytes,
    head_roots: dict[int, list[bytes]],
    root: bytes,
) -> bool:
    """True if the bundle is intact: every line hashes to its recorded leaf hash, every signed
    head and the final root match. Hashes whole aligned blocks at once; parses nothing."""
    if len(recorded) != (end - start) * HASH_SIZE or not _heads_match(head_roots, start, frontier):
        return False
    block = 1 << _BLOCK_HEIGHT
    sha = _sha256
    consumed = 0
    pos = start
    with path.open("rb") as f:
        lines = iter(f)
        while pos < end:
            stop = min(end, (pos // block + 1) * block)
            chunk = list(islice(lines, stop - pos))
            if len(chunk) != stop - pos:
                return False
            consumed += sum(map(len, chunk))
            # Only the file's last line (the trailer) can lack its newline, and the byte count
            # checked at the end catches a trailer read as an event.
            digests = [sha(b"\x00" + line[:-1]).digest() for line in chunk]
            lo = (pos - start) * HASH_SIZE
            if b"".join(digests) != recorded[lo : lo + len(digests) * HASH_SIZE]:
                return False
            if pos % block:
                # The unaligned first block: leaf by leaf.
                for i, digest in enumerate(digests):
                    frontier.append(digest)
                    if not _heads_match(head_roots, pos + i + 1, frontier):
                        return False
            else:
                levels = [digests]
                while len(levels[-1]) > 1:
                    lv = levels[-1]
                    levels.append(
                        [
                            sha(b"\x01" + lv[i] + lv[i + 1]).digest()
                            for i in range(0, len(lv) - 1, 2)
                        ]
                    )
                for size in head_roots:
                    if pos < size < stop:
                        partial = frontier.copy()
                        for height, first in range_decomposition(pos, size):
                            partial.append_subtree(height, levels[height][(first - pos) >> height])
                        if not _heads_match(head_roots, size, partial):
                            return False
                for height, first in range_decomposition(pos, stop):
                    frontier.append_subtree(height, levels[height][(first - pos) >> height])
                if not _heads_match(head_roots, stop, frontier):
                    return False
            pos = stop
    if consumed != events_end:
        return False
    for (height, _first), node in right:
        frontier.append_subtree(height, node)
    return frontier.root() == root


def _heads_match(head_roots: dict[int, list[bytes]], size: int, frontier: CompactRange) -> bool:
    roots = head_roots.get(size)
    if not roots:
        return True
    actual = frontier.root()
    return all(r == actual for r in roots)


def verify_export(
    path: Path, public_key: Ed25519PublicKey | str, *, origin: str | None = None
) -> VerifyReport:
    """Check an export bundle offline against the log's public key (or its verifier key string).

    Raises :class:`ExportFormatError` only when the file cannot be read as a bundle at all;
    every other finding is reported in the returned :class:`VerifyReport`.
    """
    if isinstance(public_key, str):
        origin, public_key = parse_verifier_key(public_key)
    trailer_bytes, events_end = _read_trailer(path)
    try:
        trailer = orjson.loads(trailer_bytes)
    except orjson.JSONDecodeError as exc:
        raise ExportFormatError("the export's last line is not the JSON trailer") from exc
    if not isinstance(trailer, dict) or trailer.get("type") != EXPORT_TYPE:
        raise ExportFormatError(f"the export's last line is not a {EXPORT_TYPE} trailer")
    start, end = trailer.get("start"), trailer.get("end")
    if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start <= end:
        raise ExportFormatError("the trailer's range is invalid")
    report = VerifyReport(start=start, end=end)
    try:
        head = verify_checkpoint(str(trailer.get("checkpoint", "")), public_key, origin)
    except CheckpointError as exc:
        report.problems.append(f"the signed tree head does not verify: {exc.detail}")
        return report
    report.origin, report.tree_size, report.root_hash = head.origin, head.size, head.root_hash
    report.heads_checked = 1
    if head.size < end:
        report.problems.append(f"the signed head (size {head.size}) does not cover the range")
        return report
    left = _b64_hashes(trailer.get("left"), "left")
    right = _b64_hashes(trailer.get("right"), "right")
    recorded_blob = trailer.get("leaf_hashes")
    try:
        recorded = base64.b64decode(recorded_blob or "", validate=True)
    except (binascii.Error, TypeError, ValueError) as exc:
        raise ExportFormatError("the trailer's 'leaf_hashes' is not base64") from exc
    try:
        frontier = CompactRange(start, left)
    except ValueError as exc:
        raise ExportFormatError("the trailer's 'left' does not fit its start") from exc
    decomposition = range_decomposition(end, head.size)
    if len(right) != len(decomposition):
        raise ExportFormatError("the trailer's 'right' does not fit the head's size")

    # Intermediate signed heads, by size, to localise damage.
    checkpoints: dict[int, list[TreeHead]] = {}
    for note in trailer.get("heads") or []:
        try:
            extra = verify_checkpoint(str(note), public_key, head.origin)
        except CheckpointError as exc:
            report.problems.append(f"an intermediate head does not verify: {exc.detail}")
            continue
        if start <= extra.size <= end:
            checkpoints.setdefault(extra.size, []).append(extra)
            report.heads_checked += 1
    if _fast_pass(
        path,
        events_end,
        start,
        end,
        CompactRange(start, left),
        list(zip(decomposition, right, strict=True)),
        recorded,
        {size: [h.root_hash for h in hs] for size, hs in checkpoints.items()},
        head.root_hash,
    ):
        report.events_checked = end - start
        report.ok = not report.problems
        return report

    # Something is wrong: a slower pass that parses every event to say what and where.
    last_good = start
    bad_head_at: int | None = None

    def check_heads(size: int, root: bytes) -> None:
        nonlocal last_good, bad_head_at
        for extra in checkpoints.get(size, ()):
            if extra.root_hash == root:
                if bad_head_at is None:
                    last_good = size
            elif bad_head_at is None:
                bad_head_at = size

    check_heads(start, frontier.root())
    count = end - start
    content_mismatch: int | None = None
    position = 0
    offset = 0
    with path.open("rb") as f:
        for raw in f:
            offset += len(raw)
            if offset > events_end:
                break
            line = raw[:-1] if raw.endswith(b"\n") else raw
            expected = start + position
            if position >= count:
                report._bad(expected, f"unexpected extra event after index {end - 1}")
                break
            try:
                doc = orjson.loads(line)
                embedded = doc.get("index") if isinstance(doc, dict) else None
            except orjson.JSONDecodeError:
                embedded = None
                report._bad(expected, f"index {expected}: the line is not a JSON event")
            else:
                if embedded != expected:
                    report._bad(
                        expected,
                        f"index {expected}: found the event of index {embedded} "
                        "(an event was removed, inserted or reordered)",
                    )
            digest = _sha256(b"\x00" + line).digest()
            if (
                content_mismatch is None
                and recorded[position * HASH_SIZE : (position + 1) * HASH_SIZE] != digest
            ):
                content_mismatch = expected
            frontier.append(digest)
            position += 1
            if expected + 1 in checkpoints:
                check_heads(expected + 1, frontier.root())
    report.events_checked = position
    if position < count:
        report._bad(start + position, f"index {start + position}: events missing at the end")

    root_ok = False
    if frontier.size == end:
        for (height, _first), node in zip(decomposition, right, strict=True):
            frontier.append_subtree(height, node)
        root_ok = frontier.root() == head.root_hash

    recorded_ok = False
    if content_mismatch is not None or not root_ok:
        check = CompactRange(start, left)
        try:
            check.extend(recorded[i : i + HASH_SIZE] for i in range(0, len(recorded), HASH_SIZE))
            for (height, _first), node in zip(decomposition, right, strict=True):
                check.append_subtree(height, node)
            recorded_ok = len(recorded) == count * HASH_SIZE and check.root() == head.root_hash
        except ValueError:
            recorded_ok = False
    if content_mismatch is not None:
        certainty = "" if recorded_ok else " (the recorded hashes are not authenticated either)"
        report._bad(
            content_mismatch,
            f"index {content_mismatch}: the event differs from its recorded leaf hash{certainty}",
        )
    if not root_ok:
        report.problems.append("the recomputed root does not match the signed tree head")
        if bad_head_at is not None:
            report.problems.append(
                f"damage lies in indices [{last_good}, {bad_head_at}): the heads of sizes up to "
                f"{last_good} match, the head of size {bad_head_at} does not"
            )
        if report.first_bad_index is None:
            report._bad(last_good, f"index {last_good}: first index not covered by a good head")
    report.ok = root_ok and not report.problems
    return report
