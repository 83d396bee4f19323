"""``connect publish`` from a SQL table or query and from an HTTP JSON API (against the fake hub):
per-row errors numbered by row or item, nothing half-published, incremental SQL runs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from connectors._mapping import MappingError
from connectors._sources import open_source
from connectors.cli import app
from tests.connectors.fakehub import FakeHub, serve
from tests.connectors.test_connectors_publish import MAPPING, posts, publish_args

runner = CliRunner()


@pytest.fixture
def url(hub: FakeHub) -> Iterator[str]:
    with serve(hub) as base:
        yield base


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    path = tmp_path / "mapping.toml"
    path.write_text(MAPPING)
    return path


def row(i: int, **overrides: Any) -> dict[str, Any]:
    return {
        "contract_no": f"K{i}", "rev": 1, "national_id": "11010519491231002X", "vin": None,
        "vehicle_make": "BYD", "monthly_income": 1000 + i, "first_due": "2026-02-01",
    } | overrides  # fmt: skip


def published_keys(hub: FakeHub) -> list[str]:
    return [r["record_key"] for p in posts(hub) for r in json.loads(p.content)["records"]]


# -- HTTP --------------------------------------------------------------------------------------


@contextmanager
def json_api(items: list[Any], page_size: int = 100) -> Iterator[str]:
    """``GET /items?page=N``: ``{"items": [...], "next": "/items?page=N+1"}`` until the end."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            query = parse_qs(urlsplit(self.path).query)
            page = int(query.get("page", ["1"])[0])
            chunk = items[(page - 1) * page_size : page * page_size]
            more = page * page_size < len(items)
            body = json.dumps(
                {"items": chunk, "next": f"/items?page={page + 1}" if more else None}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/items"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_publish_from_a_paginated_http_json_source(hub: FakeHub, url: str, mapping: Path) -> None:
    with json_api([row(i) for i in range(250)]) as api:
        result = runner.invoke(
            app, publish_args(url, api, mapping, "--batch-size", "100"), catch_exceptions=False
        )
    assert result.exit_code == 0, result.output
    assert "Published 250 records in 3 batches" in result.stdout
    assert published_keys(hub) == [f"K{i}" for i in range(250)]


def test_http_source_reports_bad_items_and_publishes_nothing(
    hub: FakeHub, url: str, mapping: Path
) -> None:
    items: list[Any] = [row(i) for i in range(150)]
    items[6] = row(6, monthly_income="plenty")
    items[120] = ["not", "an", "object"]
    with json_api(items) as api:
        result = runner.invoke(app, publish_args(url, api, mapping))
    assert result.exit_code == 2
    assert "item 7: fields.income: column 'monthly_income' is not a float" in result.stderr
    assert "item 121: not a JSON object" in result.stderr
    assert "2 row errors" in result.stderr
    assert posts(hub) == []


def test_http_source_with_an_items_key_and_a_plain_array() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/array":
            return httpx.Response(200, json=[row(1), row(2)])
        return httpx.Response(200, json={"data": [row(3)]})

    transport = httpx.MockTransport(handler)
    plain = open_source("http://api.test/array", transport=transport)
    assert [n for n, _ in plain.rows()] == [1, 2]
    keyed = open_source("http://api.test/wrapped", items_key="data", transport=transport)
    assert [r["contract_no"] for _, r in keyed.rows() if isinstance(r, dict)] == ["K3"]
    with pytest.raises(MappingError, match="no list under 'items'"):
        open_source("http://api.test/wrapped", transport=transport)


# -- SQL ---------------------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[str, sa.Table, sa.Engine]]:
    url = f"sqlite:///{tmp_path / 'provider.db'}"
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    table = sa.Table(
        "contracts", metadata,
        sa.Column("contract_no", sa.String(20), primary_key=True),
        sa.Column("rev", sa.Integer), sa.Column("national_id", sa.String(20)),
        sa.Column("vin", sa.String(20)), sa.Column("vehicle_make", sa.String(20)),
        sa.Column("monthly_income", sa.Numeric(12, 2)), sa.Column("first_due", sa.Date),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
    )  # fmt: skip
    metadata.create_all(engine)
    yield url, table, engine
    engine.dispose()


def sql_row(i: int, when: datetime, **overrides: Any) -> dict[str, Any]:
    base = row(i, first_due=datetime(2026, 2, 1).date(), updated_at=when)
    return base | overrides


def test_publish_from_a_sql_table_and_a_query(
    hub: FakeHub, url: str, mapping: Path, db: tuple[str, sa.Table, sa.Engine]
) -> None:
    db_url, table, engine = db
    now = datetime(2026, 3, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(table.insert(), [sql_row(i, now) for i in range(30)])
    result = runner.invoke(app, publish_args(url, db_url, mapping, "--table", "contracts"))
    assert result.exit_code == 0, result.output
    assert "Published 30 records" in result.stdout
    first = json.loads(posts(hub)[0].content)["records"][0]
    assert first["fields"] == {"make": "BYD", "income": 1000.0, "first_payment": "2026-02-01"}

    query = "select * from contracts where monthly_income >= 1020 order by contract_no"
    result = runner.invoke(app, publish_args(url, db_url, mapping, "--query", query, "--dry-run"))
    assert result.exit_code == 0, result.output
    assert "10 rows valid" in result.stdout


def test_sql_source_reports_bad_rows_by_number(
    hub: FakeHub, url: str, mapping: Path, db: tuple[str, sa.Table, sa.Engine]
) -> None:
    db_url, table, engine = db
    now = datetime(2026, 3, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            table.insert(),
            [sql_row(0, now), sql_row(1, now, national_id=None), sql_row(2, now, rev=None)],
        )
    query = "select * from contracts order by contract_no"
    result = runner.invoke(app, publish_args(url, db_url, mapping, "--query", query))
    assert result.exit_code == 2
    assert "row 2: subject: no identifier" in result.stderr
    assert "row 3: version: column 'rev' is not an integer" in result.stderr
    assert posts(hub) == []


def test_incremental_sql_source_publishes_only_newer_rows(
    hub: FakeHub, url: str, mapping: Path, db: tuple[str, sa.Table, sa.Engine], tmp_path: Path
) -> None:
    db_url, table, engine = db
    state = tmp_path / "state.json"
    first = datetime(2026, 3, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(table.insert(), [sql_row(i, first) for i in range(5)])
    args = publish_args(
        url, db_url, mapping, "--table", "contracts", "--updated-column", "updated_at",
        "--state", str(state),
    )  # fmt: skip
    assert "Published 5 records" in runner.invoke(app, args).stdout
    assert "Published 0 records" in runner.invoke(app, args).stdout
    with engine.begin() as conn:
        conn.execute(table.insert(), [sql_row(9, first + timedelta(hours=1))])
        conn.execute(table.update().where(table.c.contract_no == "K1").values(
            rev=2, updated_at=first + timedelta(hours=2)))  # fmt: skip
    result = runner.invoke(app, args)
    assert "Published 2 records" in result.stdout, result.output
    assert published_keys(hub)[-2:] == ["K9", "K1"]  # in updated_at order


@pytest.mark.parametrize(
    ("spec", "options", "message"),
    [
        ("sqlite:///x.db", {}, "exactly one of --table and --query"),
        ("sqlite:///x.db", {"table": "t", "query": "select 1"}, "exactly one"),
        ("sqlite:///x.db", {"query": "select 1", "updated_column": "u"}, "needs --table"),
        ("csv:x.csv", {"table": "t"}, "are for SQL sources"),
        ("ftp:x", {}, "unknown source"),
    ],
)
def test_bad_source_options_are_refused(
    spec: str, options: dict[str, Any], message: str, tmp_path: Path
) -> None:
    with pytest.raises(MappingError, match=message):
        open_source(spec.replace("x.db", str(tmp_path / "x.db")), **options)


def test_missing_table_is_a_clear_error(db: tuple[str, sa.Table, sa.Engine]) -> None:
    with pytest.raises(MappingError, match="no table 'nope'"):
        open_source(db[0], table="nope")
