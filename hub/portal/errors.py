"""Typed errors of the consumer portal, rendered as HTML pages by :mod:`hub.portal.web`.

::

    PortalError
    ├── CsrfError                 a form without the session's CSRF token           (403)
    ├── SignInRequiredError       a page that needs a signed-in consumer            (303 to sign-in)
    ├── PortalNotFoundError       no such consent/request/receipt for this consumer (404)
    ├── PortalConflictError       the consent's status does not allow the change    (409)
    ├── PortalInvalidError        a form value the consent service refused          (422)
    │   └── IdentifierInvalidError  sign-in: neither a mobile number nor an e-mail    (422)
    ├── RateLimitedError          too many codes asked for this identifier or IP    (429)
    └── SignInFailedError         wrong or expired code                             (400)
        └── ChallengeLockedError  too many wrong codes: the code is dead            (400)
"""

from __future__ import annotations

from hub.portal.i18n import N_


class PortalError(Exception):
    status = 500
    #: A msgid of the portal's catalogs, shown to the consumer.
    message = N_("Something went wrong.")

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.message)


class CsrfError(PortalError):
    status = 403
    message = N_("This form has expired. Please go back, reload the page and try again.")


class SignInRequiredError(PortalError):
    status = 303
    message = N_("Please sign in.")


class PortalNotFoundError(PortalError):
    status = 404
    message = N_("We could not find that.")


class PortalConflictError(PortalError):
    status = 409
    message = N_("This consent cannot be changed that way any more.")


class PortalInvalidError(PortalError):
    status = 422
    message = N_("Some of your choices could not be accepted.")


class IdentifierInvalidError(PortalInvalidError):
    message = N_("That is neither a mobile number nor an e-mail address.")


class RateLimitedError(PortalError):
    status = 429
    message = N_("Too many codes were requested. Please wait a few minutes and try again.")


class SignInFailedError(PortalError):
    status = 400
    message = N_("That code is wrong or has expired.")


class ChallengeLockedError(SignInFailedError):
    message = N_("Too many wrong codes. Please ask for a new code.")
