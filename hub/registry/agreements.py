"""Data-sharing agreements: negotiated by the two parties, checked by the policies, enforced by
the release pipeline.

Lifecycle::

    proposed --accept (counterparty)--> accepted --start date--> active
       |  \\--reject (counterparty)--> rejected
       |                      accepted/active --suspend (either party, operator)--> suspended
       |                      suspended --resume (the side that suspended, operator)--> active
       \\-- proposed/accepted/active/suspended --terminate (either party, operator)--> terminated
    accepted/active/suspended --end date--> expired

A proposal is an offer when the provider makes it, a request when the recipient does. Every
transition appends an :class:`AgreementEvent` (actor, party, reason, time) in the same
transaction; suspension and termination take effect for the very next page a recipient pulls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import Table, bindparam, func, or_, select
from sqlalchemy.orm import Session

from consent.webhooks import enqueue_agreement_notice
from hub.errors import FieldError
from hub.policy import PolicyEngine
from hub.registry.errors import (
    AgreementInactiveError,
    AgreementNotFoundError,
    DatasetNotFoundError,
    InvalidTransitionError,
    NotAPartyError,
    PolicyRefusedError,
    RegistryValidationError,
)
from hub.registry.models import (
    Agreement,
    AgreementEvent,
    AgreementNotice,
    AgreementStatus,
    Dataset,
    Partner,
    PartnerStatus,
    Role,
)
from hub.store.base import utcnow
from hub.store.prebuilt import PrebuiltSelect

LEGAL_BASES: Final = (
    "consent",
    "contract",
    "legal_obligation",
    "vital_interest",
    "public_interest",
)
MAX_RETENTION_DAYS: Final = 3650
#: No agreement runs longer than this (nor starts further back): keeps dates sane.
MAX_SPAN_DAYS: Final = 20 * 366
MAX_FIELDS: Final = 200

#: Policy reasons that make a proposal ask for more than its purpose allows. Reasons about
#: consent, cross-border consent or dates are decided per pull, not at proposal time.
PROPOSAL_REASONS: Final = frozenset(
    {
        "purpose.unknown",
        "role.unknown",
        "purpose.not_allowed_for_role",
        "category.unknown",
        "minimisation.field_not_needed",
        "minimisation.identity_not_needed",
    }
)
_REQUEST_LEVEL: Final = frozenset(
    {"purpose.unknown", "role.unknown", "purpose.not_allowed_for_role"}
)

PROVIDER, RECIPIENT, OPERATOR, SYSTEM = "provider", "recipient", "operator", "system"
_ENDED = (AgreementStatus.TERMINATED, AgreementStatus.EXPIRED, AgreementStatus.REJECTED)


@dataclass(frozen=True)
class Actor:
    """Who acts on agreements: a partner, the hub operator (scope ``admin``), a regulator (reads
    everything), or the hub itself (start and end dates)."""

    partner_id: str
    operator: bool = False
    regulator: bool = False

    @classmethod
    def system(cls) -> Actor:
        return cls(partner_id="")

    @property
    def label(self) -> str:
        if not self.partner_id:
            return SYSTEM
        return f"{OPERATOR if self.operator else 'partner'}:{self.partner_id}"

    def party(self, agreement: Agreement) -> str | None:
        if self.partner_id and self.partner_id == agreement.provider_id:
            return PROVIDER
        if self.partner_id and self.partner_id == agreement.recipient_id:
            return RECIPIENT
        if self.operator:
            return OPERATOR
        if not self.partner_id:
            return SYSTEM
        return None

    def sees(self, agreement: Agreement) -> bool:
        return self.regulator or self.party(agreement) not in (None, SYSTEM)


@dataclass(frozen=True)
class Proposal:
    dataset_id: str
    purpose: str
    fields: tuple[str, ...]
    retention_days: int
    valid_from: datetime
    valid_until: datetime
    recipient_id: str | None = None
    cross_border: bool = False
    legal_basis: str = "consent"


# --------------------------------------------------------------------------------------------
# Policy check


def _rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def check_proposal(
    policy: PolicyEngine, *, recipient: Partner, dataset: Dataset, proposal: Proposal
) -> None:
    """Ask the policies whether the proposal stays within its purpose: the purpose allowed for
    the recipient's role, every field's category among the purpose's categories (and not one
    the purpose would drop anyway). The rulebook decides, once per distinct category, with the
    most favourable consent, so only what the agreement itself asks for can fail."""
    by_category: dict[str, list[str]] = {}
    for name in proposal.fields:
        by_category.setdefault(dataset.field_categories[name], []).append(name)
    reasons: set[str] = set()
    errors: list[FieldError] = []
    for category, names in sorted(by_category.items()):
        decision = policy.decide(
            {
                "partner": {
                    "id": recipient.id,
                    "role": recipient.role,
                    "jurisdiction": recipient.jurisdiction,
                },
                "purpose": proposal.purpose,
                "agreement": {
                    "id": "proposal",
                    "provider": dataset.provider_id,
                    "recipient": recipient.id,
                    "purpose": proposal.purpose,
                    "status": "active",
                    "valid_from": _rfc3339(proposal.valid_from),
                    "valid_until": _rfc3339(proposal.valid_until),
                    "fields": names,
                    "cross_border": proposal.cross_border,
                },
                "dataset": {
                    "id": dataset.id,
                    "provider": dataset.provider_id,
                    "fields": dict.fromkeys(names, category),
                },
                "consent": {
                    "status": "active",
                    "categories": [category],
                    "expires_at": None,
                    "sensitive": True,
                    "cross_border": True,
                },
                "subject": {"jurisdiction": recipient.jurisdiction},
                "now": _rfc3339(proposal.valid_from),
            }
        )
        found = set(decision.reasons) & PROPOSAL_REASONS
        reasons |= found
        field_level = sorted(found - _REQUEST_LEVEL)
        dropped = [n for n in names if decision.obligations.get(n, "drop") == "drop"]
        if field_level:
            for name in dropped:
                index = proposal.fields.index(name)
                errors.append(FieldError(f"fields[{index}]", f"{name}: {', '.join(field_level)}"))
        elif dropped and not found:
            # Denied for a reason the rulebook has and this check does not know: refuse rather
            # than agree to something no pull could ever release.
            reasons |= set(decision.reasons) - {"release.nothing_released"}
    if reasons:
        raise PolicyRefusedError(sorted(reasons), errors)


# --------------------------------------------------------------------------------------------
# Reading


def _visible(session: Session, actor: Actor, agreement_id: str, *, lock: bool) -> Agreement:
    query = select(Agreement).where(Agreement.id == agreement_id)
    if lock:
        query = query.with_for_update()
    agreement = session.scalars(query).one_or_none()
    if agreement is None or not actor.sees(agreement):
        raise AgreementNotFoundError()
    return agreement


def get_agreement(session: Session, *, actor: Actor, agreement_id: str) -> Agreement:
    """The agreement if the actor is a party, the operator or a regulator; otherwise exactly as
    if it did not exist."""
    return _visible(session, actor, agreement_id, lock=False)


def list_agreements(
    session: Session, *, actor: Actor, status: str | None = None
) -> Sequence[Agreement]:
    """A party's agreements (as provider or recipient); every agreement for the operator and
    regulators."""
    query = select(Agreement)
    if not (actor.operator or actor.regulator):
        query = query.where(
            or_(
                Agreement.recipient_id == actor.partner_id,
                Agreement.provider_id == actor.partner_id,
            )
        )
    if status:
        query = query.where(Agreement.status == status)
    return session.scalars(query.order_by(Agreement.created_at, Agreement.id)).all()


def agreement_history(
    session: Session, *, actor: Actor, agreement_id: str
) -> Sequence[AgreementEvent]:
    get_agreement(session, actor=actor, agreement_id=agreement_id)
    return session.scalars(
        select(AgreementEvent)
        .where(AgreementEvent.agreement_id == agreement_id)
        .order_by(AgreementEvent.seq)
    ).all()


def agreements_of_partner(session: Session, *, partner_id: str) -> Sequence[Agreement]:
    """Agreements in which the partner is provider or recipient."""
    return list_agreements(session, actor=Actor(partner_id=partner_id))


def agreement_for_recipient(session: Session, *, agreement_id: str, partner_id: str) -> Agreement:
    """The agreement if the partner is its recipient; otherwise exactly as if it did not exist.

    An accepted agreement whose start date has come is activated here (in the caller's
    transaction, under a row lock) if the sweep has not done it yet, so that the policies see
    it active from its start date.
    """
    agreement = session.get(Agreement, agreement_id)
    if agreement is None or agreement.recipient_id != partner_id:
        raise AgreementNotFoundError()
    now = utcnow()
    if agreement.status == AgreementStatus.ACCEPTED and agreement.valid_from <= now:
        agreement = session.scalars(
            select(Agreement)
            .where(Agreement.id == agreement_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        if agreement.status == AgreementStatus.ACCEPTED and now < agreement.valid_until:
            _append(
                session, agreement, event="activated", to_status=AgreementStatus.ACTIVE,
                actor=Actor.system(), party=SYSTEM, reason="start date reached", now=now,
            )  # fmt: skip
    return agreement


@dataclass(frozen=True, slots=True)
class AgreementTerms:
    """What the release pipeline reads of an agreement, as plain values."""

    id: str
    provider_id: str
    recipient_id: str
    dataset_id: str
    purpose: str
    fields: list[str]
    valid_from: datetime
    valid_until: datetime
    cross_border: bool
    status: str

    @classmethod
    def of(cls, agreement: Agreement) -> AgreementTerms:
        return cls(
            id=agreement.id,
            provider_id=agreement.provider_id,
            recipient_id=agreement.recipient_id,
            dataset_id=agreement.dataset_id,
            purpose=agreement.purpose,
            fields=list(agreement.fields),
            valid_from=agreement.valid_from,
            valid_until=agreement.valid_until,
            cross_border=agreement.cross_border,
            status=agreement.status,
        )


@dataclass(frozen=True, slots=True)
class DatasetTerms:
    """What the release pipeline reads of a dataset: its provider and its current schema."""

    id: str
    provider_id: str
    schema: dict[str, Any]

    @classmethod
    def of(cls, dataset: Dataset) -> DatasetTerms:
        return cls(id=dataset.id, provider_id=dataset.provider_id, schema=dataset.schema)

    @property
    def field_categories(self) -> dict[str, str]:
        """As :attr:`Dataset.field_categories`: a new dict on each call."""
        fields: dict[str, dict[str, Any]] = self.schema["fields"]
        return {name: spec["category"] for name, spec in fields.items()}


@dataclass(frozen=True, slots=True)
class ReleaseTerms:
    """An agreement, its dataset and its recipient's registered keys, for one pull."""

    agreement: AgreementTerms
    dataset: DatasetTerms
    #: The recipient's registered JWKS (``Partner.jwks``), for ``encrypt_for_recipient``.
    recipient_jwks: dict[str, Any] | None


_AGREEMENTS = cast(Table, Agreement.__table__)
_DATASETS = cast(Table, Dataset.__table__)
_PARTNERS = cast(Table, Partner.__table__)
# One statement, built once and run on the driver's cursor (it runs on every pull): the
# agreement, its dataset and its recipient (foreign keys make both joins exact). Positions are
# read by ``release_terms``.
_RELEASE_TERMS = PrebuiltSelect(
    select(
        _AGREEMENTS.c.id,
        _AGREEMENTS.c.provider_id,
        _AGREEMENTS.c.recipient_id,
        _AGREEMENTS.c.dataset_id,
        _AGREEMENTS.c.purpose,
        _AGREEMENTS.c.fields,
        _AGREEMENTS.c.valid_from,
        _AGREEMENTS.c.valid_until,
        _AGREEMENTS.c.cross_border,
        _AGREEMENTS.c.status,
        _DATASETS.c.provider_id,
        _DATASETS.c.schema,
        _PARTNERS.c.jwks,
    )
    .join_from(_AGREEMENTS, _DATASETS, _DATASETS.c.id == _AGREEMENTS.c.dataset_id)
    .join(_PARTNERS, _PARTNERS.c.id == _AGREEMENTS.c.recipient_id)
    .where(_AGREEMENTS.c.id == bindparam("agreement_id"))
)


def release_terms(session: Session, *, agreement_id: str, partner_id: str) -> ReleaseTerms:
    """:func:`agreement_for_recipient` for the release path, in one statement and without ORM
    objects: the agreement if the partner is its recipient (otherwise exactly as if it did not
    exist), with its dataset and the recipient's keys.

    Read in the caller's transaction after flushing the session, so what this session changed
    is seen too, and so is whatever was committed before (a suspension, a termination). An
    accepted agreement whose start date has come is activated by :func:`agreement_for_recipient`
    (under its row lock), then read again.
    """
    session.flush()
    row = _RELEASE_TERMS.first(session, {"agreement_id": agreement_id})
    if row is None or row[2] != partner_id:
        raise AgreementNotFoundError()
    if row[9] == AgreementStatus.ACCEPTED and row[6] <= utcnow():
        agreement_for_recipient(session, agreement_id=agreement_id, partner_id=partner_id)
        session.flush()
        row = _RELEASE_TERMS.one(session, {"agreement_id": agreement_id})
    (
        id_, provider_id, recipient_id, dataset_id, purpose, fields, valid_from, valid_until,
        cross_border, status, dataset_provider_id, schema, jwks,
    ) = row  # fmt: skip
    return ReleaseTerms(
        agreement=AgreementTerms(
            id=id_,
            provider_id=provider_id,
            recipient_id=recipient_id,
            dataset_id=dataset_id,
            purpose=purpose,
            fields=fields,
            valid_from=valid_from,
            valid_until=valid_until,
            cross_border=cross_border,
            status=status,
        ),
        dataset=DatasetTerms(id=dataset_id, provider_id=dataset_provider_id, schema=schema),
        recipient_jwks=jwks,
    )


def ensure_in_force(agreement: Agreement | AgreementTerms, now: datetime) -> None:
    """Raise :class:`AgreementInactiveError` unless records may be pulled under it now. An
    accepted agreement is in force from its start date even before the sweep marks it active;
    one past its end date is expired even before the sweep marks it so."""
    status = agreement.status
    if status == AgreementStatus.ACCEPTED and now >= agreement.valid_from:
        status = AgreementStatus.ACTIVE
    if status == AgreementStatus.ACCEPTED:
        raise AgreementInactiveError("agreement.not_yet_valid")
    if status != AgreementStatus.ACTIVE:
        raise AgreementInactiveError(f"agreement.{status}")
    if now < agreement.valid_from:
        raise AgreementInactiveError("agreement.not_yet_valid")
    if now >= agreement.valid_until:
        raise AgreementInactiveError("agreement.expired")


# --------------------------------------------------------------------------------------------
# Transitions


def _append(
    session: Session,
    agreement: Agreement,
    *,
    event: str,
    to_status: AgreementStatus,
    actor: Actor,
    party: str,
    reason: str,
    now: datetime,
) -> None:
    seq = session.scalar(
        select(func.coalesce(func.max(AgreementEvent.seq), 0)).where(
            AgreementEvent.agreement_id == agreement.id
        )
    )
    session.add(
        AgreementEvent(
            agreement_id=agreement.id,
            seq=int(seq or 0) + 1,
            event=event,
            from_status=None if event == "proposed" else agreement.status,
            to_status=to_status,
            actor=actor.label,
            actor_party=party,
            reason=reason,
            at=now,
        )
    )
    agreement.status = to_status
    agreement.updated_at = now
    session.flush()


def _validate(session: Session, proposal: Proposal, dataset: Dataset, now: datetime) -> None:
    errors: list[FieldError] = []
    if not proposal.fields:
        errors.append(FieldError("fields", "name at least one field"))
    if len(proposal.fields) > MAX_FIELDS:
        errors.append(FieldError("fields", f"at most {MAX_FIELDS} fields"))
    if len(set(proposal.fields)) != len(proposal.fields):
        errors.append(FieldError("fields", "fields are listed once each"))
    for i, name in enumerate(proposal.fields):
        if name not in dataset.field_specs:
            errors.append(FieldError(f"fields[{i}]", f"{name!r} is not a field of the dataset"))
    if not 1 <= proposal.retention_days <= MAX_RETENTION_DAYS:
        errors.append(FieldError("retention_days", f"between 1 and {MAX_RETENTION_DAYS}"))
    for name in ("valid_from", "valid_until"):
        if getattr(proposal, name).tzinfo is None:
            errors.append(FieldError(name, "must carry a timezone"))
    if errors:
        raise RegistryValidationError("The proposal is invalid.", errors)
    if proposal.valid_until <= proposal.valid_from:
        errors.append(FieldError("valid_until", "must be after valid_from"))
    if proposal.valid_until <= now:
        errors.append(FieldError("valid_until", "must be in the future"))
    if proposal.valid_until > now + timedelta(days=MAX_SPAN_DAYS):
        errors.append(FieldError("valid_until", f"at most {MAX_SPAN_DAYS} days ahead"))
    if proposal.valid_from < now - timedelta(days=MAX_SPAN_DAYS):
        errors.append(FieldError("valid_from", f"at most {MAX_SPAN_DAYS} days back"))
    if proposal.legal_basis not in LEGAL_BASES:
        errors.append(FieldError("legal_basis", f"one of {', '.join(LEGAL_BASES)}"))
    if errors:
        raise RegistryValidationError("The proposal is invalid.", errors)


def propose_agreement(
    session: Session,
    *,
    actor: Actor,
    proposal: Proposal,
    policy: PolicyEngine,
    reason: str = "",
    now: datetime | None = None,
) -> Agreement:
    """An offer (the actor provides the dataset and names the recipient) or a request (the actor
    is the recipient). Refused with the policies' reasons when it asks for more than the
    purpose allows."""
    now = now or utcnow()
    dataset = session.get(Dataset, proposal.dataset_id)
    if dataset is None:
        raise DatasetNotFoundError()
    if actor.partner_id == dataset.provider_id:
        initiator = PROVIDER
        if not proposal.recipient_id or proposal.recipient_id == dataset.provider_id:
            raise RegistryValidationError(
                "An offer names its recipient.",
                [FieldError("recipient_id", "the partner the offer is made to")],
            )
        recipient_id = proposal.recipient_id
    else:
        initiator = RECIPIENT
        if proposal.recipient_id not in (None, actor.partner_id):
            raise NotAPartyError("A request is made by its recipient; offers by the provider.")
        recipient_id = actor.partner_id
    recipient = session.get(Partner, recipient_id)
    if recipient is None or recipient.status != PartnerStatus.ACTIVE:
        raise RegistryValidationError(
            "Unknown recipient.", [FieldError("recipient_id", "no active partner with this id")]
        )
    if recipient.role == Role.OPERATOR:
        raise RegistryValidationError(
            "The operator receives no data.", [FieldError("recipient_id", "not a data recipient")]
        )
    _validate(session, proposal, dataset, now)
    check_proposal(policy, recipient=recipient, dataset=dataset, proposal=proposal)
    agreement = Agreement(
        provider_id=dataset.provider_id,
        recipient_id=recipient_id,
        dataset_id=dataset.id,
        purpose=proposal.purpose,
        fields=list(proposal.fields),
        retention_days=proposal.retention_days,
        valid_from=proposal.valid_from,
        valid_until=proposal.valid_until,
        cross_border=proposal.cross_border,
        legal_basis=proposal.legal_basis,
        initiator=initiator,
        status=AgreementStatus.PROPOSED,
        created_at=now,
        updated_at=now,
    )
    session.add(agreement)
    session.flush()
    _append(session, agreement, event="proposed", to_status=AgreementStatus.PROPOSED,
            actor=actor, party=initiator, reason=reason, now=now)  # fmt: skip
    return agreement


def _counterparty(actor: Actor, agreement: Agreement, verb: str) -> str:
    party = actor.party(agreement)
    if party not in (PROVIDER, RECIPIENT):
        raise NotAPartyError(f"Only the counterparty of the proposal can {verb} it.")
    if party == agreement.initiator:
        raise NotAPartyError(f"The {party} proposed this agreement; the other party {verb}s it.")
    return party


def _require(agreement: Agreement, allowed: Sequence[AgreementStatus], requested: str) -> None:
    if agreement.status not in allowed:
        raise InvalidTransitionError(agreement.status, requested)


def _start_or_expire(
    session: Session, agreement: Agreement, *, actor: Actor, party: str, now: datetime
) -> None:
    """After acceptance or resumption: active from the start date, expired after the end."""
    if now >= agreement.valid_until:
        _expire(session, agreement, now=now)
    elif now >= agreement.valid_from and agreement.status == AgreementStatus.ACCEPTED:
        _append(session, agreement, event="activated", to_status=AgreementStatus.ACTIVE,
                actor=actor, party=party, reason="start date reached", now=now)  # fmt: skip


def accept_agreement(
    session: Session,
    *,
    actor: Actor,
    agreement_id: str,
    policy: PolicyEngine,
    reason: str = "",
    now: datetime | None = None,
) -> Agreement:
    """The counterparty accepts; the policies check the terms again (they may have changed
    since the proposal). Active at once if its start date has come."""
    now = now or utcnow()
    agreement = _visible(session, actor, agreement_id, lock=True)
    party = _counterparty(actor, agreement, "accept")
    _require(agreement, (AgreementStatus.PROPOSED,), "accepted")
    recipient = session.get(Partner, agreement.recipient_id)
    dataset = session.get(Dataset, agreement.dataset_id)
    if recipient is None or dataset is None:  # guarded by foreign keys
        raise AgreementNotFoundError()
    check_proposal(policy, recipient=recipient, dataset=dataset, proposal=_terms(agreement))
    _append(session, agreement, event="accepted", to_status=AgreementStatus.ACCEPTED,
            actor=actor, party=party, reason=reason, now=now)  # fmt: skip
    _start_or_expire(session, agreement, actor=actor, party=party, now=now)
    return agreement


def reject_agreement(
    session: Session, *, actor: Actor, agreement_id: str, reason: str, now: datetime | None = None
) -> Agreement:
    now = now or utcnow()
    agreement = _visible(session, actor, agreement_id, lock=True)
    party = _counterparty(actor, agreement, "reject")
    _require(agreement, (AgreementStatus.PROPOSED,), "rejected")
    _append(session, agreement, event="rejected", to_status=AgreementStatus.REJECTED,
            actor=actor, party=party, reason=reason, now=now)  # fmt: skip
    agreement.ended_at = now
    return agreement


def _acting_party(actor: Actor, agreement: Agreement, verb: str) -> str:
    party = actor.party(agreement)
    if party not in (PROVIDER, RECIPIENT, OPERATOR):
        raise NotAPartyError(f"Only a party or the operator can {verb} an agreement.")
    return party


def suspend_agreement(
    session: Session, *, actor: Actor, agreement_id: str, reason: str, now: datetime | None = None
) -> Agreement:
    """Either party or the operator; the next page pulled under it is refused."""
    now = now or utcnow()
    agreement = _visible(session, actor, agreement_id, lock=True)
    party = _acting_party(actor, agreement, "suspend")
    _require(agreement, (AgreementStatus.ACCEPTED, AgreementStatus.ACTIVE), "suspended")
    _append(session, agreement, event="suspended", to_status=AgreementStatus.SUSPENDED,
            actor=actor, party=party, reason=reason, now=now)  # fmt: skip
    return agreement


def resume_agreement(
    session: Session, *, actor: Actor, agreement_id: str, reason: str, now: datetime | None = None
) -> Agreement:
    """Lift a suspension: the side that suspended it, or the operator."""
    now = now or utcnow()
    agreement = _visible(session, actor, agreement_id, lock=True)
    party = _acting_party(actor, agreement, "resume")
    _require(agreement, (AgreementStatus.SUSPENDED,), "resumed")
    suspended_by = session.scalar(
        select(AgreementEvent.actor_party)
        .where(AgreementEvent.agreement_id == agreement.id, AgreementEvent.event == "suspended")
        .order_by(AgreementEvent.seq.desc())
        .limit(1)
    )
    if party != OPERATOR and party != suspended_by:
        raise NotAPartyError(f"The {suspended_by} suspended this agreement; only it can resume it.")
    was_active = session.scalar(
        select(func.count()).where(
            AgreementEvent.agreement_id == agreement.id, AgreementEvent.event == "activated"
        )
    )
    target = AgreementStatus.ACTIVE if was_active else AgreementStatus.ACCEPTED
    _append(session, agreement, event="resumed", to_status=target, actor=actor, party=party,
            reason=reason, now=now)  # fmt: skip
    _start_or_expire(session, agreement, actor=actor, party=party, now=now)
    return agreement


def _notice(
    session: Session, agreement: Agreement, *, event_type: str, reason: str, now: datetime
) -> AgreementNotice:
    notice = AgreementNotice(
        agreement_id=agreement.id,
        partner_id=agreement.recipient_id,
        event_type=event_type,
        payload={},
        created_at=now,
    )
    session.add(notice)
    session.flush()
    notice.payload = {
        "id": notice.id,
        "type": event_type,
        "created_at": now.isoformat(),
        "data": {
            "agreement_id": agreement.id,
            "dataset_id": agreement.dataset_id,
            "purpose": agreement.purpose,
            "status": agreement.status,
            "reason": reason,
            "retention_days": agreement.retention_days,
            "deletion_attestation_due_at": (
                agreement.deletion_due_at.isoformat() if agreement.deletion_due_at else None
            ),
        },
    }
    enqueue_agreement_notice(
        session,
        partner_id=notice.partner_id,
        agreement_id=agreement.id,
        event_type=event_type,
        data={**notice.payload["data"], "notice_id": notice.id},
        now=now,
    )
    return notice


def _was_active(session: Session, agreement: Agreement) -> bool:
    return bool(
        session.scalar(
            select(func.count()).where(
                AgreementEvent.agreement_id == agreement.id, AgreementEvent.event == "activated"
            )
        )
    )


def terminate_agreement(
    session: Session, *, actor: Actor, agreement_id: str, reason: str, now: datetime | None = None
) -> Agreement:
    """Either party or the operator, effective at once. The recipient is notified and must
    attest deletion of what it pulled once the retention period has run out.

    The notice is written in this transaction (:class:`AgreementNotice`) and pushed to the
    recipient's webhooks through the same transactional outbox as consent events.
    """
    now = now or utcnow()
    agreement = _visible(session, actor, agreement_id, lock=True)
    party = _acting_party(actor, agreement, "terminate")
    _require(
        agreement,
        (AgreementStatus.PROPOSED, AgreementStatus.ACCEPTED, AgreementStatus.ACTIVE,
         AgreementStatus.SUSPENDED),
        "terminated",
    )  # fmt: skip
    was_active = _was_active(session, agreement)
    _append(session, agreement, event="terminated", to_status=AgreementStatus.TERMINATED,
            actor=actor, party=party, reason=reason, now=now)  # fmt: skip
    agreement.ended_at = now
    if was_active:
        agreement.deletion_due_at = now + timedelta(days=agreement.retention_days)
        _notice(session, agreement, event_type="agreement.terminated", reason=reason, now=now)
    return agreement


def _expire(session: Session, agreement: Agreement, *, now: datetime) -> None:
    was_active = _was_active(session, agreement) or now >= agreement.valid_from
    _append(session, agreement, event="expired", to_status=AgreementStatus.EXPIRED,
            actor=Actor.system(), party=SYSTEM, reason="end date reached", now=now)  # fmt: skip
    agreement.ended_at = now
    if was_active:
        agreement.deletion_due_at = agreement.valid_until + timedelta(days=agreement.retention_days)
        _notice(session, agreement, event_type="agreement.expired", reason="end date reached",
                now=now)  # fmt: skip


@dataclass(frozen=True)
class SweepReport:
    activated: int
    expired: int


def advance_agreements(session: Session, *, now: datetime | None = None) -> SweepReport:
    """Record what the calendar did: accepted agreements whose start date came are active,
    agreements whose end date passed are expired (``tollhouse partners agreements sweep``)."""
    now = now or utcnow()
    activated = expired = 0
    due = session.scalars(
        select(Agreement)
        .where(
            Agreement.status.in_(
                [AgreementStatus.ACCEPTED, AgreementStatus.ACTIVE, AgreementStatus.SUSPENDED]
            ),
            or_(
                Agreement.valid_until <= now,
                (Agreement.status == AgreementStatus.ACCEPTED) & (Agreement.valid_from <= now),
            ),
        )
        .order_by(Agreement.id)
        .with_for_update()
    ).all()
    for agreement in due:
        if now >= agreement.valid_until:
            _expire(session, agreement, now=now)
            expired += 1
        else:
            _append(
                session, agreement, event="activated", to_status=AgreementStatus.ACTIVE,
                actor=Actor.system(), party=SYSTEM, reason="start date reached", now=now,
            )  # fmt: skip
            activated += 1
    return SweepReport(activated=activated, expired=expired)


def attest_deletion(
    session: Session,
    *,
    actor: Actor,
    agreement_id: str,
    statement: str,
    now: datetime | None = None,
) -> Agreement:
    """The recipient attests it deleted what it pulled under an ended agreement."""
    now = now or utcnow()
    agreement = _visible(session, actor, agreement_id, lock=True)
    if actor.party(agreement) != RECIPIENT:
        raise NotAPartyError("Only the recipient attests deletion.")
    if agreement.status not in _ENDED or agreement.deletion_due_at is None:
        raise InvalidTransitionError(agreement.status, "attested as deleted")
    if agreement.deletion_attested_at is not None:
        raise InvalidTransitionError("attested already", "attested again")
    if not statement.strip():
        raise RegistryValidationError(
            "Say what was deleted.", [FieldError("statement", "must not be empty")]
        )
    seq = session.scalar(
        select(func.max(AgreementEvent.seq)).where(AgreementEvent.agreement_id == agreement.id)
    )
    session.add(
        AgreementEvent(
            agreement_id=agreement.id, seq=int(seq or 0) + 1, event="deletion_attested",
            from_status=agreement.status, to_status=agreement.status, actor=actor.label,
            actor_party=RECIPIENT, reason=statement.strip(), at=now,
        )
    )  # fmt: skip
    agreement.deletion_attested_at = now
    agreement.updated_at = now
    session.flush()
    return agreement


def deletion_attestations_due(
    session: Session, *, now: datetime | None = None
) -> Sequence[Agreement]:
    """Ended agreements whose retention has run out and whose recipient has not attested."""
    now = now or utcnow()
    return session.scalars(
        select(Agreement)
        .where(
            Agreement.deletion_due_at.is_not(None),
            Agreement.deletion_due_at <= now,
            Agreement.deletion_attested_at.is_(None),
        )
        .order_by(Agreement.deletion_due_at, Agreement.id)
    ).all()


def notices_of_partner(
    session: Session, *, partner_id: str, limit: int = 100
) -> Sequence[AgreementNotice]:
    return session.scalars(
        select(AgreementNotice)
        .where(AgreementNotice.partner_id == partner_id)
        .order_by(AgreementNotice.created_at, AgreementNotice.id)
        .limit(limit)
    ).all()


def _terms(agreement: Agreement) -> Proposal:
    return Proposal(
        dataset_id=agreement.dataset_id,
        purpose=agreement.purpose,
        fields=tuple(agreement.fields),
        retention_days=agreement.retention_days,
        valid_from=agreement.valid_from,
        valid_until=agreement.valid_until,
        recipient_id=agreement.recipient_id,
        cross_border=agreement.cross_border,
        legal_basis=agreement.legal_basis,
    )
