"""Every problem+json the hub answers maps to its typed exception."""

from __future__ import annotations

import httpx
import pytest

import connectors as c
from connectors import HubClient
from tests.connectors.fakehub import FakeHub, problem

CASES = [
    (401, "unauthorized", c.Unauthorized),
    (403, "forbidden", c.Forbidden),
    (403, "insufficient-scope", c.InsufficientScope),
    (403, "consent-required", c.ConsentRequired),
    (404, "not-found", c.NotFound),
    (409, "conflict", c.Conflict),
    (413, "payload-too-large", c.PayloadTooLarge),
    (422, "validation-failed", c.ValidationFailed),
    (429, "rate-limited", c.RateLimited),
    (400, "invalid-cursor", c.InvalidCursor),
    # unknown slugs fall back to the class for the status
    (400, "something-new", c.BadRequest),
    (403, "something-new", c.Forbidden),
    (404, "gone-fishing", c.NotFound),
    (410, "gone", c.ProblemError),
    (500, "internal", c.ServerError),
    (503, "maintenance", c.ServerError),
]


@pytest.mark.parametrize(("status", "slug", "cls"), CASES)
def test_problem_maps_to_exception(
    client: HubClient, hub: FakeHub, status: int, slug: str, cls: type[c.ProblemError]
) -> None:
    # Enough faults to outlast the retries for retryable statuses.
    hub.fail("/v1/agreements", problem(status, slug, "T", detail="d", instance="/x"), times=9)
    with pytest.raises(cls) as info:
        client.list_agreements()
    err = info.value
    assert type(err) is cls
    assert isinstance(err, c.HubError)
    assert (err.status, err.title, err.detail, err.instance) == (status, "T", "d", "/x")
    assert err.type == f"https://tollhouse.dev/problems/{slug}"


def test_validation_errors_are_parsed(client: HubClient, hub: FakeHub) -> None:
    errors = [{"field": "records[3].fields.income", "message": "must be a number"}]
    hub.fail("/v1/datasets", problem(422, "validation-failed", errors=errors))
    with pytest.raises(c.ValidationFailed) as info:
        client.publish("loans", [])
    assert info.value.errors == (c.FieldError("records[3].fields.income", "must be a number"),)


def test_error_without_problem_body_maps_by_status(client: HubClient, hub: FakeHub) -> None:
    hub.fail("/v1/agreements", httpx.Response(418, text="teapot"))
    with pytest.raises(c.ProblemError) as info:
        client.list_agreements()
    assert info.value.status == 418
    assert info.value.type == "about:blank"
    assert info.value.title == "I'm a teapot"


def test_bad_json_is_a_decode_error(client: HubClient, hub: FakeHub) -> None:
    hub.fail("/v1/agreements", httpx.Response(200, text="<html>"))
    with pytest.raises(c.DecodeError):
        client.list_agreements()
    hub.fail("/v1/agreements", httpx.Response(200, json={"items": [{"id": 1}]}))
    with pytest.raises(c.DecodeError):
        client.list_agreements()


def test_rate_limited_keeps_retry_after(client: HubClient, hub: FakeHub) -> None:
    limited = problem(429, "rate-limited")
    limited.headers["Retry-After"] = "500"  # beyond max_retry_after: give up at once
    hub.fail("/v1/agreements", limited)
    with pytest.raises(c.RateLimited) as info:
        client.list_agreements()
    assert info.value.retry_after == 500.0
