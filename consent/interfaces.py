"""The small contracts through which the hub hands the consent service what it needs.

``consent`` imports nothing of the hub but ``hub.store.base`` and the SSRF guard
(``hub.registry.netguard``, ``hub.registry.errors``); ``hub.runtime`` builds objects
that satisfy these protocols (``hub.auth.keys.SigningKeys`` is a :class:`SigningKeyProvider`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from joserfc.jwk import OKPKey
from sqlalchemy.orm import Session


class SigningKeyProvider(Protocol):
    """The hub's Ed25519 signing key and its published JWKS."""

    @property
    def private_key(self) -> OKPKey: ...

    @property
    def kid(self) -> str: ...

    def public_jwks(self) -> dict[str, Any]: ...


class AuditSink(Protocol):
    """Appends one event to the hub's audit log, in the caller's transaction."""

    def __call__(self, session: Session, event: Mapping[str, Any], /) -> object: ...


class PartnerDirectory(Protocol):
    """Display names of partners by id (for the consumer's plain-words summaries)."""

    def __call__(self, session: Session, ids: Sequence[str], /) -> Mapping[str, str]: ...


class SubjectPseudonyms(Protocol):
    """The subject's stable pseudonym for one recipient (the ``subject`` its released records
    carry), so a webhook tells the recipient whose rows to delete without naming the person."""

    def __call__(self, recipient_id: str, subject_id: str, /) -> str: ...
