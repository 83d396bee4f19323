"""Where a provider's rows come from: CSV/JSONL files, a SQL table or query, or an HTTP JSON API.

Every source yields ``(number, row)`` pairs, a row being a dict of column values or a
:class:`RowError` (numbered by file line, SQL result row or HTTP item, from 1). ``publish``
reads a source twice (validate everything, then send), so SQL and HTTP sources are read once
into memory and replayed: both passes see the same rows, and nothing is half-published because
the data changed between them.

SQL sources can be incremental: with ``updated_column`` and a state file, only rows whose column
is greater than the value stored by the last successful run are read, and the new high-water
mark is stored after the whole run is published (``commit``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from ._mapping import MappingError, Row, RowError, read_source

__all__ = ["Source", "open_source"]

MAX_HTTP_PAGES = 10_000


@dataclass
class Source:
    """A readable source: ``rows()`` may be called more than once; ``commit()`` after success."""

    spec: str
    rows: Callable[[], Iterator[tuple[int, Row]]]
    unit: str = "line"  # what row numbers count: file lines, SQL rows or HTTP items
    commit: Callable[[], None] = field(default=lambda: None)


def open_source(
    spec: str,
    *,
    table: str | None = None,
    query: str | None = None,
    updated_column: str | None = None,
    state: Path | None = None,
    items_key: str | None = None,
    headers: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Source:
    """``csv:PATH``, ``jsonl:PATH``, an http(s) URL (JSON) or a SQLAlchemy database URL."""
    scheme = spec.partition(":")[0].lower()
    if (table or query or updated_column) and (scheme in ("csv", "jsonl", "http", "https")):
        raise MappingError("--table, --query and --updated-column are for SQL sources")
    if scheme in ("csv", "jsonl"):
        read_source(spec)  # fail early on a bad spec or a missing file
        return Source(spec, lambda: read_source(spec))
    if scheme in ("http", "https"):
        cached = list(_read_http(spec, items_key, dict(headers or {}), transport))
        return Source(spec, lambda: iter(cached), "item")
    if "://" in spec:
        return _sql_source(spec, table, query, updated_column, state)
    raise MappingError(
        f"unknown source {spec!r}: use csv:PATH, jsonl:PATH, an http(s) URL or a database URL"
    )


# -- HTTP --------------------------------------------------------------------------------------


def _read_http(
    url: str,
    items_key: str | None,
    headers: dict[str, str],
    transport: httpx.BaseTransport | None,
) -> Iterator[tuple[int, Row]]:
    """Items of a JSON array, or of ``{"items": [...], "next": URL}`` pages followed to the end."""
    number = 0
    seen: set[str] = set()
    with httpx.Client(transport=transport, headers=headers, timeout=30.0) as client:
        next_url: str | None = url
        while next_url is not None:
            if next_url in seen or len(seen) >= MAX_HTTP_PAGES:
                raise MappingError(f"{url}: pagination loops or never ends")
            seen.add(next_url)
            try:
                response = client.get(next_url)
                response.raise_for_status()
                body = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise MappingError(f"{next_url}: {exc}") from None
            items, next_url = _page_of(body, items_key, next_url)
            for item in items:
                number += 1
                if isinstance(item, dict):
                    yield number, item
                else:
                    yield number, RowError(number, "not a JSON object", "item")


def _page_of(body: Any, items_key: str | None, url: str) -> tuple[Sequence[Any], str | None]:
    if isinstance(body, list) and items_key is None:
        return body, None
    if not isinstance(body, dict):
        raise MappingError(f"{url}: expected a JSON array or an object with {items_key or 'items'}")
    items = body.get(items_key or "items")
    if not isinstance(items, list):
        raise MappingError(f"{url}: no list under {items_key or 'items'!r}")
    following = body.get("next")
    if following is not None and not isinstance(following, str):
        raise MappingError(f"{url}: 'next' is not a URL")
    return items, str(httpx.URL(url).join(following)) if following else None


# -- SQL ---------------------------------------------------------------------------------------


def _sql_source(
    url: str,
    table: str | None,
    query: str | None,
    updated_column: str | None,
    state: Path | None,
) -> Source:
    import sqlalchemy as sa  # only SQL sources pay for importing SQLAlchemy

    if (table is None) == (query is None):
        raise MappingError("a SQL source needs exactly one of --table and --query")
    if updated_column is not None and (table is None or state is None):
        raise MappingError("--updated-column needs --table and --state")
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise MappingError(f"bad database URL: {exc}") from None
    since = _load_mark(state, updated_column) if updated_column and state else None
    try:
        with engine.connect() as conn:
            if table is not None:
                schema, _, name = table.rpartition(".")
                reflected = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=conn)
                stmt: sa.Executable
                if updated_column is not None:
                    if updated_column not in reflected.c:
                        raise MappingError(f"{table} has no column {updated_column!r}")
                    column = reflected.c[updated_column]
                    select = sa.select(reflected).order_by(column)
                    stmt = select.where(column > since) if since is not None else select
                else:
                    stmt = sa.select(reflected)
            else:
                assert query is not None
                stmt = sa.text(query)
            result = conn.execute(stmt)
            columns = list(result.keys())
            rows = [dict(zip(columns, r, strict=True)) for r in result]
    except sa.exc.NoSuchTableError:
        raise MappingError(f"no table {table!r} in the source database") from None
    except sa.exc.SQLAlchemyError as exc:
        raise MappingError(f"the source query failed: {exc.__class__.__name__}: {exc}") from None
    finally:
        engine.dispose()
    cached: list[tuple[int, Row]] = list(enumerate(rows, 1))

    def commit() -> None:
        if updated_column is None or state is None or not rows:
            return
        mark = max(r[updated_column] for r in rows if r[updated_column] is not None)
        _save_mark(state, updated_column, mark)

    return Source(url, lambda: iter(cached), "row", commit)


def _load_mark(path: Path, column: str) -> Any:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        raise MappingError(f"{path}: not a source state file") from None
    if not isinstance(data, dict) or data.get("updated_column") != column:
        raise MappingError(f"{path}: state of another source (column {data.get('updated_column')})")
    kind, value = data.get("type"), data.get("since")
    try:
        if kind == "datetime":
            return datetime.fromisoformat(str(value))
        if kind == "date":
            return date.fromisoformat(str(value))
        if kind == "decimal":
            return Decimal(str(value))
    except (ArithmeticError, ValueError):
        raise MappingError(f"{path}: not a source state file") from None
    return value


def _save_mark(path: Path, column: str, mark: Any) -> None:
    if isinstance(mark, datetime):
        kind, value = "datetime", mark.isoformat()
    elif isinstance(mark, date):
        kind, value = "date", mark.isoformat()
    elif isinstance(mark, Decimal):
        kind, value = "decimal", str(mark)
    else:
        kind, value = type(mark).__name__, mark
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    with os.fdopen(fd, "w") as f:
        json.dump({"updated_column": column, "type": kind, "since": value}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
