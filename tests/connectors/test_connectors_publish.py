"""``connect publish``: mapping, row validation with line numbers, batches, idempotent reruns."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from connectors import PublishRecord, Subject
from connectors._mapping import MappingError, RecordMapping, RowError, read_source
from connectors.cli import app
from tests.connectors.fakehub import FakeHub, problem, serve

runner = CliRunner()

MAPPING = """
record_key = "contract_no"
version = "rev"

[subject]
id_number = "national_id"
vin = "vin"

[fields]
make = "vehicle_make"
income = { column = "monthly_income", type = "float", required = true }
first_payment = { column = "first_due", type = "date" }
"""

HEADER = "contract_no,rev,national_id,vin,vehicle_make,monthly_income,first_due\n"


@pytest.fixture
def url(hub: FakeHub) -> Iterator[str]:
    with serve(hub) as base:
        yield base


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    path = tmp_path / "mapping.toml"
    path.write_text(MAPPING)
    return path


def csv_rows(n: int) -> str:
    return "".join(
        f"K{i},1,11010519491231002X,,BYD,{1000 + i},2026-02-0{1 + i % 9}\n" for i in range(n)
    )


def publish_args(url: str, source: str, mapping: Path, *extra: str) -> list[str]:
    return [
        "publish", "--hub", url, "--client-id", "dealer-1", "--client-secret", "s3cret:with spaces",
        "--dataset", "loans", "--source", source, "--mapping", str(mapping), *extra,
    ]  # fmt: skip


def posts(hub: FakeHub) -> list[httpx.Request]:
    return [r for r in hub.requests if r.url.path == "/v1/datasets/loans/records"]


def test_mapping_maps_a_row() -> None:
    fields = {"n": {"column": "n", "type": "int"}, "ok": {"column": "ok", "type": "bool"}}
    m = RecordMapping(
        {"record_key": "k", "version": 3, "subject": {"mobile": "m"}, "fields": fields}
    )
    record, errors = m.map_row({"k": " A1 ", "m": "+86 138", "n": "42", "ok": "yes"})
    assert errors == []
    assert record == PublishRecord("A1", 3, Subject(mobile="+86 138"), {"n": 42, "ok": True})


def test_mapping_maps_an_email_column() -> None:
    m = RecordMapping({"record_key": "k", "version": 1, "subject": {"email": "mail"}})
    record, errors = m.map_row({"k": "A1", "mail": " Li.Wei@163.com "})
    assert errors == []
    assert record == PublishRecord("A1", 1, Subject(email="Li.Wei@163.com"), {})
    assert record.to_json()["subject"] == {"email": "Li.Wei@163.com"}
    _, missing = m.map_row({"k": "A2", "mail": ""})
    assert missing == ["subject: no identifier in columns 'mail'"]


def test_subject_with_an_email_serializes() -> None:
    assert Subject(email="li.wei@163.com").to_json() == {"email": "li.wei@163.com"}
    both = Subject(mobile="+8613912873645", email="li.wei@163.com")
    assert both.to_json() == {"mobile": "+8613912873645", "email": "li.wei@163.com"}
    assert Subject().to_json() == {}


V = {"record_key": "k", "version": 1, "subject": {"vin": "v"}}


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {**V, "version": True},
        {**V, "subject": {}},
        {**V, "subject": {"passport": "e"}},
        {**V, "fields": {"a": {"type": "int"}}},
        {**V, "fields": {"a": {"column": "a", "type": "uuid"}}},
        {**V, "fields": {"a": {"column": "a", "required": "yes"}}},
    ],
)
def test_bad_mappings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(MappingError):
        RecordMapping(bad)


def test_publish_csv_in_batches_and_rerun_idempotently(
    url: str, hub: FakeHub, tmp_path: Path, mapping: Path
) -> None:
    source = tmp_path / "loans.csv"
    source.write_text(HEADER + csv_rows(5))
    args = publish_args(url, f"csv:{source}", mapping, "--batch-size", "2")
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Published 5 records in 3 batches: created 5, unchanged 0" in result.stdout
    assert [len(json.loads(r.content)["records"]) for r in posts(hub)] == [2, 2, 1]
    assert hub.stored["K3"] == {
        "record_key": "K3",
        "version": 1,
        "subject": {"id_number": "11010519491231002X"},
        "fields": {"make": "BYD", "income": 1003.0, "first_payment": "2026-02-04"},
    }
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "created 0, unchanged 5" in again.stdout


def test_bad_rows_are_reported_with_line_numbers_and_nothing_is_sent(
    url: str, hub: FakeHub, tmp_path: Path, mapping: Path
) -> None:
    source = tmp_path / "loans.csv"
    rows = csv_rows(5).splitlines(keepends=True)
    rows[2] = "K2,1,11010519491231002X,,BYD,lots,2026-02-01\n"  # line 4 of the file
    rows[4] = "K4,x,,,BYD,,2026-13-01\n"  # line 6: four problems
    rows.append("K1,2,,VIN1,BYD,1,\n")  # line 7: duplicate key
    source.write_text(HEADER + "".join(rows))
    result = runner.invoke(app, publish_args(url, f"csv:{source}", mapping))
    assert result.exit_code == 2
    out = result.output
    assert "line 4: fields.income: column 'monthly_income' is not a float: 'lots'" in out
    assert "line 6: version: column 'rev' is not an integer: 'x'" in out
    assert "line 6: subject: no identifier" in out
    assert "line 6: fields.income: column 'monthly_income' is required" in out
    assert "line 6: fields.first_payment: column 'first_due' is not a date" in out
    assert "line 7: record_key 'K1' already on line 3" in out
    assert "6 row errors" in out and "nothing was published" in out
    assert posts(hub) == [] and hub.requests == []


def test_jsonl_source_and_bad_json_lines(tmp_path: Path, mapping: Path) -> None:
    source = tmp_path / "loans.jsonl"
    good = {"contract_no": "A", "rev": 2, "vin": "V1", "monthly_income": 12.5}
    source.write_text(json.dumps(good) + "\n\n{oops\n[1]\n")
    rows = list(read_source(f"jsonl:{source}"))
    assert rows[0] == (1, good)
    assert [(line, type(r)) for line, r in rows[1:]] == [(3, RowError), (4, RowError)]
    result = runner.invoke(
        app, publish_args("http://unused", f"jsonl:{source}", mapping, "--dry-run")
    )
    assert result.exit_code == 2
    assert (
        "line 3: not valid JSON" in result.output and "line 4: not a JSON object" in result.output
    )
    source.write_text(json.dumps(good) + "\n")
    result = runner.invoke(
        app, publish_args("http://unused", f"jsonl:{source}", mapping, "--dry-run")
    )
    assert result.exit_code == 0 and "1 rows valid" in result.stdout


def test_hub_validation_errors_point_at_source_lines(
    url: str, hub: FakeHub, tmp_path: Path, mapping: Path
) -> None:
    source = tmp_path / "loans.csv"
    source.write_text(HEADER + csv_rows(3) + "K9,1,X,,BYD,-5,\n")  # valid here, refused by the hub
    result = runner.invoke(app, publish_args(url, f"csv:{source}", mapping, "--batch-size", "2"))
    assert result.exit_code == 1
    assert "line 5: fields.income: a non-negative number" in result.output
    assert "batch 2 (lines 4-5) refused" in result.output
    assert sorted(hub.stored) == ["K0", "K1"]  # batch 1 went in; batch 2 wholly refused


def test_payload_too_large_splits_the_batch(
    url: str, hub: FakeHub, tmp_path: Path, mapping: Path
) -> None:
    hub.fail("/v1/datasets", problem(413, "payload-too-large"))
    source = tmp_path / "loans.csv"
    source.write_text(HEADER + csv_rows(4))
    result = runner.invoke(app, publish_args(url, f"csv:{source}", mapping))
    assert result.exit_code == 0, result.output
    assert [len(json.loads(r.content)["records"]) for r in posts(hub)] == [4, 2, 2]
    assert len(hub.stored) == 4
