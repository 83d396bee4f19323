"""The audit log's service functions: append, query, sign heads, prove.

Appends run inside the caller's transaction (the release pipeline's): the event is durable when the
caller commits, and the release must not be returned before that commit. Indices are assigned
under one lock, so they are gap-free and in commit order across hub processes:

- PostgreSQL: ``pg_advisory_xact_lock(AUDIT_APPEND_LOCK)`` is taken before reading the highest
  index and held until the caller's transaction ends; both in one round trip, by a ``VOLATILE``
  SQL function whose read takes its own snapshot once the lock is granted
  (``hub.audit.models.NEXT_INDEX_FUNCTION``). The caller's transaction must run at READ
  COMMITTED (PostgreSQL's default), so the read after the lock sees the previous holder's row.
- SQLite: a no-op write takes the database's write lock before the read, held until commit.
  If the caller's transaction already read before appending, begin it with ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from weakref import WeakKeyDictionary

from sqlalchemy import (
    BigInteger,
    Connection,
    Dialect,
    Table,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, SessionTransaction

from hub.audit.checkpoint import LogSigner, TreeHead, verify_checkpoint
from hub.audit.errors import (
    InvalidAuditQueryError,
    LogIntegrityError,
    NoTreeHeadError,
    ProofRequestError,
)
from hub.audit.events import canonicalize, rfc3339, validate_event
from hub.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof_with,
    inclusion_proof_with,
    leaf_hash,
    node_hash,
    root_hash,
)
from hub.audit.models import (
    NEXT_INDEX_FUNCTION,
    AuditEvent,
    AuditEventSubject,
    SignedTreeHead,
    TreeBlock,
)
from hub.store.base import new_id, utcnow
from hub.store.db import SQLITE_BEGINS_IMMEDIATE
from hub.store.prebuilt import PrebuiltSelect, execute_driver_sql

# "tollaudt": the advisory lock key that serialises appends across hub processes.
AUDIT_APPEND_LOCK = 0x746F6C6C61756474
# "tollsign": serialises on-demand signing, so concurrent requests do not sign the same size twice.
AUDIT_SIGN_LOCK = 0x746F6C6C7369676E
MAX_QUERY_LIMIT = 1000
# Proofs read stored roots of complete blocks of this many leaves (a perfect subtree each).
TREE_BLOCK_SIZE = 1024


@dataclass(frozen=True, slots=True)
class AppendedEvent:
    index: int
    event_id: str
    leaf_hash: bytes


# Statements built once: building SQLAlchemy constructs costs more than running them on SQLite.
_EVENTS = cast(Table, AuditEvent.__table__)
# A PostgreSQL advisory lock, on the driver's cursor (on-demand signing: AUDIT_SIGN_LOCK).
_PG_ADVISORY_LOCK = PrebuiltSelect(
    select(func.pg_advisory_xact_lock(bindparam("key", type_=BigInteger)))
)
# PostgreSQL: the append lock, then the highest index read after it is granted, in one round
# trip (``hub.audit.models.NEXT_INDEX_FUNCTION``).
_PG_LOCK_AND_NEXT_INDEX = PrebuiltSelect(
    select(getattr(func, NEXT_INDEX_FUNCTION)(bindparam("key", type_=BigInteger)))
)
# Matches no row, but takes SQLite's write lock (held until commit) before the index is read.
_SQLITE_WRITE_LOCK = update(_EVENTS).where(_EVENTS.c.index < 0).values(kind=_EVENTS.c.kind)
# Read on every append (every pull): run on the driver's cursor.
_MAX_INDEX = PrebuiltSelect(select(func.max(_EVENTS.c.index)))
_INSERT_EVENTS = insert(_EVENTS)
_SUBJECTS = cast(Table, AuditEventSubject.__table__)
_INSERT_SUBJECTS = insert(_SUBJECTS)
_BLOCKS = cast(Table, TreeBlock.__table__)

# One event (a pull's page, a denial...) is written by driver SQL built once, run on the driver's
# cursor (hub.store.prebuilt.execute_driver_sql): no compilation, no execution context, and
# on PostgreSQL the event and its subject rows take one round trip, not two (a data-modifying WITH
# runs to completion although the outer INSERT does not read it). One subject, the common case, is
# a plain parameter: an array parameter costs the driver more than the rest of the row.
_EVENT_COLUMNS = (
    '"index", event_id, created_at, kind, partner_id, dataset_id, purpose, outcome, request_id,'
    " canonical, leaf_hash"
)
_PG_INSERT_EVENT = f"INSERT INTO audit_events ({_EVENT_COLUMNS}) VALUES ({', '.join(['%s'] * 11)})"
_PG_INSERT_EVENT_AND_SUBJECT = (
    f"WITH appended AS ({_PG_INSERT_EVENT})"
    " INSERT INTO audit_event_subjects (subject, event_index) VALUES (%s, %s)"
)
_PG_INSERT_EVENT_AND_SUBJECTS = (
    f"WITH appended AS ({_PG_INSERT_EVENT})"
    " INSERT INTO audit_event_subjects (subject, event_index)"
    " SELECT subject, %s FROM unnest(CAST(%s AS VARCHAR[])) AS subject"
)
# A batch's subject rows (a page's decisions name up to one subject per record) as two array
# parameters in one statement: an executemany binds and sends every row on its own, which cost
# the hub ~7-10 us of CPU per row on PostgreSQL.
_PG_INSERT_SUBJECT_ROWS = text(
    "INSERT INTO audit_event_subjects (subject, event_index)"
    " SELECT * FROM unnest(CAST(:subjects AS VARCHAR[]), CAST(:event_indexes AS BIGINT[]))"
)
_SQLITE_INSERT_EVENT = f"INSERT INTO audit_events ({_EVENT_COLUMNS}) VALUES ({', '.join('?' * 11)})"
_SQLITE_INSERT_SUBJECT = "INSERT INTO audit_event_subjects (subject, event_index) VALUES (?, ?)"
_EVENT_COLUMN_NAMES = [name.strip().strip('"') for name in _EVENT_COLUMNS.split(",")]
_BindProcessors = list[tuple[int, Callable[[Any], Any]]]
_bind_processors_of: WeakKeyDictionary[Dialect, _BindProcessors] = WeakKeyDictionary()


def _event_bind_processors(dialect: Dialect) -> _BindProcessors:
    """What SQLAlchemy would do to each value of an event row before the driver sees it (the
    timestamp's UTC conversion and storage format, binary wrappers), by position: the
    processors of each type's implementation for ``dialect``, as SQLAlchemy's own inserts use
    (the generic type's would hand SQLite a datetime, stored in another text format)."""
    processors = _bind_processors_of.get(dialect)
    if processors is None:
        processors = []
        for position, name in enumerate(_EVENT_COLUMN_NAMES):
            process = _EVENTS.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors.append((position, process))
        _bind_processors_of[dialect] = processors
    return processors


def _insert_one_event(conn: Connection, row: list[Any], subjects: list[str]) -> bool:
    """Insert one event row (values in ``_EVENT_COLUMNS`` order) and its sorted subject
    pseudonyms; False, having done nothing, where the statements here do not fit the driver."""
    dialect = conn.dialect
    name = dialect.name
    if not (
        (name == "postgresql" and dialect.paramstyle in ("format", "pyformat"))
        or (name == "sqlite" and dialect.paramstyle == "qmark")
    ):  # the hub's own engines (psycopg, sqlite3) always fit
        return False
    for position, process in _event_bind_processors(dialect):
        row[position] = process(row[position])
    index = row[0]
    if name == "postgresql":
        if not subjects:
            execute_driver_sql(conn, _PG_INSERT_EVENT, tuple(row))
        elif len(subjects) == 1:
            execute_driver_sql(conn, _PG_INSERT_EVENT_AND_SUBJECT, (*row, subjects[0], index))
        else:
            execute_driver_sql(conn, _PG_INSERT_EVENT_AND_SUBJECTS, (*row, index, subjects))
    else:
        execute_driver_sql(conn, _SQLITE_INSERT_EVENT, tuple(row))
        if subjects:
            execute_driver_sql(
                conn, _SQLITE_INSERT_SUBJECT, [(s, index) for s in subjects], many=True
            )
    return True


def _next_index(conn: Connection) -> int:
    (current,) = _MAX_INDEX.one(conn, {})
    return 0 if current is None else int(current) + 1


_SEQUENCE_KEY = "hub.audit.next_index"


def _innermost(session: Session) -> SessionTransaction | None:
    return session.get_nested_transaction() or session.get_transaction()


def _first_index(session: Session) -> int:
    """The next index, under the append lock.

    The first append of a transaction takes the lock and reads the highest index; the lock is
    held until the transaction ends, so later appends in the same transaction (and the same
    savepoint) continue from where the last one ended (:func:`_appended`) without asking again.
    In any other savepoint state (one begun or ended since) it locks and reads again: a
    rolled-back savepoint's indices are free once more (and its lock released).
    """
    innermost = _innermost(session)
    cached = session.info.get(_SEQUENCE_KEY)
    if (
        cached is not None
        and innermost is not None
        and cached[0] is innermost
        and innermost.is_active
        and session.get_transaction() is cached[1]
    ):
        return int(cached[2])
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        (index,) = _PG_LOCK_AND_NEXT_INDEX.one(conn, {"key": AUDIT_APPEND_LOCK})
        return int(index)
    if not conn.info.get(SQLITE_BEGINS_IMMEDIATE):
        # The hub's own engines already hold the lock (BEGIN IMMEDIATE); others take it here.
        conn.execute(_SQLITE_WRITE_LOCK)
    return _next_index(conn)


def _appended(session: Session, next_index: int) -> None:
    """Remember, for this transaction and savepoint, where the next append starts."""
    session.info[_SEQUENCE_KEY] = (_innermost(session), session.get_transaction(), next_index)


def append_event(session: Session, event: Mapping[str, Any]) -> AppendedEvent:
    """Append one event at the next index, in the caller's transaction (the caller commits).

    ``event`` is the JSON object described in :mod:`hub.audit.events`; ``event_id``, ``index``
    and ``time`` are added here. Raises :class:`InvalidEventError` if it cannot be stored.
    """
    return append_events(session, [event])[0]


def append_events(session: Session, events: Sequence[Mapping[str, Any]]) -> list[AppendedEvent]:
    """Append several events at consecutive indices, taking the append lock once."""
    subjects = [validate_event(event) for event in events]
    if not events:
        return []
    index = _first_index(session)
    conn = session.connection()
    now = utcnow()
    time = rfc3339(now)
    rows: list[list[Any]] = []
    appended: list[AppendedEvent] = []
    for event in events:
        event_id = new_id("evt")
        canonical = canonicalize(event, event_id=event_id, index=index, time=time)
        digest = leaf_hash(canonical)
        rows.append(  # in _EVENT_COLUMNS order
            [
                index,
                event_id,
                now,
                event["kind"],
                event.get("partner_id"),
                event.get("dataset_id"),
                event.get("purpose"),
                event.get("outcome"),
                event.get("request_id"),
                canonical,
                digest,
            ]
        )
        appended.append(AppendedEvent(index=index, event_id=event_id, leaf_hash=digest))
        index += 1
    if len(rows) != 1 or not _insert_one_event(conn, rows[0], sorted(subjects[0])):
        conn.execute(
            _INSERT_EVENTS, [dict(zip(_EVENT_COLUMN_NAMES, row, strict=True)) for row in rows]
        )
        if conn.dialect.name == "postgresql":
            names: list[str] = []
            event_indexes: list[int] = []
            for row, named in zip(rows, subjects, strict=True):
                ordered = sorted(named)
                names.extend(ordered)
                event_indexes.extend([row[0]] * len(ordered))
            if names:
                conn.execute(
                    _PG_INSERT_SUBJECT_ROWS, {"subjects": names, "event_indexes": event_indexes}
                )
        else:
            subject_rows = [
                {"subject": subject, "event_index": row[0]}
                for row, named in zip(rows, subjects, strict=True)
                for subject in sorted(named)
            ]
            if subject_rows:
                conn.execute(_INSERT_SUBJECTS, subject_rows)
    _appended(session, index)
    return appended


def query_events(
    session: Session,
    *,
    partner_id: str | None = None,
    kind: str | None = None,
    dataset_id: str | None = None,
    purpose: str | None = None,
    outcome: str | None = None,
    subject: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    after_index: int | None = None,
) -> list[AuditEvent]:
    """Events matching every given filter, by ascending index.

    ``since`` is inclusive, ``until`` exclusive; page with ``after_index`` = the last index seen.
    ``subject`` is a subject pseudonym (the audit pseudonym), found through
    ``audit_event_subjects``.
    """
    if not 1 <= limit <= MAX_QUERY_LIMIT:
        raise InvalidAuditQueryError(f"limit must be between 1 and {MAX_QUERY_LIMIT}")
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidAuditQueryError(f"'{name}' must be timezone-aware")
    stmt = select(AuditEvent).order_by(AuditEvent.index).limit(limit)
    for column, value in (
        (AuditEvent.partner_id, partner_id),
        (AuditEvent.kind, kind),
        (AuditEvent.dataset_id, dataset_id),
        (AuditEvent.purpose, purpose),
        (AuditEvent.outcome, outcome),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if since is not None:
        stmt = stmt.where(AuditEvent.created_at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.created_at < until)
    if after_index is not None:
        stmt = stmt.where(AuditEvent.index > after_index)
    if subject is not None:
        named = select(AuditEventSubject.event_index).where(AuditEventSubject.subject == subject)
        if after_index is not None:
            named = named.where(AuditEventSubject.event_index > after_index)
        stmt = stmt.where(AuditEvent.index.in_(named))
    return list(session.scalars(stmt))


def get_event(session: Session, index: int) -> AuditEvent | None:
    return session.get(AuditEvent, index)


def log_size(session: Session) -> int:
    """The number of committed events visible to this session."""
    return _next_index(session.connection())


def leaf_hashes(session: Session, start: int = 0, end: int | None = None) -> list[bytes]:
    """Stored leaf hashes of indices ``[start, end)``; checks that they are gap-free."""
    stmt = select(AuditEvent.index, AuditEvent.leaf_hash).where(AuditEvent.index >= start)
    if end is not None:
        stmt = stmt.where(AuditEvent.index < end)
    out: list[bytes] = []
    expected = start
    for index, digest in session.execute(stmt.order_by(AuditEvent.index)):
        if index != expected:
            raise LogIntegrityError(f"the log has a gap at index {expected}")
        out.append(bytes(digest))
        expected += 1
    if end is not None and expected != end:
        raise LogIntegrityError(f"the log has a gap at index {expected}")
    return out


# --- signed tree heads


def _head_from_row(row: SignedTreeHead) -> TreeHead:
    return TreeHead(
        origin=row.origin,
        size=row.size,
        root_hash=row.root_hash,
        timestamp=row.timestamp,
        signature=row.signature,
        timestamp_signature=row.timestamp_signature,
        key_id=row.key_id,
        timestamp_key_id=row.timestamp_key_id,
    )


def _latest_head_row(session: Session, *, max_size: int | None = None) -> SignedTreeHead | None:
    stmt = select(SignedTreeHead).order_by(SignedTreeHead.size.desc(), SignedTreeHead.id.desc())
    if max_size is not None:
        stmt = stmt.where(SignedTreeHead.size <= max_size)
    return session.scalars(stmt.limit(1)).first()


def latest_tree_head(session: Session) -> TreeHead | None:
    row = _latest_head_row(session)
    return None if row is None else _head_from_row(row)


def tree_heads(
    session: Session, *, min_size: int = 0, max_size: int | None = None
) -> list[TreeHead]:
    """Signed heads with ``min_size <= size <= max_size``, oldest first."""
    stmt = select(SignedTreeHead).where(SignedTreeHead.size >= min_size)
    if max_size is not None:
        stmt = stmt.where(SignedTreeHead.size <= max_size)
    rows = session.scalars(stmt.order_by(SignedTreeHead.size, SignedTreeHead.id))
    return [_head_from_row(row) for row in rows]


def sign_tree_head(session: Session, signer: LogSigner) -> TreeHead:
    """Sign a head over every committed event and store it (the caller commits).

    Only the leaves appended since the latest stored head are hashed: that head's compact range
    is extended. The result is consistent with every earlier head by construction.
    """
    previous = _latest_head_row(session)
    if previous is None:
        frontier = CompactRange()
    else:
        try:
            frontier = CompactRange.from_bytes(previous.size, previous.frontier)
        except ValueError as exc:
            raise LogIntegrityError("a stored tree head has a malformed frontier") from exc
        if frontier.root() != previous.root_hash:
            raise LogIntegrityError("a stored tree head's frontier does not match its root")
    old_size = frontier.size
    # Read from the start of the first incomplete block, so its root can be stored too.
    block_start = old_size - old_size % TREE_BLOCK_SIZE
    leaves = leaf_hashes(session, block_start)
    frontier.extend(leaves[old_size - block_start :])
    _store_blocks(session, block_start, leaves)
    head = signer.sign_head(frontier.size, frontier.root(), utcnow())
    session.add(
        SignedTreeHead(
            origin=head.origin,
            size=head.size,
            root_hash=head.root_hash,
            timestamp=head.timestamp,
            key_id=head.key_id,
            timestamp_key_id=head.timestamp_key_id,
            signature=head.signature,
            timestamp_signature=head.timestamp_signature,
            checkpoint=head.note(),
            frontier=frontier.to_bytes(),
        )
    )
    session.flush()
    # Guard against a signing bug ever publishing a head the verifier would refuse.
    verify_checkpoint(head.note(), signer.public_key, signer.origin)
    return head


def _store_blocks(session: Session, start: int, leaves: Sequence[bytes]) -> None:
    """Store the roots of the complete blocks among ``leaves`` (which begin at block boundary
    ``start``), skipping blocks already stored."""
    first = start // TREE_BLOCK_SIZE
    count = len(leaves) // TREE_BLOCK_SIZE
    if not count:
        return
    rows = [
        {
            "block": first + i,
            "root_hash": root_hash(leaves[i * TREE_BLOCK_SIZE : (i + 1) * TREE_BLOCK_SIZE]),
        }
        for i in range(count)
    ]
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(pg_insert(_BLOCKS).on_conflict_do_nothing(), rows)
    elif conn.dialect.name == "sqlite":
        conn.execute(sqlite_insert(_BLOCKS).on_conflict_do_nothing(), rows)
    else:  # pragma: no cover - the hub runs on PostgreSQL or SQLite
        stored = set(session.scalars(select(TreeBlock.block).where(TreeBlock.block >= first)))
        conn.execute(insert(_BLOCKS), [r for r in rows if r["block"] not in stored])


def current_tree_head(session: Session, signer: LogSigner) -> TreeHead:
    """The latest signed head, signing a new one first if the log has grown since.

    Cheap: only the leaves appended since the latest head are hashed. Concurrent callers on
    PostgreSQL are serialised by an advisory lock (SQLite transactions already hold the write
    lock), so one size is signed once. The caller commits.
    """
    conn = session.connection()
    latest = _latest_head_row(session)
    if latest is not None and latest.size >= log_size(session):
        return _head_from_row(latest)
    if conn.dialect.name == "postgresql":
        _PG_ADVISORY_LOCK.rows(conn, {"key": AUDIT_SIGN_LOCK})
        latest = _latest_head_row(session)
        if latest is not None and latest.size >= log_size(session):
            return _head_from_row(latest)
    return sign_tree_head(session, signer)


def tree_head_of_size(session: Session, size: int) -> TreeHead:
    """The latest signed head of exactly ``size`` events; :class:`NoTreeHeadError` if none."""
    if size < 0:
        raise ProofRequestError("a tree size is a number >= 0")
    row = session.scalars(
        select(SignedTreeHead)
        .where(SignedTreeHead.size == size)
        .order_by(SignedTreeHead.id.desc())
        .limit(1)
    ).first()
    if row is None:
        raise NoTreeHeadError(f"no signed tree head of size {size}")
    return _head_from_row(row)


# --- proofs (computed from the stored leaf hashes)


class _StoredTree:
    """``MTH(D[a:b])`` for the stored log of ``size`` events, from the stored block roots where
    a range covers whole blocks and from the stored leaf hashes elsewhere."""

    def __init__(self, session: Session, size: int) -> None:
        visible = log_size(session)
        if size > visible:
            raise ProofRequestError(f"the log has {visible} events, fewer than {size}")
        self._session = session
        self._size = size
        complete = size // TREE_BLOCK_SIZE
        stmt = select(TreeBlock.block, TreeBlock.root_hash).where(TreeBlock.block < complete)
        self._blocks: dict[int, bytes] = {int(b): bytes(r) for b, r in session.execute(stmt)}
        missing = [b for b in range(complete) if b not in self._blocks]
        if missing:  # not signed yet (or never stored): hashed from the leaves, in one read
            lo, hi = missing[0] * TREE_BLOCK_SIZE, (missing[-1] + 1) * TREE_BLOCK_SIZE
            leaves = leaf_hashes(session, lo, hi)
            for b in missing:
                at = b * TREE_BLOCK_SIZE - lo
                self._blocks[b] = root_hash(leaves[at : at + TREE_BLOCK_SIZE])

    def leaves(self, start: int, end: int) -> list[bytes]:
        return leaf_hashes(self._session, start, end)

    def mth(self, start: int, end: int) -> bytes:
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        if start % TREE_BLOCK_SIZE == 0 and end % TREE_BLOCK_SIZE == 0:
            # Splits of a block-aligned range fall on block boundaries, so its MTH is the MTH
            # of its block roots taken as already-hashed leaves.
            blocks = self._blocks
            return root_hash(
                [blocks[b] for b in range(start // TREE_BLOCK_SIZE, end // TREE_BLOCK_SIZE)]
            )
        if n <= TREE_BLOCK_SIZE:
            return root_hash(self.leaves(start, end))
        k = 1 << ((n - 1).bit_length() - 1)
        return node_hash(self.mth(start, start + k), self.mth(start + k, end))


@dataclass(frozen=True, slots=True)
class InclusionProof:
    index: int
    size: int
    leaf_hash: bytes
    path: list[bytes]


def prove_inclusion(session: Session, index: int, size: int) -> InclusionProof:
    """The stored leaf hash of event ``index`` and RFC 9162 ``PATH(index, D[size])``."""
    if not 0 <= index < size:
        raise ProofRequestError(f"index {index} is not inside a tree of size {size}")
    tree = _StoredTree(session, size)
    return InclusionProof(
        index=index,
        size=size,
        leaf_hash=tree.leaves(index, index + 1)[0],
        path=inclusion_proof_with(tree.mth, index, size),
    )


def inclusion_proof(session: Session, index: int, size: int) -> list[bytes]:
    """RFC 9162 ``PATH(index, D[size])`` for the stored log."""
    return prove_inclusion(session, index, size).path


def consistency_proof(session: Session, old_size: int, new_size: int) -> list[bytes]:
    """RFC 9162 ``PROOF(old_size, D[new_size])`` for the stored log."""
    if not 0 <= old_size <= new_size:
        raise ProofRequestError(f"no consistency proof from size {old_size} to {new_size}")
    return consistency_proof_with(_StoredTree(session, new_size).mth, old_size, new_size)
