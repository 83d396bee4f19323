"""Typed errors of the audit log.

Exception tree (all derive from :class:`hub.errors.HubError`)::

    HubError
    ├── AuditError                      a fault inside the log (500): never the caller's input
    │   ├── InvalidEventError           the pipeline built an event the log cannot store
    │   ├── LogIntegrityError           stored rows contradict the log's invariants
    │   ├── LogKeyError                 the log's signing key file is missing, unsafe or malformed
    │   └── CheckpointError             a checkpoint is malformed or its signature fails
    ├── BadRequestError
    │   ├── InvalidAuditQueryError      a query's arguments are out of range
    │   ├── ProofRequestError           a proof was asked for impossible sizes or indices
    │   ├── ExportFormatError           an export bundle cannot be read at all
    │   └── InvalidCosignatureError     a witness sent a cosignature that does not verify
    ├── ConflictError
    │   ├── UnknownTreeHeadError        a cosigned checkpoint is not a head this log stored
    │   └── WitnessNameTakenError       a witness name is bound to another partner or key
    └── NotFoundError
        └── NoTreeHeadError             no signed tree head covers what was asked

The witness client (``tollhouse audit witness``) raises, outside the HTTP tree::

    WitnessError                        the witness could not do its round (network, auth, state)
    └── SplitViewError                  the log showed a view inconsistent with one it cosigned
"""

from __future__ import annotations

from pathlib import Path

from hub.errors import BadRequestError, ConflictError, HubError, NotFoundError


class AuditError(HubError):
    slug = "audit-error"
    status = 500
    title = "Audit log error"


class InvalidEventError(AuditError):
    slug = "audit-invalid-event"
    title = "Invalid audit event"


class LogIntegrityError(AuditError):
    slug = "audit-log-integrity"
    title = "Audit log integrity violated"


class LogKeyError(AuditError):
    slug = "audit-log-key"
    title = "Audit log key unusable"


class CheckpointError(AuditError):
    slug = "audit-checkpoint"
    title = "Invalid checkpoint"


class InvalidAuditQueryError(BadRequestError):
    slug = "audit-invalid-query"
    title = "Invalid audit query"


class ProofRequestError(BadRequestError):
    slug = "audit-invalid-proof-request"
    title = "Invalid proof request"


class ExportFormatError(BadRequestError):
    slug = "audit-export-format"
    title = "Unreadable audit export"


class NoTreeHeadError(NotFoundError):
    slug = "audit-no-tree-head"
    title = "No signed tree head"


class InvalidCosignatureError(BadRequestError):
    slug = "audit-invalid-cosignature"
    title = "Invalid cosignature"


class UnknownTreeHeadError(ConflictError):
    slug = "audit-unknown-tree-head"
    title = "Unknown tree head"


class WitnessNameTakenError(ConflictError):
    slug = "audit-witness-name-taken"
    title = "Witness name taken"


class WitnessError(Exception):
    """A witness round failed before anything was cosigned."""


class SplitViewError(WitnessError):
    """The log presented a history inconsistent with a checkpoint the witness cosigned.

    ``evidence`` is the file the witness wrote the conflicting checkpoints (and proof) to.
    """

    def __init__(self, message: str, evidence: Path | None = None) -> None:
        super().__init__(message)
        self.evidence = evidence
