"""Tables of the audit log: the events (the Merkle tree's leaves, in order), their subject
pseudonyms (a search index), signed tree heads and the witnesses' cosignatures of them.

Every table is append-only. ``audit_events.index`` is the leaf index: gap-free ``0..n-1``,
assigned under a lock by :func:`hub.audit.service.append_event`. ``canonical`` holds the exact
RFC 8785 bytes that were hashed into ``leaf_hash``; the other columns are copies of fields of the
event, kept only so that queries can use indexes. The bytes are the record; the columns are a view.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import (
    BigInteger,
    Connection,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.base import Base

# SQLite only auto-increments an INTEGER PRIMARY KEY.
_BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class AuditEvent(Base):
    """One decision (allowed or denied) of the hub, as a leaf of the log's Merkle tree."""

    __tablename__ = "audit_events"

    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(64))
    partner_id: Mapped[str | None] = mapped_column(String(64))
    dataset_id: Mapped[str | None] = mapped_column(String(64))
    purpose: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(32))
    request_id: Mapped[str | None] = mapped_column(String(64))
    canonical: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))

    __table_args__ = (
        Index("ix_audit_events_partner_created", "partner_id", "created_at"),
        Index("ix_audit_events_kind_created", "kind", "created_at"),
        Index("ix_audit_events_created_at", "created_at"),
    )

    def event(self) -> dict[str, Any]:
        """The stored event, decoded from its canonical bytes."""
        value = orjson.loads(self.canonical)
        if not isinstance(value, dict):  # pragma: no cover - append_event only stores objects
            raise TypeError("audit event is not a JSON object")
        return value


class AuditEventSubject(Base):
    """One subject pseudonym named by one event: the index behind ``?subject=`` queries.

    Filled by :func:`hub.audit.service.append_events` from the event's ``subjects`` and its
    ``decisions[].subjects``, in the same transaction. Deliberately no foreign key: the rows are
    a derived view of the canonical bytes, and tampering tests must be able to damage the log.
    """

    __tablename__ = "audit_event_subjects"

    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class SignedTreeHead(Base):
    """A tree head the log signed: size, root, time, and the C2SP checkpoint note carrying them.

    ``frontier`` is the compact range of the tree at ``size`` (the roots of its perfect subtrees,
    largest first, 32 bytes each), so the next head only hashes the leaves appended since.
    """

    __tablename__ = "tree_heads"

    id: Mapped[int] = mapped_column(_BigIntId, primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger, index=True)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    timestamp: Mapped[datetime]
    key_id: Mapped[bytes] = mapped_column(LargeBinary(4))
    timestamp_key_id: Mapped[bytes] = mapped_column(LargeBinary(4))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    timestamp_signature: Mapped[bytes] = mapped_column(LargeBinary(72))
    checkpoint: Mapped[str] = mapped_column(Text)
    frontier: Mapped[bytes] = mapped_column(LargeBinary)


class TreeBlock(Base):
    """The root of one complete block of ``TREE_BLOCK_SIZE`` leaves (a perfect subtree).

    Written when a head is signed, so that a proof reads about ``size / 1024`` block roots and
    a few leaf ranges instead of every leaf hash. Derived data: the leaves and signed heads are
    the record, and the export verifier never uses these rows.
    """

    __tablename__ = "audit_tree_blocks"

    block: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class Cosignature(Base):
    """A witness's C2SP ``tlog-cosignature`` (v1, Ed25519) of one signed tree head.

    ``line`` is the signature line as served with the checkpoint (``— <name> <base64>``). A
    witness name is bound to the first partner and key that used it.
    """

    __tablename__ = "audit_cosignatures"

    id: Mapped[int] = mapped_column(_BigIntId, primary_key=True, autoincrement=True)
    witness_name: Mapped[str] = mapped_column(String(255))
    witness_key: Mapped[str] = mapped_column(String(400))
    partner_id: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    timestamp: Mapped[datetime]
    line: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("witness_name", "size", name="uq_audit_cosignatures_witness_size"),
        Index("ix_audit_cosignatures_size", "size"),
    )


AUDIT_TABLES: list[Table] = [
    cast(Table, AuditEvent.__table__),
    cast(Table, AuditEventSubject.__table__),
    cast(Table, SignedTreeHead.__table__),
    cast(Table, TreeBlock.__table__),
    cast(Table, Cosignature.__table__),
]
"""The audit log's tables (for ``metadata.create_all(engine, tables=AUDIT_TABLES)`` in tests)."""


#: PostgreSQL: the next free index, read after the append lock is granted, in one round trip.
#: A ``VOLATILE`` SQL function takes a fresh snapshot for each of its statements (READ
#: COMMITTED), so the ``MAX`` sees the row of the transaction that held the lock before; one
#: statement taking the lock and reading the highest index could not (its snapshot predates
#: the wait).
NEXT_INDEX_FUNCTION = "tollhouse_audit_next_index"
NEXT_INDEX_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {NEXT_INDEX_FUNCTION}(lock_key bigint) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    SELECT pg_advisory_xact_lock(lock_key);
    SELECT COALESCE(MAX("index"), -1) + 1 FROM audit_events;
$$
"""


# Made wherever the table is (migrations create it in 0013; ``create_all`` in tests here).
@event.listens_for(AuditEvent.__table__, "after_create")
def _create_next_index_function(target: Table, connection: Connection, **_: Any) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(NEXT_INDEX_FUNCTION_SQL)


@event.listens_for(AuditEvent.__table__, "before_drop")
def _drop_next_index_function(target: Table, connection: Connection, **_: Any) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS {NEXT_INDEX_FUNCTION}(bigint)")
