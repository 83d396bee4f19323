"""Whatever a partner or the operator sends, the registry answers 2xx or 4xx, never 5xx."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.hub import HubEnv

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
DATES = st.sampled_from(
    ["2026-01-01T00:00:00Z", "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-12:00",
     "2026-13-45T00:00:00Z", "yesterday", 5]
)  # fmt: skip
AGREEMENT = st.fixed_dictionaries(
    {},
    optional={
        "dataset_id": st.sampled_from(["dealer-huadong.sales-deals", "x", ""])
        | st.text(max_size=5),
        "recipient_id": st.text(max_size=8) | st.none(),
        "purpose": st.sampled_from(["credit_assessment", "ubi_pricing", ""]) | st.text(max_size=5),
        "fields": st.lists(st.sampled_from(["vin", "price_cny", "nope"]), max_size=4) | JSON,
        "retention_days": st.integers(-5, 10**12) | JSON,
        "valid_from": DATES,
        "valid_until": DATES,
        "cross_border": JSON,
        "legal_basis": st.sampled_from(["consent", "contract", "x"]),
        "extra": JSON,
    },
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=AGREEMENT)
def test_proposals_never_5xx(hub: HubEnv, body: dict[str, Any]) -> None:
    response = hub.client.post("/v1/agreements", json=body, headers=hub.auth("lender-pearl"))
    assert response.status_code < 500, response.text


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(schema=JSON, ident=st.text(max_size=12))
def test_dataset_declarations_never_5xx(hub: HubEnv, schema: Any, ident: str) -> None:
    response = hub.client.post(
        "/v1/datasets",
        json={"id": ident, "title": "t", "json_schema": schema},
        headers=hub.auth("dealer-nanfang"),
    )
    assert response.status_code < 500, response.text


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=JSON, path=st.sampled_from(["keys", "secrets", "suspension"]))
def test_admin_bodies_never_5xx(hub: HubEnv, body: Any, path: str) -> None:
    pid = hub.partner("dealer-huadong")["partner_id"]
    method = "PUT" if path == "keys" else "POST"
    response = hub.client.request(
        method, f"/v1/partners/{pid}/{path}", json=body, headers=hub.auth("operator")
    )
    assert response.status_code < 500, response.text
