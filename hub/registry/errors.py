"""Typed errors of the partner registry. ``hub.api.problems`` renders them (they are all
:class:`hub.errors.HubError` subclasses, so each carries its status, slug and title)."""

from __future__ import annotations

from collections.abc import Sequence

from hub.errors import (
    ConflictError,
    FieldError,
    ForbiddenError,
    NotFoundError,
    ValidationFailedError,
)


class AgreementNotFoundError(NotFoundError):
    slug = "not-found"

    def __init__(self) -> None:
        super().__init__("No agreement with this id is visible to you.")


class DatasetNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No dataset with this id is visible to you.")


class PartnerNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No partner with this id.")


class AgreementInactiveError(ForbiddenError):
    slug = "agreement-inactive"
    title = "Agreement not in force"

    def __init__(self, reason: str) -> None:
        super().__init__(f"The agreement is not in force ({reason}).")
        self.reason = reason


class NotAPartyError(ForbiddenError):
    """The caller may see the agreement but may not make this change to it."""

    slug = "not-allowed-for-party"
    title = "Not allowed for this party"


class InvalidTransitionError(ConflictError):
    slug = "invalid-agreement-transition"
    title = "Invalid agreement transition"

    def __init__(self, current: str, requested: str) -> None:
        super().__init__(f"An agreement that is {current} cannot be {requested}.")
        self.current = current
        self.requested = requested


class PartnerStateError(ConflictError):
    slug = "invalid-partner-transition"
    title = "Invalid partner transition"


class DuplicateError(ConflictError):
    slug = "already-exists"
    title = "Already exists"


class RegistryValidationError(ValidationFailedError):
    """A registration, declaration or proposal that does not hold together."""

    def __init__(self, detail: str, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(detail, errors)


class PolicyRefusedError(ValidationFailedError):
    """A proposal the policies refuse: ``reasons`` are the rules' ids
    (``purpose.not_allowed_for_role``, ``minimisation.field_not_needed``...)."""

    slug = "proposal-refused"
    title = "Proposal refused by policy"

    def __init__(self, reasons: Sequence[str], errors: Sequence[FieldError] = ()) -> None:
        super().__init__("The policies refuse this proposal: " + ", ".join(reasons) + ".", errors)
        self.reasons = list(reasons)


class SchemaChangeError(ValidationFailedError):
    slug = "schema-not-additive"
    title = "Schema change is not additive"


class UnsafeUrlError(ValidationFailedError):
    slug = "unsafe-url"
    title = "URL refused"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}.", [FieldError(field, message)])


class JwksFetchError(ValidationFailedError):
    """The JWKS URL did not answer with a usable key set (timeout, status, size, content)."""

    slug = "jwks-unavailable"
    title = "JWKS could not be fetched"

    def __init__(self, message: str) -> None:
        super().__init__(f"jwks_uri: {message}.", [FieldError("jwks_uri", message)])
