"""Typed errors of the consent service; the hub maps them to problem+json (``hub.api.problems``).

::

    ConsentError
    ├── ConsentNotFoundError            no such consent visible to this caller       (404)
    ├── NotificationNotFoundError       no such notification for this partner        (404)
    ├── WebhookNotFoundError            no such webhook endpoint for this partner    (404)
    ├── InvalidConsentTransitionError   the status does not allow the change         (409)
    ├── InvalidConsentError             malformed or unknown terms, dates, purpose   (422)
    │   ├── FairUseExceededError        beyond the purpose's fair-use caps           (422)
    │   └── WideningError               a grant asks for more than was requested     (422)
    └── UnsafeWebhookError              a webhook URL the hub will not call          (422)
"""

from __future__ import annotations


class ConsentError(Exception):
    """Base class of consent errors."""


class ConsentNotFoundError(ConsentError):
    """No consent with this id belongs to this subject (or recipient)."""


class NotificationNotFoundError(ConsentError):
    """No notification with this id was sent to this partner."""


class WebhookNotFoundError(ConsentError):
    """No webhook endpoint with this id belongs to this partner."""


class InvalidConsentTransitionError(ConsentError):
    """The consent's current status does not allow the requested change."""

    def __init__(self, consent_id: str, current: str, requested: str) -> None:
        super().__init__(f"consent {consent_id} is {current}; it cannot become {requested}")
        self.consent_id = consent_id
        self.current = current
        self.requested = requested


class InvalidConsentError(ConsentError):
    """The consent asked for is malformed (dates, categories, purpose).

    ``field`` names the offending input where one can be named.
    """

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class FairUseExceededError(InvalidConsentError):
    """The terms exceed the purpose's fair-use caps (duration, data range, fetches per day)."""

    def __init__(self, message: str, *, field: str, cap: int) -> None:
        super().__init__(message, field=field)
        self.cap = cap


class WideningError(InvalidConsentError):
    """A grant may narrow what was requested, never widen it."""


class UnsafeWebhookError(ConsentError):
    """The webhook URL is not one the hub will call (scheme, private address, credentials)."""
