"""Consent notifications: a transactional outbox, signed webhook delivery with retries,
acknowledgements, deletion attestations, and the regulator's list of unacknowledged withdrawals.

A withdrawal, revocation or expiry writes a :class:`ConsentNotification` and one
:class:`WebhookDelivery` per active endpoint of the recipient in the *same* transaction as the
change, so a committed change is never left unannounced and a rolled-back one is never
announced. :class:`WebhookDispatcher` claims due deliveries (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so several hub processes share the work without sending twice), pushes a lease
forward, commits, calls the endpoints outside any transaction, and records the outcome;
failures are retried with exponential backoff until ``max_attempts``.

Each delivery is the notification's JSON body with a detached compact JWS of it
(``Tollhouse-Signature``, Ed25519, the hub's key: verify with ``/.well-known/jwks.json``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from joserfc import jws
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from consent.errors import (
    ConsentNotFoundError,
    InvalidConsentError,
    InvalidConsentTransitionError,
    NotificationNotFoundError,
    UnsafeWebhookError,
    WebhookNotFoundError,
)
from consent.interfaces import SigningKeyProvider
from consent.models import (
    Consent,
    ConsentNotification,
    ConsentStatus,
    DeletionAttestation,
    NotificationStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from consent.releases import was_released_to
from consent.settings import WebhookSettings
from hub.registry.errors import UnsafeUrlError
from hub.registry.netguard import (
    CheckedUrl,
    Resolver,
    check_url,
    check_url_shape,
    system_resolver,
)
from hub.store.base import utcnow

NOTIFIED_EVENTS = frozenset({"consent.withdrawn", "consent.revoked", "consent.expired"})
#: Agreement notices (written by ``hub.registry.agreements``) travel through the same outbox.
AGREEMENT_EVENTS = frozenset({"agreement.terminated", "agreement.expired"})
WEBHOOK_EVENTS = NOTIFIED_EVENTS | AGREEMENT_EVENTS
SIGNATURE_HEADER = "Tollhouse-Signature"
ENDED = (ConsentStatus.WITHDRAWN, ConsentStatus.REVOKED, ConsentStatus.EXPIRED)
MAX_ENDPOINTS_PER_PARTNER = 10

# --------------------------------------------------------------------------------------------
# SSRF guard


def check_webhook_url(
    url: str, *, settings: WebhookSettings, resolver: Resolver = system_resolver
) -> CheckedUrl | None:
    """Refuse URLs the hub must not call (:func:`hub.registry.netguard.check_url`): not https,
    credentials in the URL, or a host that resolves to a loopback, private, link-local,
    multicast or reserved address. Returns the checked address, which delivery connects to
    (no second DNS lookup to rebind); None where private networks are allowed (development
    and tests), where the URL is only checked for its shape and called as written."""
    try:
        if settings.allow_private_networks:
            check_url_shape(url, what="url", allow_private=True)
            return None
        return check_url(url, what="url", allow_private=False, resolver=resolver)
    except UnsafeUrlError as exc:
        raise UnsafeWebhookError(exc.errors[0].message) from exc


# --------------------------------------------------------------------------------------------
# Outbox writes (in the caller's transaction)


def enqueue_notification(
    session: Session,
    *,
    consent: Consent,
    event_type: str,
    reason: str,
    now: datetime,
    subject: str | None = None,
    partner_id: str | None = None,
) -> ConsentNotification:
    """Write the notification and one pending delivery per active endpoint of the partner told
    (``partner_id``; by default the consent's recipient). ``subject`` is the subject's
    pseudonym for that partner (what its records carry)."""
    partner_id = partner_id if partner_id is not None else consent.recipient_id
    assert partner_id is not None
    data = {
        "consent_id": consent.id,
        "subject": subject,
        "status": consent.status,
        "purpose": consent.purpose,
        "categories": list(consent.categories),
        "receipt_id": consent.receipt_id,
        # The consumer's own words stay with the hub; the hub's reasons go to the partner.
        "reason": "" if event_type == "consent.withdrawn" else reason,
    }
    notification = ConsentNotification(
        consent_id=consent.id,
        partner_id=partner_id,
        event_type=event_type,
        payload={},
        created_at=now,
    )
    return _enqueue(session, notification, data)


def enqueue_agreement_notice(
    session: Session,
    *,
    partner_id: str,
    agreement_id: str,
    event_type: str,
    data: dict[str, Any],
    now: datetime,
) -> ConsentNotification:
    """Push an agreement notice (terminated, expired) to the recipient's webhooks, in the
    caller's transaction. ``data`` is the notice's own payload data."""
    if event_type not in AGREEMENT_EVENTS:
        raise ValueError(f"not an agreement event: {event_type}")
    notification = ConsentNotification(
        agreement_id=agreement_id,
        partner_id=partner_id,
        event_type=event_type,
        payload={},
        created_at=now,
    )
    return _enqueue(session, notification, data)


def _enqueue(
    session: Session, notification: ConsentNotification, data: dict[str, Any]
) -> ConsentNotification:
    session.add(notification)
    session.flush()
    notification.payload = {
        "id": notification.id,
        "type": notification.event_type,
        "created_at": notification.created_at.isoformat(),
        "data": data,
    }
    endpoints = session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.partner_id == notification.partner_id,
            WebhookEndpoint.active.is_(True),
        )
    ).all()
    for endpoint in endpoints:
        if notification.event_type in endpoint.event_types:
            session.add(
                WebhookDelivery(
                    notification_id=notification.id,
                    endpoint_id=endpoint.id,
                    status=NotificationStatus.PENDING,
                    next_attempt_at=notification.created_at,
                    created_at=notification.created_at,
                )
            )
    session.flush()
    return notification


# --------------------------------------------------------------------------------------------
# Partner-facing services


def register_endpoint(
    session: Session,
    *,
    partner_id: str,
    url: str,
    event_types: Sequence[str],
    settings: WebhookSettings,
    resolver: Resolver = system_resolver,
    now: datetime | None = None,
) -> WebhookEndpoint:
    unknown = sorted(set(event_types) - WEBHOOK_EVENTS)
    if unknown or not event_types:
        raise InvalidConsentError(
            f"event types must be among {sorted(WEBHOOK_EVENTS)}", field="events"
        )
    check_webhook_url(url, settings=settings, resolver=resolver)
    count = len(endpoints_of_partner(session, partner_id=partner_id))
    if count >= MAX_ENDPOINTS_PER_PARTNER:
        raise InvalidConsentError(
            f"at most {MAX_ENDPOINTS_PER_PARTNER} webhook endpoints per partner", field="url"
        )
    endpoint = WebhookEndpoint(
        partner_id=partner_id,
        url=url,
        event_types=sorted(set(event_types)),
        active=True,
        created_at=now or utcnow(),
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def endpoints_of_partner(session: Session, *, partner_id: str) -> Sequence[WebhookEndpoint]:
    return session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.partner_id == partner_id, WebhookEndpoint.active.is_(True))
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    ).all()


def disable_endpoint(
    session: Session, *, partner_id: str, endpoint_id: str, now: datetime | None = None
) -> WebhookEndpoint:
    endpoint = session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id,
            WebhookEndpoint.partner_id == partner_id,
            WebhookEndpoint.active.is_(True),
        )
    ).one_or_none()
    if endpoint is None:
        raise WebhookNotFoundError(endpoint_id)
    endpoint.active = False
    endpoint.disabled_at = now or utcnow()
    for delivery in session.scalars(
        select(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status == NotificationStatus.PENDING,
        )
    ):
        delivery.status = NotificationStatus.FAILED
        delivery.last_error = "endpoint disabled"
    session.flush()
    return endpoint


def notifications_of_partner(
    session: Session, *, partner_id: str, unacknowledged: bool = False, limit: int = 100
) -> Sequence[ConsentNotification]:
    query = select(ConsentNotification).where(ConsentNotification.partner_id == partner_id)
    if unacknowledged:
        query = query.where(ConsentNotification.acknowledged_at.is_(None))
    return session.scalars(
        query.order_by(ConsentNotification.created_at, ConsentNotification.id).limit(limit)
    ).all()


def acknowledge(
    session: Session,
    *,
    partner_id: str,
    notification_id: str,
    actor: str,
    now: datetime | None = None,
) -> ConsentNotification:
    """The partner confirms it received and acted on a notification. Idempotent: the first
    acknowledgement's time is kept."""
    notification = session.scalars(
        select(ConsentNotification)
        .where(
            ConsentNotification.id == notification_id,
            ConsentNotification.partner_id == partner_id,
        )
        .with_for_update()
    ).one_or_none()
    if notification is None:
        raise NotificationNotFoundError(notification_id)
    if notification.acknowledged_at is None:
        notification.acknowledged_at = now or utcnow()
        notification.acknowledged_by = actor
        session.flush()
    return notification


def attest_deletion(
    session: Session,
    *,
    partner_id: str,
    consent_id: str,
    statement: str,
    deleted_at: datetime,
    records_deleted: int | None = None,
    now: datetime | None = None,
) -> DeletionAttestation:
    """The recipient attests it deleted what it held under an ended consent; this also
    acknowledges the consent's notifications to it. Under a role-addressed consent, any
    partner that received records under it attests for itself."""
    now = now or utcnow()
    consent = session.scalars(select(Consent).where(Consent.id == consent_id)).one_or_none()
    if consent is None or (
        consent.recipient_id != partner_id
        and (
            consent.recipient_id is not None or not was_released_to(session, consent_id, partner_id)
        )
    ):
        raise ConsentNotFoundError(consent_id)
    if consent.status not in ENDED:
        raise InvalidConsentTransitionError(consent_id, consent.status, "deletion-attested")
    if not statement.strip():
        raise InvalidConsentError("say what was deleted", field="statement")
    if deleted_at.tzinfo is None:
        raise InvalidConsentError("deleted_at must carry a timezone", field="deleted_at")
    if deleted_at > now + timedelta(minutes=5):
        raise InvalidConsentError("deleted_at is in the future", field="deleted_at")
    if records_deleted is not None and records_deleted < 0:
        raise InvalidConsentError("records_deleted must not be negative", field="records_deleted")
    attestation = DeletionAttestation(
        consent_id=consent_id,
        partner_id=partner_id,
        statement=statement.strip(),
        records_deleted=records_deleted,
        deleted_at=deleted_at,
        attested_at=now,
    )
    session.add(attestation)
    for notification in session.scalars(
        select(ConsentNotification).where(
            ConsentNotification.consent_id == consent_id,
            ConsentNotification.partner_id == partner_id,
            ConsentNotification.acknowledged_at.is_(None),
        )
    ):
        notification.acknowledged_at = now
        notification.acknowledged_by = f"partner:{partner_id}:deletion-attestation"
    session.flush()
    return attestation


@dataclass(frozen=True)
class UnacknowledgedWithdrawal:
    notification_id: str
    consent_id: str
    partner_id: str
    event_type: str
    notified_at: datetime
    delivered: bool
    attempts: int
    deletion_attested: bool


def unacknowledged_withdrawals(
    session: Session, *, older_than: datetime | None = None, limit: int = 500
) -> list[UnacknowledgedWithdrawal]:
    """For the regulator: ended consents whose recipient has not acknowledged the notice, one
    row per notification (a role-addressed consent's: one per partner that received records)."""
    query = select(ConsentNotification).where(
        ConsentNotification.acknowledged_at.is_(None), ConsentNotification.consent_id.is_not(None)
    )
    if older_than is not None:
        query = query.where(ConsentNotification.created_at <= older_than)
    rows = session.scalars(
        query.order_by(ConsentNotification.created_at, ConsentNotification.id).limit(limit)
    ).all()
    ids = [n.id for n in rows]
    deliveries: dict[str, list[WebhookDelivery]] = {}
    if ids:
        for d in session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.notification_id.in_(ids))
        ):
            deliveries.setdefault(d.notification_id, []).append(d)
    # Per consent and partner: under a role-addressed consent, each partner attests for itself.
    attested = {
        (consent_id, partner_id)
        for consent_id, partner_id in session.execute(
            select(DeletionAttestation.consent_id, DeletionAttestation.partner_id).where(
                DeletionAttestation.consent_id.in_([n.consent_id for n in rows if n.consent_id])
            )
        )
    }
    return [
        UnacknowledgedWithdrawal(
            notification_id=n.id,
            consent_id=n.consent_id or "",
            partner_id=n.partner_id,
            event_type=n.event_type,
            notified_at=n.created_at,
            delivered=any(
                d.status == NotificationStatus.DELIVERED for d in deliveries.get(n.id, [])
            ),
            attempts=sum(d.attempts for d in deliveries.get(n.id, [])),
            deletion_attested=(n.consent_id, n.partner_id) in attested,
        )
        for n in rows
    ]


# --------------------------------------------------------------------------------------------
# Delivery


def sign_detached(body: bytes, keys: SigningKeyProvider) -> str:
    """A detached compact JWS (RFC 7515 appendix F) of ``body``: ``header..signature``."""
    header = {"alg": "Ed25519", "kid": keys.kid, "typ": "tollhouse-webhook+jws"}
    token = jws.serialize_compact(header, body, keys.private_key, algorithms=["Ed25519"])
    protected, _, signature = token.split(".")
    return f"{protected}..{signature}"


@dataclass
class DeliveryReport:
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Claimed:
    delivery_id: int
    url: str
    body: bytes
    notification_id: str
    event_type: str
    attempt: int


class WebhookDispatcher:
    """Delivers due outbox rows. Run it from ``tollhouse webhooks deliver`` (or a loop)."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        keys: SigningKeyProvider,
        settings: WebhookSettings,
        transport: httpx.BaseTransport | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._sessions = session_factory
        self._keys = keys
        self._settings = settings
        self._transport = transport
        self._resolver = resolver

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failure: base * 2**(attempts-1), capped."""
        seconds = self._settings.backoff_base_seconds * (2 ** max(attempts - 1, 0))
        return timedelta(seconds=min(seconds, self._settings.backoff_max_seconds))

    def _claim(self, now: datetime, batch: int) -> list[_Claimed]:
        session = self._sessions()
        try:
            rows = session.execute(
                select(WebhookDelivery, WebhookEndpoint.url, ConsentNotification)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .join(
                    ConsentNotification,
                    ConsentNotification.id == WebhookDelivery.notification_id,
                )
                .where(
                    WebhookDelivery.status == NotificationStatus.PENDING,
                    WebhookDelivery.next_attempt_at <= now,
                )
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(batch)
                .with_for_update(skip_locked=True, of=WebhookDelivery)
            ).all()
            claimed: list[_Claimed] = []
            for delivery, url, notification in rows:
                delivery.attempts += 1
                # The lease: nobody else picks it up while we call the endpoint.
                delivery.next_attempt_at = now + timedelta(seconds=self._settings.lease_seconds)
                claimed.append(
                    _Claimed(
                        delivery_id=delivery.id,
                        url=url,
                        body=orjson.dumps(notification.payload),
                        notification_id=notification.id,
                        event_type=notification.event_type,
                        attempt=delivery.attempts,
                    )
                )
            session.commit()
            return claimed
        finally:
            session.close()

    def _send(self, client: httpx.Client, item: _Claimed) -> tuple[bool, int | None, str | None]:
        try:
            checked = check_webhook_url(item.url, settings=self._settings, resolver=self._resolver)
        except UnsafeWebhookError as exc:
            return False, None, f"refused: {exc}"
        url, headers, extensions = item.url, {}, {}
        if checked is not None:  # connect to the address just checked, TLS still for the host
            url, headers["Host"] = checked.pinned_url(), checked.host_header
            if checked.scheme == "https":
                extensions["sni_hostname"] = checked.host
        headers |= {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign_detached(item.body, self._keys),
            "Tollhouse-Event-Id": item.notification_id,
            "Tollhouse-Event-Type": item.event_type,
            "Tollhouse-Delivery-Attempt": str(item.attempt),
        }
        try:
            response = client.post(url, content=item.body, headers=headers, extensions=extensions)
        except httpx.HTTPError as exc:
            return False, None, f"{type(exc).__name__}"
        if 200 <= response.status_code < 300:
            return True, response.status_code, None
        return False, response.status_code, f"HTTP {response.status_code}"

    def _record(
        self,
        item: _Claimed,
        ok: bool,
        code: int | None,
        error: str | None,
        report: DeliveryReport,
        now: datetime,
    ) -> None:
        session = self._sessions()
        try:
            delivery = session.get(WebhookDelivery, item.delivery_id, with_for_update=True)
            if delivery is None or delivery.status != NotificationStatus.PENDING:
                return
            delivery.last_status_code = code
            if ok:
                delivery.status = NotificationStatus.DELIVERED
                delivery.delivered_at = utcnow()
                delivery.last_error = None
                report.delivered += 1
            elif delivery.attempts >= self._settings.max_attempts:
                delivery.status = NotificationStatus.FAILED
                delivery.last_error = (error or "")[:500]
                report.failed += 1
            else:
                delivery.next_attempt_at = now + self.backoff(delivery.attempts)
                delivery.last_error = (error or "")[:500]
                report.retrying += 1
            if error:
                report.errors.append(error)
            session.commit()
        finally:
            session.close()

    def deliver_due(self, *, now: datetime | None = None, batch: int = 100) -> DeliveryReport:
        """Claim and deliver every due delivery once; return what happened."""
        report = DeliveryReport()
        now = now or utcnow()
        claimed = self._claim(now, batch)
        if not claimed:
            return report
        with httpx.Client(
            transport=self._transport,
            timeout=self._settings.timeout_seconds,
            follow_redirects=False,
            trust_env=False,
        ) as client:
            for item in claimed:
                report.attempted += 1
                ok, code, error = self._send(client, item)
                self._record(item, ok, code, error, report, now)
        return report


def verify_signature(body: bytes, signature: str, jwks: dict[str, Any]) -> bool:
    """What a partner does: check a delivery's detached JWS against the hub's JWKS."""
    from joserfc.jwk import KeySet
    from joserfc.util import urlsafe_b64encode

    try:
        protected, empty, sig = signature.split(".")
        if empty:
            return False
        payload = urlsafe_b64encode(body).decode()
        key_set = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        jws.deserialize_compact(f"{protected}.{payload}.{sig}", key_set, algorithms=["Ed25519"])
    except Exception:  # noqa: BLE001 - any failure means "does not verify"
        return False
    return True
