"""Tollhouse partner connectors: a typed SDK (sync and async) and the ``connect`` CLI.

    from connectors import HubClient

    with HubClient("https://hub.example", "dealer-42", client_secret="...") as hub:
        for page in hub.iter_records("agr-1"):
            ...

``WebhookReceiver`` verifies the hub's signed consent webhooks and applies withdrawals to a SQL
sink (``connectors._webhooks``). The exception tree is documented in ``connectors._exceptions``.
"""

from __future__ import annotations

from ._auth import ClientCredentials
from ._client import AsyncHubClient, HubClient
from ._core import Retry
from ._exceptions import (
    BadRequest,
    Conflict,
    ConnectError,
    ConsentRequired,
    DecodeError,
    DecryptionError,
    FieldError,
    Forbidden,
    HubError,
    InsufficientScope,
    InvalidCursor,
    NotFound,
    OAuthError,
    PayloadTooLarge,
    ProblemError,
    RateLimited,
    ServerError,
    Timeout,
    TransportError,
    Unauthorized,
    ValidationFailed,
)
from ._models import Agreement, Page, PublishRecord, PublishResult, Record, Subject
from ._webhooks import WebhookReceiver, WebhookResponse

__all__ = [
    "Agreement",
    "AsyncHubClient",
    "BadRequest",
    "ClientCredentials",
    "Conflict",
    "ConnectError",
    "ConsentRequired",
    "DecodeError",
    "DecryptionError",
    "FieldError",
    "Forbidden",
    "HubClient",
    "HubError",
    "InsufficientScope",
    "InvalidCursor",
    "NotFound",
    "OAuthError",
    "Page",
    "PayloadTooLarge",
    "ProblemError",
    "PublishRecord",
    "PublishResult",
    "RateLimited",
    "Record",
    "Retry",
    "ServerError",
    "Subject",
    "Timeout",
    "TransportError",
    "Unauthorized",
    "ValidationFailed",
    "WebhookReceiver",
    "WebhookResponse",
]

__locals = locals()
for __name in __all__:
    if not __name.startswith("__"):
        setattr(__locals[__name], "__module__", "connectors")  # noqa: B010
