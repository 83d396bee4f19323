"""A regulator finds a subject's audit pseudonym from one identifier (VIN, ID number, mobile,
e-mail address).

The identifier is normalised, checked (well-formed, not a placeholder such as an all-zeros ID
number, ``test`` or an address at a domain reserved for tests and documentation such as
``test@example.com``: :func:`hub.ratelimit.lookups.is_placeholder`, the rule partners' lookups
follow too), looked up by its
keyed blind index, and turned into the audit pseudonym the
release pipeline writes into the log (``protector.pseudonym("audit", subject_id)``). The lookup
is itself an audit event (``subject.looked_up``) naming the regulator and the pseudonym, never
the identifier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.audit import append_event
from hub.crypto import FieldProtector
from hub.crypto.errors import NormalizationError
from hub.crypto.normalize import normalize_identifier
from hub.deid.identifiers import is_valid_cn_mobile, is_valid_prc_id, is_valid_vin
from hub.errors import FieldError, NotFoundError, ValidationFailedError
from hub.ratelimit.lookups import is_placeholder
from hub.records.models import DataSubject, SubjectIdentifier
from hub.records.service import EMAIL_MAX_LENGTH, is_valid_email

LookupKind = Literal["vin", "id_number", "mobile", "email"]
LOOKUP_KINDS: Final[tuple[str, ...]] = get_args(LookupKind)
AUDIT_RECIPIENT: Final = "audit"
#: Longest identifier accepted as written (an e-mail address; the others are far shorter).
MAX_VALUE_LENGTH: Final = EMAIL_MAX_LENGTH

#: Written-out words that stand for "no real value" in test and demo data.
_PLACEHOLDER_WORDS: Final = (
    "TEST",
    "DUMMY",
    "SAMPLE",
    "EXAMPLE",
    "FAKE",
    "NULL",
    "NONE",
    "UNKNOWN",
    "XXXX",
    "测试",
    "示例",
)


class SubjectNotFoundError(NotFoundError):
    slug = "subject-not-found"
    title = "No such subject"


_WORDS = re.compile(r"^[A-Za-z\s\-_./]*$")


def checked_identifier(kind: str, value: str) -> str:
    """The normalised identifier, or :class:`ValidationFailedError` (422) if it is unknown,
    malformed or a placeholder."""
    if kind not in LOOKUP_KINDS:
        raise ValidationFailedError(
            "Look a subject up by vin, id_number, mobile or email.",
            [FieldError("kind", f"one of {', '.join(LOOKUP_KINDS)}")],
        )
    raw = value.strip()
    if not raw or (_WORDS.match(raw) and kind != "vin") or raw.upper() in _PLACEHOLDER_WORDS:
        raise _placeholder(kind)
    try:
        normalized = normalize_identifier(kind, raw)
    except NormalizationError as exc:
        raise ValidationFailedError(
            "This identifier is malformed.", [FieldError(kind, str(exc))]
        ) from exc
    if is_placeholder(kind, normalized):
        raise _placeholder(kind)
    well_formed = {
        "vin": lambda v: is_valid_vin(v),
        "id_number": lambda v: is_valid_prc_id(v),
        "mobile": lambda v: is_valid_cn_mobile(v) if v.startswith("+86") else True,
        "email": is_valid_email,
    }[kind](normalized)
    if not well_formed:
        raise ValidationFailedError(
            "This identifier is malformed.", [FieldError(kind, f"not a valid {kind}")]
        )
    return normalized


def _placeholder(kind: str) -> ValidationFailedError:
    error = ValidationFailedError(
        "This looks like a placeholder, not a real identifier.",
        [
            FieldError(
                kind,
                "a placeholder value (test data, all zeros, a sample number, a test address)",
            )
        ],
    )
    error.slug = "placeholder-identifier"
    return error


@dataclass(frozen=True, slots=True)
class LookedUp:
    subject: str  # the audit pseudonym
    event_index: int


def look_up_subject(
    session: Session,
    *,
    protector: FieldProtector,
    kind: str,
    value: str,
    asked_by: str,
    request_id: str,
) -> LookedUp:
    """The subject's audit pseudonym; the lookup is logged either way (the caller commits).

    A miss or a refused identifier is logged and committed here before the error is raised, so
    that fishing for identifiers leaves a trace too.
    """
    event = {
        "kind": "subject.looked_up",
        "partner_id": asked_by,
        "request_id": request_id,
        "identifier_kind": kind,
    }
    try:
        normalized = checked_identifier(kind, value)
    except ValidationFailedError as refused:
        # Placeholders and malformed values are fishing too: logged (kind and reason, never the
        # value) and committed before the 422.
        append_event(session, {**event, "outcome": "refused", "reason": refused.slug})
        session.commit()
        raise
    subject_id = session.scalars(
        select(SubjectIdentifier.subject_id)
        .join(DataSubject, DataSubject.id == SubjectIdentifier.subject_id)
        .where(
            SubjectIdentifier.kind == kind,
            SubjectIdentifier.digest == protector.blind_index(kind, normalized),
        )
    ).first()
    if subject_id is None:
        append_event(session, {**event, "outcome": "not_found"})
        session.commit()
        raise SubjectNotFoundError("No data subject has this identifier.")
    pseudonym = protector.pseudonym(AUDIT_RECIPIENT, subject_id)
    appended = append_event(session, {**event, "outcome": "found", "subjects": [pseudonym]})
    return LookedUp(subject=pseudonym, event_index=appended.index)
