from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from hub.policy import build_bundle, load_bundle


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as archive:
        result = {}
        for member in archive.getmembers():
            extracted = archive.extractfile(member)
            assert extracted is not None
            result[member.name] = extracted.read()
        return result


def test_bundle_layout_and_manifest(policies_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle.tar.gz"
    revision = build_bundle(policies_dir, out)
    members = _members(out)
    manifest = json.loads(members["/.manifest"])
    assert manifest == {
        "revision": revision,
        "roots": ["tollhouse", "taxonomy", "tollhouse_bundle"],
    }
    assert revision == load_bundle(policies_dir).revision
    assert "/tollhouse/release/release.rego" in members
    assert "/taxonomy/purposes/data.json" in members
    assert json.loads(members["/tollhouse_bundle/data.json"]) == {"revision": revision}
    assert not any(name.endswith("_test.rego") for name in members)


def test_bundle_bytes_are_reproducible(policies_dir: Path, tmp_path: Path) -> None:
    build_bundle(policies_dir, tmp_path / "a.tar.gz")
    build_bundle(policies_dir, tmp_path / "b.tar.gz")
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()


def test_data_documents_mount_at_their_directory(policies_dir: Path) -> None:
    bundle = load_bundle(policies_dir)
    assert set(bundle.data) == {"taxonomy"}
    assert set(bundle.data["taxonomy"]) == {"purposes", "categories", "roles"}
    assert json.loads(bundle.data_json()) == bundle.data
    assert all(not module.path.endswith("_test.rego") for module in bundle.modules)
    assert bundle.tests and all(test.path.endswith("_test.rego") for test in bundle.tests)


def test_taxonomies_cover_the_brief(policies_dir: Path) -> None:
    taxonomy = load_bundle(policies_dir).data["taxonomy"]
    assert {
        "credit_assessment",
        "loan_origination",
        "collateral_monitoring",
        "fraud_prevention",
        "ubi_pricing",
        "claims_handling",
        "warranty",
        "recall",
        "regulatory_reporting",
        "marketing",
        "sales_reporting",
    } <= set(taxonomy["purposes"])
    sensitive = {name for name, c in taxonomy["categories"].items() if c["sensitive"]}
    assert sensitive == {"location_precise", "identity_document", "financial_account", "biometric"}
    for purpose in taxonomy["purposes"].values():
        assert set(purpose["fair_use"]) == {
            "max_duration_days",
            "max_data_range_days",
            "fetches_per_day",
        }


def test_bundle_is_a_valid_gzip_tar(policies_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "nested" / "bundle.tar.gz"
    build_bundle(policies_dir, out)
    with tarfile.open(fileobj=io.BytesIO(out.read_bytes()), mode="r:gz") as archive:
        assert all(member.mtime == 0 for member in archive.getmembers())
