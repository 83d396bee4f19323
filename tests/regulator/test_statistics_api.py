"""The regulator's statistics API: accesses per partner, purpose and day; denials by reason;
subject counts k-anonymous; every bad range a 422 problem."""

from __future__ import annotations

from typing import Any

import pytest

from tests.regulator.helpers import DATASET, LENDER, REGULATOR, pull
from tests.support.hub import HubEnv

ACCESSES = "/v1/audit/statistics/accesses"
DENIALS = "/v1/audit/statistics/denials"


def pid(hub: HubEnv, ref: str = LENDER) -> str:
    partner_id: str = hub.partner(ref)["partner_id"]
    return partner_id


def get(hub: HubEnv, url: str, **params: Any) -> dict[str, Any]:
    response = hub.client.get(url, params=params, headers=hub.auth(REGULATOR))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_accesses_count_requests_per_partner_purpose_and_day(hub: HubEnv) -> None:
    before = get(hub, ACCESSES, partner_id=pid(hub))
    pull(hub)
    pull(hub)
    after = get(hub, ACCESSES, partner_id=pid(hub))
    assert after["requests"] == before["requests"] + 2
    assert after["k"] == hub.settings.statistics_min_k
    cells = after["cells"]
    assert cells and all(c["partner_id"] == pid(hub) for c in cells)
    assert {"day", "purpose", "requests", "events", "denied_requests", "subjects"} <= set(cells[0])
    for cell in cells:
        assert cell["subjects"] is None or cell["subjects"] >= after["k"]
        assert cell["events"] >= cell["requests"]


def test_subject_counts_are_k_anonymous(hub: HubEnv) -> None:
    pull(hub)
    loose = get(hub, ACCESSES)
    assert any(c["subjects"] is not None for c in loose["cells"]), loose
    strict = get(hub, ACCESSES, k=10_000)
    assert all(c["subjects"] is None for c in strict["cells"])
    assert strict["suppressed_cells"] >= 1
    # Suppressed subjects are summed only when the sum is itself at least k.
    assert strict["suppressed_subjects"] is None or strict["suppressed_subjects"] >= 10_000
    # Request counts are not about people: never suppressed.
    assert strict["requests"] == loose["requests"]


def test_denials_by_reason(hub: HubEnv) -> None:
    # A pull under someone else's agreement is refused and logged with a reason.
    other = hub.agreement("lender-pearl", DATASET)
    refused = hub.client.get(f"/v1/agreements/{other}/records", headers=hub.auth(LENDER))
    assert refused.status_code == 404
    pull(hub, limit=60)  # subjects without consent are denied by the policy, with reasons
    body = get(hub, DENIALS)
    reasons = {r["reason"]: r for r in body["reasons"]}
    assert "agreement.not_recipient" in reasons, reasons
    assert reasons["agreement.not_recipient"]["subjects"] is None  # no subject involved
    assert body["denials"] == sum(r["denials"] for r in body["reasons"])
    for r in body["reasons"]:
        assert r["subjects"] is None or r["subjects"] >= body["k"]
    only_lender = get(hub, DENIALS, partner_id=pid(hub))
    assert "agreement.not_recipient" in {r["reason"] for r in only_lender["reasons"]}
    nobody = get(hub, DENIALS, partner_id="nobody")
    assert nobody["reasons"] == [] and nobody["denials"] == 0


@pytest.mark.parametrize("url", [ACCESSES, DENIALS])
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2026-11-01T00:00:00"}, "since"),  # no timezone
        ({"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"}, "since"),
        ({"since": "2020-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
        ({"since": "yesterday"}, "since"),
        ({"k": "1"}, "k"),
        ({"k": "2"}, None),  # below this hub's minimum (3 in the tests)
        ({"partner_id": "x" * 65}, "partner_id"),
    ],
)
def test_bad_ranges_are_422_problems(
    hub: HubEnv, url: str, params: dict[str, str], field: str | None
) -> None:
    response = hub.client.get(url, params=params, headers=hub.auth(REGULATOR))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if field:
        assert field in {e["field"] for e in response.json()["errors"]}


@pytest.mark.parametrize("url", [ACCESSES, DENIALS])
def test_only_auditors(hub: HubEnv, url: str) -> None:
    assert hub.client.get(url).status_code == 401
    response = hub.client.get(url, headers=hub.auth(LENDER))
    assert response.status_code == 403
    assert response.json()["type"].endswith("/insufficient-scope")


def test_openapi_describes_the_routes(hub: HubEnv) -> None:
    paths = hub.client.get("/openapi.json").json()["paths"]
    for path in (ACCESSES, DENIALS, "/v1/audit/subjects/lookup"):
        operation = next(iter(paths[path].values()))
        assert operation["summary"] and operation["description"]
