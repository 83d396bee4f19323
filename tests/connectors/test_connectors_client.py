"""HubClient / AsyncHubClient: calls, pagination, retries, decryption (mock and loopback)."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from random import Random
from typing import Any

import httpx
import pytest
from joserfc import jwe
from joserfc.jwk import ECKey, OKPKey

import connectors as c
from connectors import AsyncHubClient, HubClient, Retry
from tests.connectors.fakehub import FakeHub, make_records, problem, serve

BASE = "http://hub.test"


def async_client(hub: FakeHub, **kwargs: object) -> AsyncHubClient:
    return AsyncHubClient(
        BASE,
        hub.client_id,
        client_secret=hub.client_secret,
        transport=httpx.MockTransport(hub),
        **kwargs,  # type: ignore[arg-type]
    )


# -- calls ---------------------------------------------------------------------------------


def test_list_agreements(client: HubClient) -> None:
    (agreement,) = client.list_agreements()
    assert agreement.id == "agr-1"
    assert agreement.fields == ("make", "income", "note")
    assert agreement.valid_from == datetime(2026, 1, 1, tzinfo=UTC)
    assert agreement.valid_until is None


def test_pull_one_page(client: HubClient, hub: FakeHub) -> None:
    page = client.pull("agr-1", limit=10)
    assert [r.record_key for r in page.items] == [f"r{i:05d}" for i in range(10)]
    assert page.items[3].fields == {"make": "Volvo", "income": 1003, "note": "n,3"}
    assert (page.released, page.withheld, page.next_cursor) == (10, 0, "c10")
    assert page.decision_revision == "rev-1"
    assert hub.requests[-1].url.params["limit"] == "10"
    assert "cursor" not in hub.requests[-1].url.params


def test_iter_records_follows_cursors(client: HubClient, hub: FakeHub) -> None:
    hub.withheld_every = 4
    pages = list(client.iter_records("agr-1", limit=10))
    assert [p.next_cursor for p in pages] == ["c10", "c20", None]
    assert sum(p.released for p in pages) == 18
    assert sum(p.withheld for p in pages) == 7
    keys = [r.record_key for p in pages for r in p.items]
    assert len(keys) == len(set(keys)) == 18


def test_iter_records_from_a_cursor(client: HubClient) -> None:
    pages = list(client.iter_records("agr-1", start_cursor="c20", limit=10))
    assert [r.record_key for p in pages for r in p.items] == [f"r{i:05d}" for i in range(20, 25)]


def test_invalid_cursor(client: HubClient) -> None:
    with pytest.raises(c.InvalidCursor):
        client.pull("agr-1", cursor="garbage")


@pytest.mark.parametrize("limit", [0, 1001])
def test_limit_is_checked_locally(client: HubClient, hub: FakeHub, limit: int) -> None:
    with pytest.raises(ValueError):
        client.pull("agr-1", limit=limit)
    assert hub.requests == []


def test_repeated_cursor_is_refused(client: HubClient, hub: FakeHub) -> None:
    body = {
        "items": [],
        "released": 0,
        "withheld": 0,
        "next_cursor": "c5",
        "decision_revision": "r",
    }
    hub.fail("/v1/agreements/agr-1/records", httpx.Response(200, json=body))
    with pytest.raises(c.DecodeError):
        list(client.iter_records("agr-1", start_cursor="c5"))


def test_get_record(client: HubClient) -> None:
    record = client.get_record("agr-1", "r00002")
    assert (record.record_key, record.version, record.subject) == ("r00002", 1, "p-2")
    with pytest.raises(c.NotFound):
        client.get_record("agr-1", "nope")


def test_path_segments_are_quoted(client: HubClient, hub: FakeHub) -> None:
    with pytest.raises(c.NotFound):
        client.get_record("agr-1", "a/b?c")
    assert hub.requests[-1].url.raw_path == b"/v1/agreements/agr-1/records/a%2Fb%3Fc"


def test_publish_and_idempotent_rerun(client: HubClient, hub: FakeHub) -> None:
    records: list[c.PublishRecord | dict[str, Any]] = [
        c.PublishRecord("k1", 1, c.Subject(vin="LVSHCAMB1CE054249"), {"income": 10}),
        {"record_key": "k2", "version": 3, "subject": {"mobile": "+8613800000000"}, "fields": {}},
    ]
    assert client.publish("loans", records) == c.PublishResult(accepted=2, created=2, unchanged=0)
    assert client.publish("loans", records) == c.PublishResult(accepted=2, created=0, unchanged=2)
    assert hub.stored["k1"]["subject"] == {"vin": "LVSHCAMB1CE054249"}
    assert hub.requests[-1].headers["Content-Type"] == "application/json"


# -- retries -------------------------------------------------------------------------------


def test_retries_gateway_errors_with_jittered_backoff(
    client: HubClient, hub: FakeHub, sleeps: list[float]
) -> None:
    for status in (502, 503, 504):
        hub.fail("/v1/agreements", httpx.Response(status))
    assert client.list_agreements()
    assert len(sleeps) == 3
    retry = Retry()
    for attempt, wait in enumerate(sleeps, 1):
        assert 0 <= wait <= retry.backoff * 2 ** (attempt - 1)


def test_retry_after_is_honoured(client: HubClient, hub: FakeHub, sleeps: list[float]) -> None:
    limited = problem(429, "rate-limited")
    limited.headers["Retry-After"] = "7"
    hub.fail("/v1/agreements", limited, times=2)
    assert client.list_agreements()
    assert sleeps == [7.0, 7.0]


def test_retry_after_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=60)
    response = httpx.Response(429, headers={"Retry-After": format_datetime(when, usegmt=True)})
    delay = Retry().delay_after_response(1, response, Random(0))
    assert delay is not None and 50 < delay <= 60


def test_attempts_are_bounded(client: HubClient, hub: FakeHub, sleeps: list[float]) -> None:
    hub.fail("/v1/agreements", httpx.Response(503), times=10)
    with pytest.raises(c.ServerError):
        client.list_agreements()
    assert len(sleeps) == Retry().attempts - 1


def test_client_errors_are_not_retried(
    client: HubClient, hub: FakeHub, sleeps: list[float]
) -> None:
    hub.fail("/v1/agreements", problem(403, "forbidden"))
    with pytest.raises(c.Forbidden):
        client.list_agreements()
    assert sleeps == []


def test_backoff_is_full_jitter_and_capped() -> None:
    retry = Retry(backoff=1.0, max_backoff=8.0)
    rng = Random(1)
    for attempt in range(1, 12):
        waits = [retry.backoff_delay(attempt, rng) for _ in range(200)]
        cap = min(8.0, 2.0 ** (attempt - 1))
        assert all(0 <= w <= cap for w in waits)
        assert max(waits) > cap / 2  # spread over the whole range, not a fixed delay


@pytest.mark.parametrize(
    ("error", "cls"),
    [
        (httpx.ConnectError("refused"), c.ConnectError),
        (httpx.ReadTimeout("slow"), c.Timeout),
        (httpx.RemoteProtocolError("dropped"), c.TransportError),
    ],
)
def test_transport_errors_are_retried_then_typed(
    client: HubClient,
    hub: FakeHub,
    sleeps: list[float],
    error: httpx.TransportError,
    cls: type[c.TransportError],
) -> None:
    hub.fail("/v1/agreements", error, times=2)
    assert client.list_agreements()
    hub.fail("/v1/agreements", error, times=10)
    with pytest.raises(cls):
        client.list_agreements()
    assert len(sleeps) == 2 + Retry().attempts - 1


def test_connection_refused_on_loopback(sleeps: list[float]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    client = HubClient(f"http://127.0.0.1:{port}", "x", client_secret="s", retry=Retry(attempts=3))
    with client, pytest.raises(c.ConnectError):
        client.list_agreements()
    assert len(sleeps) == 2


def test_loopback_pull_over_the_wire(hub: FakeHub, sleeps: list[float]) -> None:
    hub.records = make_records(250)
    limited = problem(429, "rate-limited")
    limited.headers["Retry-After"] = "1"
    hub.fail("/v1/agreements/agr-1/records", limited)
    with (
        serve(hub) as url,
        HubClient(url, hub.client_id, client_secret=hub.client_secret) as client,
    ):
        pages = list(client.iter_records("agr-1", limit=100))
    assert [len(p.items) for p in pages] == [100, 100, 50]
    assert sleeps == [1.0]


# -- async -----------------------------------------------------------------------------------


def test_async_client_same_surface(hub: FakeHub, sleeps: list[float]) -> None:
    hub.fail("/v1/agreements/agr-1/records", httpx.Response(503))

    async def main() -> None:
        async with async_client(hub) as client:
            assert (await client.list_agreements())[0].id == "agr-1"
            pages = [p async for p in client.iter_records("agr-1", limit=10)]
            assert sum(len(p.items) for p in pages) == 25
            assert (await client.get_record("agr-1", "r00001")).subject == "p-1"
            result = await client.publish("loans", [c.PublishRecord("k", 1, c.Subject(vin="V"))])
            assert result.created == 1
            with pytest.raises(c.InvalidCursor):
                await client.pull("agr-1", cursor="bad")

    asyncio.run(main())
    assert len(sleeps) == 1
    public = {n for n in dir(HubClient) if not n.startswith("_")} - {"close"}
    assert public == {n for n in dir(AsyncHubClient) if not n.startswith("_")} - {"aclose"}


# -- decryption ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", [ECKey.generate_key("P-256"), OKPKey.generate_key("X25519")], ids=["P-256", "X25519"]
)
def test_encrypted_fields_are_decrypted(hub: FakeHub, key: ECKey | OKPKey) -> None:
    hub.recipient_key = key
    transport = httpx.MockTransport(hub)
    pem = key.as_pem(private=True)
    with HubClient(
        BASE,
        hub.client_id,
        client_secret=hub.client_secret,
        decryption_key=pem,
        transport=transport,
    ) as client:
        page = client.pull("agr-1", limit=5)
        record = client.get_record("agr-1", "r00004")
    assert [r.fields["income"] for r in page.items] == [1000, 1001, 1002, 1003, 1004]
    assert page.items[0].encrypted_fields == ("income",)
    assert record.fields["income"] == 1004


def test_without_a_key_encrypted_fields_stay_jwe(client: HubClient, hub: FakeHub) -> None:
    hub.recipient_key = ECKey.generate_key("P-256")
    value = client.pull("agr-1", limit=1).items[0].fields["income"]
    assert isinstance(value, str) and value.count(".") == 4
    assert jwe.decrypt_compact(value, hub.recipient_key).plaintext == b"1000"


def test_wrong_key_is_a_decryption_error(hub: FakeHub) -> None:
    hub.recipient_key = ECKey.generate_key("P-256")
    other = ECKey.generate_key("P-256").as_dict(private=True)
    with (
        HubClient(
            BASE,
            hub.client_id,
            client_secret=hub.client_secret,
            decryption_key=other,
            transport=httpx.MockTransport(hub),
        ) as client,
        pytest.raises(c.DecryptionError),
    ):
        client.pull("agr-1", limit=1)
