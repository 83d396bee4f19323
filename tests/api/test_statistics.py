"""The regulator's statistics API publishes only k-anonymous groups."""

from __future__ import annotations

from tests.support.hub import HubEnv

DATASET = "dealer-huadong.loan-applications"


def test_counts_by_city_and_month_publish_only_groups_of_k(hub: HubEnv) -> None:
    response = hub.client.get(
        f"/v1/statistics/datasets/{DATASET}/counts",
        params=[("by", "address"), ("k", "3")],
        headers=hub.auth("regulator-fsr"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["groups"], "the demo has cities with at least 3 applications"
    assert all(g["count"] >= 3 for g in body["groups"])
    assert all("区" not in g["values"]["address"] for g in body["groups"])


def test_identifying_dimension_is_422_and_k_below_the_floor_too(hub: HubEnv) -> None:
    auth = hub.auth("regulator-fsr")
    by_id = hub.client.get(
        f"/v1/statistics/datasets/{DATASET}/counts", params={"by": "id_number"}, headers=auth
    )
    assert by_id.status_code == 422
    tiny = hub.client.get(
        f"/v1/statistics/datasets/{DATASET}/counts",
        params={"by": "applied_on", "k": 2},
        headers=auth,
    )
    assert tiny.status_code == 422


def test_partners_cannot_read_statistics(hub: HubEnv) -> None:
    response = hub.client.get(
        f"/v1/statistics/datasets/{DATASET}/counts",
        params={"by": "applied_on"},
        headers=hub.auth("lender-jinqiao"),
    )
    assert response.status_code == 403
