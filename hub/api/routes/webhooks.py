"""Partners register webhook endpoints for consent notifications and acknowledge them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from consent.schemas import (
    NotificationList,
    NotificationPublic,
    WebhookCreate,
    WebhookList,
    WebhookPublic,
)
from consent.webhooks import (
    acknowledge,
    disable_endpoint,
    endpoints_of_partner,
    notifications_of_partner,
    register_endpoint,
)
from hub.api.deps import Puller, RuntimeDep, SessionDep
from hub.api.responses import json_response

router = APIRouter(tags=["webhooks"])

WebhookId = Annotated[str, Path(max_length=64)]
NotificationId = Annotated[str, Path(max_length=64)]


@router.post(
    "/v1/webhooks",
    status_code=201,
    response_model=WebhookPublic,
    summary="Register a webhook endpoint for consent notifications",
    description=(
        "Deliveries are JSON, signed with a detached compact JWS in `Tollhouse-Signature` "
        "(Ed25519; verify with `/.well-known/jwks.json`), retried with exponential backoff "
        "until a 2xx. URLs must be https and must not resolve to private or loopback addresses."
    ),
)
def create_webhook(
    body: WebhookCreate, caller: Puller, session: SessionDep, runtime: RuntimeDep
) -> Response:
    endpoint = register_endpoint(
        session,
        partner_id=caller.partner_id,
        url=body.url,
        event_types=list(body.events),
        settings=runtime.webhook_settings,
    )
    return json_response(WebhookPublic.of(endpoint), status_code=201)


@router.get("/v1/webhooks", response_model=WebhookList, summary="My webhook endpoints")
def list_webhooks(caller: Puller, session: SessionDep) -> Response:
    rows = endpoints_of_partner(session, partner_id=caller.partner_id)
    return json_response(WebhookList(items=[WebhookPublic.of(e) for e in rows]))


@router.delete("/v1/webhooks/{webhook_id}", status_code=204, summary="Stop using an endpoint")
def delete_webhook(webhook_id: WebhookId, caller: Puller, session: SessionDep) -> Response:
    disable_endpoint(session, partner_id=caller.partner_id, endpoint_id=webhook_id)
    return Response(status_code=204)


@router.get(
    "/v1/consent-notifications",
    response_model=NotificationList,
    summary="Consent notifications sent to me",
)
def list_notifications(
    caller: Puller,
    session: SessionDep,
    unacknowledged: Annotated[bool, Query()] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    rows = notifications_of_partner(
        session, partner_id=caller.partner_id, unacknowledged=unacknowledged, limit=limit
    )
    return json_response(NotificationList(items=[NotificationPublic.of(n) for n in rows]))


@router.post(
    "/v1/consent-notifications/{notification_id}/acknowledgement",
    response_model=NotificationPublic,
    summary="Acknowledge a consent notification (idempotent)",
)
def acknowledge_notification(
    notification_id: NotificationId, caller: Puller, session: SessionDep
) -> NotificationPublic:
    notification = acknowledge(
        session,
        partner_id=caller.partner_id,
        notification_id=notification_id,
        actor=f"partner:{caller.partner_id}",
    )
    return NotificationPublic.of(notification)
