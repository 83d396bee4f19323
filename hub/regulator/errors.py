"""Typed errors of the regulator dashboard, rendered as HTML pages by :mod:`hub.regulator.web`.

::

    RegulatorError
    ├── CsrfError                a form without the session's CSRF token          (403)
    ├── SignInRequiredError      a page that needs a signed-in regulator          (303 to sign-in)
    ├── DashboardNotFoundError   no such page or item                             (404)
    └── RateLimitedError         too many failed sign-ins for this client         (429)
"""

from __future__ import annotations

from hub.portal.i18n import N_


class RegulatorError(Exception):
    status = 500
    #: A msgid of the dashboard's catalogs.
    message = N_("Something went wrong.")

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.message)


class CsrfError(RegulatorError):
    status = 403
    message = N_("This form has expired. Please go back, reload the page and try again.")


class SignInRequiredError(RegulatorError):
    status = 303
    message = N_("Please sign in.")


class DashboardNotFoundError(RegulatorError):
    status = 404
    message = N_("We could not find that.")


class RateLimitedError(RegulatorError):
    status = 429
    message = N_("Too many failed sign-ins. Please wait a few minutes and try again.")
