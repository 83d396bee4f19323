from __future__ import annotations

import copy
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.policy import EmbeddedPolicyEngine
from tests.policy.servers import LoopbackServer

POLICIES_DIR = Path(__file__).resolve().parents[2] / "policies"

BASE_INPUT: dict[str, Any] = {
    "partner": {"id": "ptn_lender", "role": "lender", "jurisdiction": "CN"},
    "purpose": "credit_assessment",
    "agreement": {
        "id": "agr_1",
        "status": "active",
        "recipient": "ptn_lender",
        "purpose": "credit_assessment",
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2026-03-01T00:00:00Z",
        "fields": ["name", "vin", "income", "card", "id_number"],
        "cross_border": False,
    },
    "dataset": {
        "id": "ds_deals",
        "provider": "ptn_dealer",
        "fields": {
            "name": "identity",
            "vin": "vehicle_identifier",
            "income": "income",
            "card": "financial_account",
            "id_number": "identity_document",
        },
    },
    "consent": {
        "status": "active",
        "categories": [
            "identity",
            "vehicle_identifier",
            "income",
            "financial_account",
            "identity_document",
        ],
        "expires_at": "2026-12-31T00:00:00Z",
        "sensitive": True,
        "cross_border": False,
    },
    "subject": {"jurisdiction": "CN"},
    "now": "2026-02-01T00:00:00Z",
}


def make_input(**sections: Any) -> dict[str, Any]:
    """BASE_INPUT with whole sections replaced or, for dict values, shallow-merged."""
    result = copy.deepcopy(BASE_INPUT)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = {**result[key], **value}
        else:
            result[key] = value
    return result


@pytest.fixture(scope="session")
def policies_dir() -> Path:
    return POLICIES_DIR


@pytest.fixture(scope="session")
def engine() -> EmbeddedPolicyEngine:
    return EmbeddedPolicyEngine(POLICIES_DIR)


@pytest.fixture
def policies_copy(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(POLICIES_DIR, target)
    return target


@pytest.fixture(scope="session")
def policy_server() -> Iterator[LoopbackServer]:
    from hub.policy import load_bundle
    from hub.policy.opa_server import create_opa_app

    with LoopbackServer(create_opa_app(load_bundle(POLICIES_DIR))) as server:
        yield server
