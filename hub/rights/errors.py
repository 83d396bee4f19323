"""Typed errors of rights requests (rendered by ``hub.api.problems`` for partners and by the
portal as pages for consumers).

::

    HubError
    ├── RightsRequestNotFoundError   no such request (or not this caller's)          (404)
    ├── RightsTransitionError        the request's status does not allow the change  (409)
    ├── SubjectErasedError           the consumer's data was erased already          (409)
    └── InvalidRightsRequestError    a bad field, value or reason                    (422)
"""

from __future__ import annotations

from hub.errors import ConflictError, NotFoundError, ValidationFailedError


class RightsRequestNotFoundError(NotFoundError):
    slug = "rights-request-not-found"
    title = "Rights request not found"


class RightsTransitionError(ConflictError):
    slug = "rights-request-transition"
    title = "The request's status does not allow this change"


class SubjectErasedError(ConflictError):
    slug = "subject-erased"
    title = "The consumer's data was erased"


class InvalidRightsRequestError(ValidationFailedError):
    slug = "invalid-rights-request"
    title = "Invalid rights request"
