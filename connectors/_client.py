"""``HubClient`` and ``AsyncHubClient``: thin I/O drivers over the sans-IO core in ``_core``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio
import httpx

from ._auth import ClientCredentials
from ._core import DEFAULT_SCOPES, Call, Core, Outcome, Retry, Send, follow
from ._keys import KeyInput, load_key
from ._models import Agreement, Page, PublishRecord, PublishResult, Record, Subject

__all__ = ["AsyncHubClient", "HubClient"]

T = TypeVar("T")

USER_AGENT = "tollhouse-connectors/0.1"

# Indirections so tests can skip the waits without timing anything.
_sleep = time.sleep
_async_sleep = anyio.sleep


class _Base:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        *,
        client_secret: str | None = None,
        private_key: KeyInput | None = None,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        token_url: str | None = None,
        decryption_key: KeyInput | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retry: Retry | None = None,
        dpop_key: KeyInput | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = ClientCredentials(
            token_url or f"{self.base_url}/oauth/token",
            client_id,
            client_secret=client_secret,
            private_key=private_key,
            scopes=scopes,
            dpop_key=dpop_key,
        )
        self._core = Core(
            retry=retry or Retry(),
            decryption_key=load_key(decryption_key) if decryption_key is not None else None,
        )
        self._options: dict[str, Any] = {
            "base_url": self.base_url,
            "auth": self.auth,
            "timeout": timeout,
            "headers": {"User-Agent": USER_AGENT, "Accept": "application/json"},
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r}, client_id={self.auth.client_id!r})"

    @staticmethod
    def _request(http: httpx.Client | httpx.AsyncClient, send: Send) -> httpx.Request:
        call = send.call
        content = call.content()
        headers = {"Content-Type": "application/json"} if content is not None else None
        return http.build_request(
            call.method, call.path, params=call.params, content=content, headers=headers
        )


class HubClient(_Base):
    """Synchronous client of the Tollhouse hub. Use as a context manager or call ``close()``."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        *,
        client_secret: str | None = None,
        private_key: KeyInput | None = None,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        token_url: str | None = None,
        decryption_key: KeyInput | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retry: Retry | None = None,
        dpop_key: KeyInput | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url,
            client_id,
            client_secret=client_secret,
            private_key=private_key,
            scopes=scopes,
            token_url=token_url,
            decryption_key=decryption_key,
            timeout=timeout,
            retry=retry,
            dpop_key=dpop_key,
        )
        self._http = httpx.Client(transport=transport, **self._options)

    def _run(self, call: Call[T]) -> T:
        flow = self._core.execute(call)
        action = next(flow)
        while True:
            outcome: Outcome = None
            if isinstance(action, Send):
                try:
                    outcome = self._http.send(self._request(self._http, action))
                except httpx.TransportError as error:
                    outcome = error
            else:
                _sleep(action.seconds)
            try:
                action = flow.send(outcome)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def list_agreements(self) -> list[Agreement]:
        return self._run(self._core.list_agreements())

    def pull(self, agreement_id: str, *, cursor: str | None = None, limit: int = 100) -> Page:
        return self._run(self._core.pull(agreement_id, cursor, limit))

    def iter_records(
        self, agreement_id: str, *, start_cursor: str | None = None, limit: int = 100
    ) -> Iterator[Page]:
        """Pages from ``start_cursor`` (or the start) to the end of the agreement's records."""
        cursor = start_cursor
        while True:
            page = self.pull(agreement_id, cursor=cursor, limit=limit)
            yield page
            cursor = follow(page, cursor)
            if cursor is None:
                return

    def get_record(self, agreement_id: str, record_key: str) -> Record:
        return self._run(self._core.get_record(agreement_id, record_key))

    def publish(
        self, dataset_id: str, records: Iterable[PublishRecord | Mapping[str, Any]]
    ) -> PublishResult:
        return self._run(self._core.publish(dataset_id, records))

    def audit_events(
        self,
        *,
        partner_id: str | None = None,
        kind: str | None = None,
        outcome: str | None = None,
        after_index: int | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Events of the hub's access log (regulators, scope ``audit:read``), oldest first."""
        filters = {"partner_id": partner_id, "kind": kind, "outcome": outcome,
                   "after_index": after_index, "limit": limit}  # fmt: skip
        return self._run(self._core.audit_events(filters))

    def jwks(self) -> dict[str, Any]:
        """The hub's public JWKS: verifies webhook signatures and consent receipts."""
        return self._run(self._core.jwks())

    def register_webhook(self, url: str, *, events: Iterable[str] | None = None) -> dict[str, Any]:
        """Register an https endpoint for consent notifications (all event types by default)."""
        return self._run(self._core.register_webhook(url, events))

    def request_consent(
        self,
        subject: Subject,
        *,
        purpose: str,
        categories: Sequence[str],
        duration_days: int,
        reason: str,
        sensitive: bool = False,
        cross_border: bool = False,
    ) -> dict[str, Any]:
        """Ask a consumer for consent (scope ``records:pull``); ``reason`` is shown to them. The
        consumer grants or denies it in the portal; an unknown subject is ``NotFound``."""
        return self._run(
            self._core.request_consent(
                subject, purpose, categories, duration_days, reason, sensitive, cross_border
            )
        )

    def delete_webhook(self, webhook_id: str) -> None:
        self._run(self._core.delete_webhook(webhook_id))

    def acknowledge(self, notification_id: str) -> dict[str, Any]:
        """Confirm a consent notification was received and acted on (idempotent)."""
        return self._run(self._core.acknowledge(notification_id))

    def attest_deletion(
        self,
        consent_id: str,
        *,
        statement: str,
        deleted_at: datetime,
        records_deleted: int | None = None,
    ) -> dict[str, Any]:
        """Attest deletion of what was held under an ended consent (acknowledges its notices)."""
        return self._run(
            self._core.attest_deletion(consent_id, statement, deleted_at, records_deleted)
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncHubClient(_Base):
    """Asynchronous client of the Tollhouse hub, with the same surface as ``HubClient``."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        *,
        client_secret: str | None = None,
        private_key: KeyInput | None = None,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        token_url: str | None = None,
        decryption_key: KeyInput | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retry: Retry | None = None,
        dpop_key: KeyInput | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url,
            client_id,
            client_secret=client_secret,
            private_key=private_key,
            scopes=scopes,
            token_url=token_url,
            decryption_key=decryption_key,
            timeout=timeout,
            retry=retry,
            dpop_key=dpop_key,
        )
        self._http = httpx.AsyncClient(transport=transport, **self._options)

    async def _run(self, call: Call[T]) -> T:
        flow = self._core.execute(call)
        action = next(flow)
        while True:
            outcome: Outcome = None
            if isinstance(action, Send):
                try:
                    outcome = await self._http.send(self._request(self._http, action))
                except httpx.TransportError as error:
                    outcome = error
            else:
                await _async_sleep(action.seconds)
            try:
                action = flow.send(outcome)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    async def list_agreements(self) -> list[Agreement]:
        return await self._run(self._core.list_agreements())

    async def pull(self, agreement_id: str, *, cursor: str | None = None, limit: int = 100) -> Page:
        return await self._run(self._core.pull(agreement_id, cursor, limit))

    async def iter_records(
        self, agreement_id: str, *, start_cursor: str | None = None, limit: int = 100
    ) -> AsyncIterator[Page]:
        """Pages from ``start_cursor`` (or the start) to the end of the agreement's records."""
        cursor = start_cursor
        while True:
            page = await self.pull(agreement_id, cursor=cursor, limit=limit)
            yield page
            cursor = follow(page, cursor)
            if cursor is None:
                return

    async def get_record(self, agreement_id: str, record_key: str) -> Record:
        return await self._run(self._core.get_record(agreement_id, record_key))

    async def publish(
        self, dataset_id: str, records: Iterable[PublishRecord | Mapping[str, Any]]
    ) -> PublishResult:
        return await self._run(self._core.publish(dataset_id, records))

    async def audit_events(
        self,
        *,
        partner_id: str | None = None,
        kind: str | None = None,
        outcome: str | None = None,
        after_index: int | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Events of the hub's access log (regulators, scope ``audit:read``), oldest first."""
        filters = {"partner_id": partner_id, "kind": kind, "outcome": outcome,
                   "after_index": after_index, "limit": limit}  # fmt: skip
        return await self._run(self._core.audit_events(filters))

    async def jwks(self) -> dict[str, Any]:
        """The hub's public JWKS: verifies webhook signatures and consent receipts."""
        return await self._run(self._core.jwks())

    async def register_webhook(
        self, url: str, *, events: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """Register an https endpoint for consent notifications (all event types by default)."""
        return await self._run(self._core.register_webhook(url, events))

    async def request_consent(
        self,
        subject: Subject,
        *,
        purpose: str,
        categories: Sequence[str],
        duration_days: int,
        reason: str,
        sensitive: bool = False,
        cross_border: bool = False,
    ) -> dict[str, Any]:
        """Ask a consumer for consent (scope ``records:pull``); ``reason`` is shown to them."""
        return await self._run(
            self._core.request_consent(
                subject, purpose, categories, duration_days, reason, sensitive, cross_border
            )
        )

    async def delete_webhook(self, webhook_id: str) -> None:
        await self._run(self._core.delete_webhook(webhook_id))

    async def acknowledge(self, notification_id: str) -> dict[str, Any]:
        """Confirm a consent notification was received and acted on (idempotent)."""
        return await self._run(self._core.acknowledge(notification_id))

    async def attest_deletion(
        self,
        consent_id: str,
        *,
        statement: str,
        deleted_at: datetime,
        records_deleted: int | None = None,
    ) -> dict[str, Any]:
        """Attest deletion of what was held under an ended consent (acknowledges its notices)."""
        return await self._run(
            self._core.attest_deletion(consent_id, statement, deleted_at, records_deleted)
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
