"""Receive the hub's signed consent webhooks and apply them to a SQL sink.

    from connectors import HubClient, WebhookReceiver

    hub = HubClient("https://hub.example", "lender-1", client_secret="...")
    receiver = WebhookReceiver(hub, "postgresql+psycopg://.../pulled")
    app = receiver.asgi()            # mount in any ASGI server or framework
    # or, in any framework:  status, body = receiver.handle(request_body, request_headers)

For each delivery the receiver:

1. verifies ``Tollhouse-Signature``, a detached compact JWS (RFC 7515 appendix F) of the exact
   body, Ed25519, by the hub's key from ``/.well-known/jwks.json`` (fetched again on an unknown
   ``kid``, at most every ``jwks_min_refresh`` seconds); anything unsigned, badly signed, or
   whose ``Tollhouse-Event-Id`` / ``Tollhouse-Event-Type`` headers disagree with the signed body
   is refused (401/400) and changes nothing;
2. refuses events older than ``max_age`` (400), and answers an event id it has already handled
   with 200 ``duplicate`` without applying it again (a replay, or the hub retrying after a lost
   answer); the same id with another body is refused (409);
3. on ``consent.withdrawn`` / ``revoked`` / ``expired``: finds the subject's rows among the
   sink's rows of the recipient's agreements for the consent's purpose, deletes them (or
   de-identifies them: the pseudonym replaced and every field but ``keep_fields`` dropped), and
   records the event, in one transaction; then posts the deletion attestation (which also
   acknowledges the notification). If the hub cannot be reached the answer is 503, the hub
   delivers again, and the stored count is attested then;
4. answers any other event type (e.g. agreement notices) with 200 ``ignored``.

Finding the subject: released records carry the subject as this recipient's pseudonym
(``Record.subject``, the sink's ``subject`` column). When the event names it (``data.subject``)
those rows are taken directly. Otherwise the receiver asks the hub, for each pseudonym the sink
holds under those agreements, for one of its records: a subject whose records the hub no longer
releases (404) has lost its legal basis. That costs one request per distinct subject, and a
paused consent also stops release, so its subject's rows would be removed too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ._client import HubClient
from ._exceptions import HubError, NotFound, ProblemError
from ._sinks import SinkError, records_table

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["WebhookReceiver", "WebhookResponse"]

ENDED_EVENTS = frozenset({"consent.withdrawn", "consent.revoked", "consent.expired"})
WEBHOOK_TYP = "tollhouse-webhook+jws"
ALGORITHMS = ("Ed25519", "EdDSA")
DEIDENTIFIED = "deidentified"
MAX_BODY_BYTES = 1 << 20

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """What to answer the hub: a status code and a small JSON body."""

    status: int
    body: Mapping[str, Any]

    def content(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":")).encode()


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _Verifier:
    """Detached JWS checks against the hub's JWKS, refetched on an unknown key id."""

    def __init__(self, fetch: Callable[[], dict[str, Any]], min_refresh: float) -> None:
        self._fetch = fetch
        self._min_refresh = min_refresh
        self._keys: KeySet | None = None
        self._fetched_at = -float("inf")

    def _key_set(self, kid: str) -> KeySet:
        known = self._keys is not None and any(k.kid == kid for k in self._keys.keys)
        stale = time.monotonic() - self._fetched_at >= self._min_refresh
        if self._keys is None or (not known and stale):
            self._keys = KeySet.import_key_set(self._fetch())  # type: ignore[arg-type]
            self._fetched_at = time.monotonic()
        return self._keys

    def verify(self, body: bytes, signature: str) -> None:
        parts = signature.split(".")
        if len(parts) != 3 or parts[1] or not parts[0] or not parts[2]:
            raise _Refused(401, "the signature is not a detached compact JWS")
        try:
            header = json.loads(_b64decode(parts[0]))
        except ValueError:
            raise _Refused(401, "the signature header does not decode") from None
        if not isinstance(header, dict):
            raise _Refused(401, "the signature header does not decode")
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS or header.get("typ") != WEBHOOK_TYP or not isinstance(kid, str):
            raise _Refused(401, "unexpected signature algorithm, type or key id")
        try:
            key_set = self._key_set(kid)
        except (HubError, JoseError, ValueError, TypeError) as exc:
            raise _Refused(503, f"the hub's keys are unavailable: {exc}") from None
        token = f"{parts[0]}.{_b64encode(body)}.{parts[2]}"
        try:
            jws.deserialize_compact(token, key_set, algorithms=[alg])
        except (JoseError, ValueError, TypeError):
            raise _Refused(401, "the signature does not verify") from None


@dataclass(frozen=True, slots=True)
class _Event:
    id: str
    type: str
    created_at: datetime
    data: Mapping[str, Any]
    digest: str


def _parse_event(body: bytes, headers: Mapping[str, str]) -> _Event:
    try:
        raw = json.loads(body)
    except ValueError:
        raise _Refused(400, "the body is not JSON") from None
    if not isinstance(raw, dict):
        raise _Refused(400, "the body is not a JSON object")
    event_id, kind, created = raw.get("id"), raw.get("type"), raw.get("created_at")
    data = raw.get("data", {})
    if not (isinstance(event_id, str) and event_id and isinstance(kind, str)):
        raise _Refused(400, "the event has no id or type")
    if not isinstance(data, dict) or not isinstance(created, str):
        raise _Refused(400, "the event has no data or creation time")
    try:
        created_at = datetime.fromisoformat(created)
    except ValueError:
        raise _Refused(400, "created_at is not an ISO 8601 date-time") from None
    if created_at.tzinfo is None:
        raise _Refused(400, "created_at has no timezone")
    if headers.get("tollhouse-event-id", event_id) != event_id:
        raise _Refused(400, "Tollhouse-Event-Id does not match the signed body")
    if headers.get("tollhouse-event-type", kind) != kind:
        raise _Refused(400, "Tollhouse-Event-Type does not match the signed body")
    digest = hashlib.sha256(body).hexdigest()
    return _Event(event_id, kind, created_at, data, digest)


class WebhookReceiver:
    """Verifies the hub's consent webhooks and applies withdrawals to a SQL sink.

    ``sink_url`` is the SQLAlchemy URL ``connect pull`` writes to (table ``table``); the
    receiver keeps the events it handled in ``tollhouse_webhook_events`` in the same database,
    written in the same transaction as the rows it deletes. ``on_withdrawal`` is ``"delete"``
    or ``"deidentify"`` (keep ``keep_fields``, drop the rest and the subject's pseudonym).
    """

    def __init__(
        self,
        client: HubClient,
        sink_url: str,
        *,
        on_withdrawal: Literal["delete", "deidentify"] = "delete",
        keep_fields: Iterable[str] = (),
        table: str = "tollhouse_records",
        max_age: timedelta = timedelta(days=7),
        jwks_min_refresh: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        import sqlalchemy as sa

        if on_withdrawal not in ("delete", "deidentify"):
            raise ValueError("on_withdrawal is 'delete' or 'deidentify'")
        try:
            self.engine = sa.create_engine(sink_url)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise SinkError(f"bad database URL: {exc}") from None
        self.client = client
        self.on_withdrawal = on_withdrawal
        self.keep_fields = frozenset(keep_fields)
        self.max_age = max_age
        self._clock = clock
        metadata = sa.MetaData()
        self.records = records_table(metadata, table)
        self.events = sa.Table(
            "tollhouse_webhook_events",
            metadata,
            sa.Column("event_id", sa.String(64), primary_key=True),
            sa.Column("event_type", sa.String(64), nullable=False),
            sa.Column("consent_id", sa.String(64)),
            sa.Column("digest", sa.String(64), nullable=False),
            sa.Column("outcome", sa.String(20), nullable=False),
            sa.Column("records", sa.Integer),
            sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("attested_at", sa.DateTime(timezone=True)),
        )
        metadata.create_all(self.engine)
        self._verifier = _Verifier(client.jwks, jwks_min_refresh)
        self._lock = threading.Lock()

    def close(self) -> None:
        self.engine.dispose()

    # -- the handler -------------------------------------------------------------------------

    def handle(self, body: bytes, headers: Mapping[str, str]) -> WebhookResponse:
        """Handle one delivery (the raw body and the request headers); never raises."""
        lower = {k.lower(): v for k, v in headers.items()}
        try:
            signature = lower.get("tollhouse-signature")
            if not signature:
                raise _Refused(401, "no Tollhouse-Signature header")
            with self._lock:
                self._verifier.verify(body, signature)
                event = _parse_event(body, lower)
                return self._handle(event)
        except _Refused as refused:
            return WebhookResponse(refused.status, {"error": refused.reason})

    def _handle(self, event: _Event) -> WebhookResponse:
        import sqlalchemy as sa

        now = self._clock()
        if event.created_at < now - self.max_age:
            raise _Refused(400, "the event is too old (a replay?)")
        if event.created_at > now + timedelta(minutes=5):
            raise _Refused(400, "the event is from the future")
        with self.engine.connect() as conn:
            seen = conn.execute(
                sa.select(self.events).where(self.events.c.event_id == event.id)
            ).one_or_none()
        if seen is not None:
            if seen.digest != event.digest:
                raise _Refused(409, "this event id was already received with another body")
            if seen.outcome == "applied" and seen.attested_at is None:
                return self._attest(event, seen.consent_id, seen.records)
            return WebhookResponse(200, {"status": "duplicate", "event": event.id})
        if event.type not in ENDED_EVENTS:
            self._record(event, None, "ignored", None)
            return WebhookResponse(200, {"status": "ignored", "event": event.id})
        consent_id = event.data.get("consent_id")
        if not isinstance(consent_id, str) or not consent_id:
            raise _Refused(400, "the consent event has no consent_id")
        try:
            pairs = self._affected(event.data)
        except HubError as exc:
            raise _Refused(503, f"cannot reach the hub to find the subject's rows: {exc}") from None
        records = self._apply(event, consent_id, pairs)
        return self._attest(event, consent_id, records)

    # -- finding and erasing the subject's rows ------------------------------------------------

    def _affected(self, data: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(agreement id, subject pseudonym) pairs whose rows the event ends."""
        import sqlalchemy as sa

        purpose = data.get("purpose")
        agreements = [
            a.id
            for a in self.client.list_agreements()
            if not isinstance(purpose, str) or a.purpose == purpose
        ]
        if not agreements:
            return []
        subject = data.get("subject")
        if isinstance(subject, str) and subject:
            return [(a, subject) for a in agreements]
        t = self.records
        with self.engine.connect() as conn:
            held = conn.execute(
                sa.select(t.c.agreement_id, t.c.subject, sa.func.min(t.c.record_key))
                .where(t.c.agreement_id.in_(agreements), t.c.subject != DEIDENTIFIED)
                .group_by(t.c.agreement_id, t.c.subject)
            ).all()
        gone: list[tuple[str, str]] = []
        for agreement_id, pseudonym, record_key in held:
            try:
                self.client.get_record(agreement_id, record_key)
            except NotFound:
                gone.append((agreement_id, pseudonym))
            except ProblemError as exc:
                if exc.status >= 500:
                    raise
                # e.g. 403: the agreement is not in force; nothing is learnt about the subject
        return gone

    def _apply(self, event: _Event, consent_id: str, pairs: Sequence[tuple[str, str]]) -> int:
        import sqlalchemy as sa

        t = self.records
        count = 0
        try:
            with self.engine.begin() as conn:
                for agreement_id, subject in pairs:
                    where = sa.and_(t.c.agreement_id == agreement_id, t.c.subject == subject)
                    if self.on_withdrawal == "delete":
                        count += conn.execute(t.delete().where(where)).rowcount
                        continue
                    rows = conn.execute(sa.select(t.c.record_key, t.c.fields).where(where)).all()
                    for key, fields in rows:
                        kept = {k: v for k, v in dict(fields).items() if k in self.keep_fields}
                        conn.execute(
                            t.update()
                            .where(t.c.agreement_id == agreement_id, t.c.record_key == key)
                            .values(subject=DEIDENTIFIED, fields=kept)
                        )
                    count += len(rows)
                self._insert(conn, event, consent_id, "applied", count)
        except sa.exc.IntegrityError:
            # Another process handled the same event at the same time; its work stands.
            raise _Refused(409, "this event is being handled already") from None
        return count

    def _record(self, event: _Event, consent_id: str | None, outcome: str, n: int | None) -> None:
        with self.engine.begin() as conn:
            self._insert(conn, event, consent_id, outcome, n)

    def _insert(
        self,
        conn: sa.Connection,
        event: _Event,
        consent_id: str | None,
        outcome: str,
        records: int | None,
    ) -> None:
        conn.execute(
            self.events.insert().values(
                event_id=event.id,
                event_type=event.type,
                consent_id=consent_id,
                digest=event.digest,
                outcome=outcome,
                records=records,
                received_at=self._clock(),
            )
        )

    def _attest(self, event: _Event, consent_id: str, records: int) -> WebhookResponse:

        verb = "deleted" if self.on_withdrawal == "delete" else "de-identified"
        statement = (
            f"{verb} {records} record(s) of the subject held under the consent's purpose "
            f"after {event.type} (event {event.id}), by the Tollhouse connector's receiver"
        )
        try:
            self.client.attest_deletion(
                consent_id, statement=statement, deleted_at=self._clock(), records_deleted=records
            )
        except HubError as exc:
            raise _Refused(503, f"rows {verb}; the attestation failed: {exc}") from None
        with self.engine.begin() as conn:
            conn.execute(
                self.events.update()
                .where(self.events.c.event_id == event.id)
                .values(attested_at=self._clock())
            )
        return WebhookResponse(
            200, {"status": "applied", "event": event.id, "records": records, "action": verb}
        )

    # -- ASGI --------------------------------------------------------------------------------

    def asgi(self, path: str = "/") -> ASGIApp:
        """A minimal ASGI app: ``POST path`` runs :meth:`handle` in a worker thread."""
        import anyio.to_thread

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "lifespan":
                while True:
                    message = await receive()
                    if message["type"] == "lifespan.startup":
                        await send({"type": "lifespan.startup.complete"})
                    elif message["type"] == "lifespan.shutdown":
                        await send({"type": "lifespan.shutdown.complete"})
                        return
            if scope["type"] != "http":
                return
            if scope["path"] != path:
                response = WebhookResponse(404, {"error": "not found"})
            elif scope["method"] != "POST":
                response = WebhookResponse(405, {"error": "POST only"})
            else:
                body = await _read_body(receive)
                if body is None:
                    response = WebhookResponse(413, {"error": "the body is too large"})
                else:
                    headers = {
                        k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                    }
                    response = await anyio.to_thread.run_sync(self.handle, body, headers)
            content = response.content()
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(content)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": content})

        return app


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
