"""The sans-IO core shared by ``HubClient`` and ``AsyncHubClient``.

Everything that is not I/O lives here: what request each API call makes, how its response is
parsed (problem+json into typed exceptions, encrypted fields decrypted), and the retry decisions.
A call runs as a generator (``execute``) that yields ``Send`` and ``Sleep`` actions and receives
each send's outcome, a response or a transport error; the sync and async clients only carry the
actions out (``httpx.Client.send`` / ``time.sleep`` vs ``httpx.AsyncClient.send`` /
``anyio.sleep``).
"""

from __future__ import annotations

import email.utils
import json
import random
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import orjson

from . import _exceptions as exc
from ._keys import PartnerKey, decrypt_field
from ._models import (
    Agreement,
    Page,
    PublishRecord,
    PublishResult,
    Record,
    Subject,
    parse_agreements,
    parse_page,
    parse_publish_result,
    parse_record,
)

__all__ = ["Retry"]

T = TypeVar("T")

DEFAULT_SCOPES = ("records:pull", "records:publish")
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Retry:
    """Retry policy: bounded attempts, exponential backoff with full jitter.

    Retries 429 (waiting ``Retry-After`` when given, up to ``max_retry_after`` seconds), the
    statuses in ``statuses`` and connection errors and timeouts. Every call of the SDK is safe to
    repeat: reads are reads and publishing the same record key and version again is a no-op.
    """

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 120.0
    statuses: frozenset[int] = frozenset({429, 502, 503, 504})

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")

    def backoff_delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max_backoff, backoff * 2 ** (attempt - 1))]."""
        cap = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return rng.uniform(0.0, cap)

    def delay_after_response(
        self, attempt: int, response: httpx.Response, rng: random.Random
    ) -> float | None:
        """Seconds to wait before trying again, or None to give up and report the response."""
        if response.status_code not in self.statuses or attempt >= self.attempts:
            return None
        hint = retry_after(response)
        if hint is None:
            return self.backoff_delay(attempt, rng)
        return hint if hint <= self.max_retry_after else None

    def delay_after_error(
        self, attempt: int, error: httpx.TransportError, rng: random.Random
    ) -> float | None:
        if attempt >= self.attempts or not isinstance(error, _RETRYABLE_ERRORS):
            return None
        return self.backoff_delay(attempt, rng)


_RETRYABLE_ERRORS = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)


def retry_after(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds (delta-seconds or an HTTP date), if present and valid."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# -- actions and the retry loop ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API call: the request to make and how to turn a successful response into a result."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: Mapping[str, str | int] | None = None
    json: Any = None

    def content(self) -> bytes | None:
        if self.json is None:
            return None
        return json.dumps(self.json, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class Send:
    call: Call[Any]


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


Action = Send | Sleep
Outcome = httpx.Response | httpx.TransportError | None


@dataclass(slots=True)
class Core:
    """Configuration shared by both clients, and the calls of the API."""

    retry: Retry = field(default_factory=Retry)
    decryption_key: PartnerKey | None = None
    rng: random.Random = field(default_factory=random.Random)

    def execute(self, call: Call[T]) -> Generator[Action, Outcome, T]:
        """Run ``call`` with retries; yields actions, receives each Send's outcome."""
        attempt = 0
        while True:
            attempt += 1
            outcome = yield Send(call)
            if isinstance(outcome, httpx.TransportError):
                delay = self.retry.delay_after_error(attempt, outcome, self.rng)
                if delay is None:
                    raise _transport_error(outcome) from outcome
            else:
                assert outcome is not None
                delay = self.retry.delay_after_response(attempt, outcome, self.rng)
                if delay is None:
                    return parse_response(outcome, call.parse)
            yield Sleep(delay)

    # -- the API's calls --

    def list_agreements(self) -> Call[list[Agreement]]:
        return Call("GET", "/v1/agreements", parse_agreements)

    def pull(self, agreement_id: str, cursor: str | None, limit: int) -> Call[Page]:
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be within 1..{MAX_LIMIT}")
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        path = f"/v1/agreements/{_seg(agreement_id)}/records"
        return Call("GET", path, self._decrypt_page, params=params)

    def get_record(self, agreement_id: str, record_key: str) -> Call[Record]:
        path = f"/v1/agreements/{_seg(agreement_id)}/records/{_seg(record_key)}"
        return Call("GET", path, lambda body: self._decrypt(parse_record(body)))

    def publish(
        self, dataset_id: str, records: Iterable[PublishRecord | Mapping[str, Any]]
    ) -> Call[PublishResult]:
        body = {
            "records": [r.to_json() if isinstance(r, PublishRecord) else dict(r) for r in records]
        }
        path = f"/v1/datasets/{_seg(dataset_id)}/records"
        return Call("POST", path, parse_publish_result, json=body)

    def audit_events(self, filters: Mapping[str, str | int | None]) -> Call[list[dict[str, Any]]]:
        params = {name: value for name, value in filters.items() if value is not None}
        return Call("GET", "/v1/audit/events", parse_audit_events, params=params)

    def jwks(self) -> Call[dict[str, Any]]:
        """The hub's public keys (``/.well-known/jwks.json``): they verify webhooks and receipts."""
        return Call("GET", "/.well-known/jwks.json", _json_object)

    def register_webhook(self, url: str, events: Iterable[str] | None) -> Call[dict[str, Any]]:
        body: dict[str, Any] = {"url": url}
        if events is not None:
            body["events"] = list(events)
        return Call("POST", "/v1/webhooks", _json_object, json=body)

    def request_consent(
        self,
        subject: Subject,
        purpose: str,
        categories: Sequence[str],
        duration_days: int,
        reason: str,
        sensitive: bool,
        cross_border: bool,
    ) -> Call[dict[str, Any]]:
        body = {
            "subject": subject.to_json(),
            "purpose": purpose,
            "categories": list(categories),
            "duration_days": duration_days,
            "reason": reason,
            "sensitive": sensitive,
            "cross_border": cross_border,
        }
        return Call("POST", "/v1/consent-requests", _json_object, json=body)

    def delete_webhook(self, webhook_id: str) -> Call[None]:
        return Call("DELETE", f"/v1/webhooks/{_seg(webhook_id)}", lambda body: None)

    def acknowledge(self, notification_id: str) -> Call[dict[str, Any]]:
        path = f"/v1/consent-notifications/{_seg(notification_id)}/acknowledgement"
        return Call("POST", path, _json_object)

    def attest_deletion(
        self, consent_id: str, statement: str, deleted_at: datetime, records_deleted: int | None
    ) -> Call[dict[str, Any]]:
        if deleted_at.tzinfo is None:
            raise ValueError("deleted_at must carry a timezone")
        body: dict[str, Any] = {"statement": statement, "deleted_at": deleted_at.isoformat()}
        if records_deleted is not None:
            body["records_deleted"] = records_deleted
        path = f"/v1/consents/{_seg(consent_id)}/deletion-attestations"
        return Call("POST", path, _json_object, json=body)

    # -- decryption --

    def _decrypt_page(self, body: Any) -> Page:
        page = parse_page(body)
        if self.decryption_key is None or not any(r.encrypted_fields for r in page.items):
            return page
        return Page(
            items=tuple(self._decrypt(r) for r in page.items),
            released=page.released,
            withheld=page.withheld,
            next_cursor=page.next_cursor,
            decision_revision=page.decision_revision,
        )

    def _decrypt(self, record: Record) -> Record:
        key = self.decryption_key
        if key is None or not record.encrypted_fields:
            return record
        fields = dict(record.fields)
        for name in record.encrypted_fields:
            value = fields.get(name)
            if isinstance(value, str):
                fields[name] = decrypt_field(value, key)
        return Record(
            record.record_key, record.version, record.subject, fields, record.encrypted_fields
        )


def _json_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise exc.DecodeError("the response is not a JSON object")
    return body


def parse_audit_events(body: Any) -> list[dict[str, Any]]:
    """Audit events stay plain JSON objects: they are the canonical documents a regulator hashes."""
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise exc.DecodeError("the audit response has no list of events")
    return items


def follow(page: Page, cursor: str | None) -> str | None:
    """The cursor for the page after ``page`` (requested with ``cursor``), None at the end."""
    if page.next_cursor is not None and page.next_cursor == cursor:
        raise exc.DecodeError("the hub returned the same cursor again")
    return page.next_cursor


def _seg(value: str) -> str:
    if not value:
        raise ValueError("identifiers must not be empty")
    return quote(value, safe="")


# -- responses -----------------------------------------------------------------------------------


def parse_response(response: httpx.Response, parse: Callable[[Any], T]) -> T:
    """Parse a 2xx response with ``parse``; raise the typed exception for anything else."""
    if response.status_code == 204:
        return parse(None)
    if response.is_success:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise exc.DecodeError(f"HTTP {response.status_code}: response is not JSON") from None
        return parse(body)
    raise problem_error(response)


def problem_error(response: httpx.Response) -> exc.ProblemError:
    """The typed exception for an error response (problem+json or not)."""
    status = response.status_code
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        pass
    problem: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    type_uri = problem.get("type")
    type_uri = type_uri if isinstance(type_uri, str) else "about:blank"
    title = problem.get("title")
    if not isinstance(title, str):
        title = response.reason_phrase or "Error"
    errors = tuple(
        exc.FieldError(str(e.get("field", "")), str(e.get("message", "")))
        for e in problem.get("errors") or ()
        if isinstance(e, Mapping)
    )
    cls = exc.problem_class(type_uri, status)
    return cls(
        status,
        title,
        type=type_uri,
        detail=_str_or_none(problem.get("detail")),
        instance=_str_or_none(problem.get("instance")),
        errors=errors,
        retry_after=retry_after(response),
        problem=problem,
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _transport_error(error: httpx.TransportError) -> exc.TransportError:
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, httpx.TimeoutException):
        return exc.Timeout(text)
    if isinstance(error, httpx.NetworkError):
        return exc.ConnectError(text)
    return exc.TransportError(text)
