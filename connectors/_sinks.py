"""Where pulled records go: JSONL and CSV files, or any SQLAlchemy database (upsert by key).

Each sink writes a page durably (fsync for files, a committed transaction for SQL) and returns a
position that the caller stores in its checkpoint. ``restore(position)`` rolls the sink back to a
checkpointed position before a pull resumes: files are truncated to the checkpointed size, so a
page written just before a crash is not kept twice; SQL needs nothing, as writes are upserts.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from ._checkpoint import fsync_dir
from ._models import Record

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["Sink", "SinkError", "open_sink"]


class SinkError(Exception):
    """The sink cannot take the records (bad spec, header mismatch, existing data...)."""


class Sink(Protocol):
    def restore(self, position: Any) -> None:
        """Roll back to ``position`` (None: the start of a new pull)."""

    def write(self, records: Sequence[Record]) -> Any:
        """Write ``records`` durably; return the position to checkpoint."""

    def close(self) -> None: ...


def open_sink(spec: str, agreement_id: str, fields: Sequence[str] = ()) -> Sink:
    """``jsonl:PATH``, ``csv:PATH`` or a SQLAlchemy URL such as ``sqlite:///pulled.db``."""
    kind, _, rest = spec.partition(":")
    if kind == "jsonl" and rest:
        return JsonlSink(Path(rest))
    if kind == "csv" and rest:
        return CsvSink(Path(rest), fields)
    if "://" in spec:
        return SqlSink(spec, agreement_id)
    raise SinkError(f"unknown sink {spec!r}: use jsonl:PATH, csv:PATH or a database URL")


class _FileSink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: io.BufferedRandom | None = None

    def restore(self, position: Any) -> None:
        size = int(position or 0)
        new = not self.path.exists()
        if position is None and not new and self.path.stat().st_size > 0:
            raise SinkError(f"{self.path} already has data and no checkpoint: pass --restart")
        self._file = open(self.path, "a+b")  # noqa: SIM115 - closed in close()
        if self._file.seek(0, os.SEEK_END) < size:
            raise SinkError(f"{self.path} is shorter than its checkpoint: it was changed")
        self._file.truncate(size)
        os.fsync(self._file.fileno())
        if new:
            fsync_dir(self.path.parent)
        self._opened(size)

    def _opened(self, size: int) -> None:
        pass

    def _append(self, data: bytes) -> int:
        assert self._file is not None, "restore() first"
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())
        return self._file.tell()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class JsonlSink(_FileSink):
    """One JSON object per line: ``{"record_key", "version", "subject", "fields"}``."""

    def write(self, records: Sequence[Record]) -> Any:
        return self._append(b"".join(orjson.dumps(r.to_json()) + b"\n" for r in records))


class CsvSink(_FileSink):
    """A header row, then ``record_key, version, subject`` and one column per field.

    The field columns are the agreement's fields (or the first page's); structured values are
    written as JSON, missing ones as empty cells.
    """

    FIXED = ("record_key", "version", "subject")

    def __init__(self, path: Path, fields: Sequence[str]) -> None:
        super().__init__(path)
        self._fields = list(fields)
        self._header: list[str] | None = None

    def _opened(self, size: int) -> None:
        if size:
            with open(self.path, newline="", encoding="utf-8") as f:
                self._header = next(csv.reader(f))

    def write(self, records: Sequence[Record]) -> Any:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if self._header is None:
            fields = self._fields or sorted({name for r in records for name in r.fields})
            self._header = [*self.FIXED, *fields]
            writer.writerow(self._header)
        columns = self._header[len(self.FIXED) :]
        known = set(columns)
        for r in records:
            extra = set(r.fields) - known
            if extra:
                raise SinkError(
                    f"record {r.record_key}: fields {sorted(extra)} not in the CSV header"
                )
            writer.writerow(
                [r.record_key, r.version, r.subject, *(_cell(r.fields.get(c)) for c in columns)]
            )
        return self._append(out.getvalue().encode("utf-8"))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def records_table(metadata: sa.MetaData, name: str = "tollhouse_records") -> sa.Table:
    """The SQL sink's table: one row per (agreement, record key), ``subject`` the pseudonym."""
    import sqlalchemy as sa

    return sa.Table(
        name,
        metadata,
        sa.Column("agreement_id", sa.String(200), primary_key=True),
        sa.Column("record_key", sa.String(200), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("subject", sa.String(200), nullable=False, index=True),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("pulled_at", sa.DateTime(timezone=True), nullable=False),
    )


class SqlSink:
    """A table keyed by (agreement_id, record_key); each page is upserted in one transaction."""

    def __init__(self, url: str, agreement_id: str, table: str = "tollhouse_records") -> None:
        import sqlalchemy as sa  # only SQL sinks pay for importing SQLAlchemy

        try:
            self.engine = sa.create_engine(url)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise SinkError(f"bad database URL: {exc}") from None
        self.agreement_id = agreement_id
        self.table = records_table(sa.MetaData(), table)

    def restore(self, position: Any) -> None:
        self.table.metadata.create_all(self.engine)

    def write(self, records: Sequence[Record]) -> Any:
        if not records:
            return None
        now = datetime.now(UTC)
        rows = {
            r.record_key: {
                "agreement_id": self.agreement_id,
                "record_key": r.record_key,
                "version": r.version,
                "subject": r.subject,
                "fields": dict(r.fields),
                "pulled_at": now,
            }
            for r in records
        }
        with self.engine.begin() as conn:
            self._upsert(conn, list(rows.values()))
        return None

    def _upsert(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        dialect = conn.dialect.name
        keys = ["agreement_id", "record_key"]
        if dialect in ("sqlite", "postgresql"):
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
            stmt = insert(self.table)
            updates = {c: stmt.excluded[c] for c in ("version", "subject", "fields", "pulled_at")}
            conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=updates), rows)
            return
        # Any other database: delete then insert, inside the same transaction.
        t = self.table
        conn.execute(
            t.delete().where(
                t.c.agreement_id == self.agreement_id,
                t.c.record_key.in_([r["record_key"] for r in rows]),
            )
        )
        conn.execute(t.insert(), rows)

    def close(self) -> None:
        self.engine.dispose()
