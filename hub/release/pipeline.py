"""The release pipeline, one straight line per page:

    agreement -> page of records -> consent state per subject -> policy decision per distinct
    state -> obligations (decrypt, keep/drop/mask/generalize/pseudonymize/encrypt) -> audit event
    -> response page

Decisions depend on a record only through its subject's consent state and jurisdiction, so a page
is decided once per distinct state, never per record. Nothing flows backwards: each gate gets
what the previous one produced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.service import ConsentState, consent_states
from hub.audit import append_event, append_events
from hub.auth.tokens import AuthenticatedPartner
from hub.crypto import FieldProtector, SubjectShreddedError
from hub.deid.guard import EgressGuard, entities_for_categories
from hub.errors import NotFoundError
from hub.policy import Decision, PolicyEngine, canonical_digest
from hub.records.models import DataSubject, Record
from hub.registry import service as registry
from hub.registry.errors import AgreementInactiveError, AgreementNotFoundError
from hub.registry.models import Agreement, Dataset, Partner
from hub.release.cursor import CursorCodec
from hub.release.obligations import ObligationApplier
from hub.release.schemas import ReleasedRecord, ReleasePage


@dataclass(frozen=True)
class ReleaseGates:
    """The collaborators of the pipeline, built once per process."""

    policy: PolicyEngine
    protector: FieldProtector
    cursors: CursorCodec
    obligations: ObligationApplier
    guard: EgressGuard


@dataclass
class _DecisionGroup:
    decision: Decision
    released_keys: list[str] = field(default_factory=list)
    withheld_keys: list[str] = field(default_factory=list)
    subjects: set[str] = field(default_factory=set)
    free_text: list[tuple[ReleasedRecord, str]] = field(default_factory=list)
    erased_keys: list[str] = field(default_factory=list)
    #: Per subject (audit pseudonym): the consent and receipt the decision relied on.
    consents: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    #: Fields the decision released that could not leave (no recipient encryption key).
    undelivered: set[str] = field(default_factory=set)
    input_digest: str = ""
    guard_findings: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PullRequest:
    caller: AuthenticatedPartner
    agreement_id: str
    request_id: str
    now: datetime
    cursor: str | None = None
    limit: int = 100
    record_key: str | None = None


FREE_TEXT = "free_text"


def _decision_key(state: ConsentState, jurisdiction: str, now: datetime) -> tuple[object, ...]:
    """What a decision depends on for one record: everything in the policy input that varies
    between records of a page. Times matter only as "expired yet?" and the consent's length,
    so consents that differ only in their dates share one decision."""
    expired = state.expires_at is not None and now >= state.expires_at
    length = (
        state.expires_at - state.starts_at
        if state.expires_at is not None and state.starts_at is not None
        else None
    )
    return (
        state.status,
        state.categories,
        state.sensitive,
        state.cross_border,
        expired,
        length,
        jurisdiction,
    )


def _guard_free_text(
    guard: EgressGuard, group: _DecisionGroup, categories: Mapping[str, str]
) -> None:
    """The egress guard: scan every released free-text value of one decision for identifiers
    that the decision did not release in clear, and redact them in place.

    Categories released as-is (``keep``) allow their identifiers in the text too; anything
    masked, pseudonymised, generalised, encrypted or dropped must not leak through prose.
    """
    if not group.free_text:
        return
    kept = {
        categories[name]
        for name, action in group.decision.obligations.items()
        if action == "keep" and categories.get(name) != FREE_TEXT
    }
    allowed = entities_for_categories(kept)
    texts = [item.fields[name] for item, name in group.free_text]
    for (item, name), result in zip(
        group.free_text, guard.scan_and_redact(texts, allowed), strict=True
    ):
        item.fields[name] = result.text
        for entity, count in result.findings.items():
            group.guard_findings[entity] = group.guard_findings.get(entity, 0) + count


def _rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def policy_input(
    *,
    caller: AuthenticatedPartner,
    agreement: Agreement,
    dataset: Dataset,
    consent: ConsentState,
    subject_jurisdiction: str,
    now: datetime,
) -> dict[str, Any]:
    """The policy input contract documented in ``policies/README.md``."""
    consent_view = consent.policy_view()
    if consent.expires_at is not None:
        consent_view["expires_at"] = _rfc3339(consent.expires_at)
    if consent.starts_at is not None:
        consent_view["starts_at"] = _rfc3339(consent.starts_at)
    return {
        "partner": {
            "id": caller.partner_id,
            "role": caller.role,
            "jurisdiction": caller.jurisdiction,
        },
        "purpose": agreement.purpose,
        "agreement": {
            "id": agreement.id,
            "provider": agreement.provider_id,
            "recipient": agreement.recipient_id,
            "purpose": agreement.purpose,
            "status": agreement.status,
            "valid_from": _rfc3339(agreement.valid_from),
            "valid_until": _rfc3339(agreement.valid_until),
            "fields": list(agreement.fields),
            "cross_border": agreement.cross_border,
        },
        "dataset": {
            "id": dataset.id,
            "provider": dataset.provider_id,
            "fields": dataset.field_categories,
        },
        "consent": consent_view,
        "subject": {"jurisdiction": subject_jurisdiction},
        "now": _rfc3339(now),
    }


def _deny_and_log(
    session: Session, request: PullRequest, *, reason: str, agreement: Agreement | None
) -> None:
    """Record a refused request durably before the error reaches the caller."""
    append_event(
        session,
        {
            "kind": "release.denied",
            "partner_id": request.caller.partner_id,
            "agreement_id": request.agreement_id,
            "dataset_id": agreement.dataset_id if agreement else None,
            "purpose": agreement.purpose if agreement else None,
            "request_id": request.request_id,
            "outcome": "denied",
            "reasons": [reason],
        },
    )
    session.commit()


def _resolve_agreement(session: Session, request: PullRequest) -> tuple[Agreement, Dataset]:
    try:
        agreement = registry.agreement_for_recipient(
            session, agreement_id=request.agreement_id, partner_id=request.caller.partner_id
        )
    except AgreementNotFoundError:
        _deny_and_log(session, request, reason="agreement.not_recipient", agreement=None)
        raise
    try:
        registry.ensure_in_force(agreement, request.now)
    except AgreementInactiveError as exc:
        _deny_and_log(session, request, reason=exc.reason, agreement=agreement)
        raise
    dataset = session.get(Dataset, agreement.dataset_id)
    if dataset is None:  # guarded by a foreign key; kept for the type checker
        raise AgreementNotFoundError()
    return agreement, dataset


def pull_page(session: Session, gates: ReleaseGates, request: PullRequest) -> ReleasePage:
    agreement, dataset = _resolve_agreement(session, request)
    caller = request.caller

    after_id = 0
    if request.cursor:
        after_id = gates.cursors.decode(
            request.cursor, agreement_id=agreement.id, partner_id=caller.partner_id
        )
    query = (
        select(
            Record.id,
            Record.record_key,
            Record.version,
            Record.subject_id,
            Record.sealed,
            DataSubject.jurisdiction,
        )
        .join(DataSubject, DataSubject.id == Record.subject_id)
        .where(Record.dataset_id == dataset.id)
    )
    if request.record_key is not None:
        query = query.where(Record.record_key == request.record_key)
    else:
        query = query.where(Record.id > after_id).order_by(Record.id).limit(request.limit + 1)
    rows = session.execute(query).all()
    has_more = request.record_key is None and len(rows) > request.limit
    rows = rows[: request.limit]

    subject_ids = {row.subject_id for row in rows}
    states = consent_states(
        session,
        subject_ids=subject_ids,
        recipient_id=caller.partner_id,
        purpose=agreement.purpose,
        now=request.now,
        recipient_role=caller.role,
    )

    groups: dict[str, _DecisionGroup] = {}
    decided: dict[tuple[object, ...], _DecisionGroup] = {}
    categories = dataset.field_categories  # a property that builds a dict: once per page
    free_text_fields = [n for n, c in categories.items() if c == FREE_TEXT]
    gates.protector.forget_shredded(session, subject_ids)
    gates.protector.preload(session, subject_ids)
    # (recipient's, audit's) pseudonym per subject: two HMACs per subject, not per record
    pseudonyms: dict[str, tuple[str, str]] = {}
    recipient: Partner | None = None
    items: list[ReleasedRecord] = []
    encrypted: dict[str, list[str]] = {}

    for row in rows:
        state = states[row.subject_id]
        group_key = _decision_key(state, row.jurisdiction, request.now)
        group = decided.get(group_key)
        if group is None:
            policy_doc = policy_input(
                caller=caller,
                agreement=agreement,
                dataset=dataset,
                consent=state,
                subject_jurisdiction=row.jurisdiction,
                now=request.now,
            )
            decision = gates.policy.decide(policy_doc)
            group = groups.setdefault(
                decision.decision_id,
                _DecisionGroup(
                    decision=decision,
                    input_digest=canonical_digest(policy_doc),
                ),
            )
            decided[group_key] = group
        decision = group.decision
        names = pseudonyms.get(row.subject_id)
        if names is None:
            names = pseudonyms[row.subject_id] = (
                gates.protector.pseudonym(caller.partner_id, row.subject_id),
                gates.protector.pseudonym("audit", row.subject_id),
            )
        subject_pseudonym = names[0]
        group.subjects.add(names[1])
        if state.consent_id is not None:
            group.consents[names[1]] = (state.consent_id, state.receipt_id)
        if not decision.allow:
            group.withheld_keys.append(row.record_key)
            continue
        wanted = [name for name, action in decision.obligations.items() if action != "drop"]
        try:
            opened = gates.protector.open_fields(
                session,
                subject_id=row.subject_id,
                dataset_id=dataset.id,
                record_key=row.record_key,
                sealed=row.sealed,
                only=wanted,
            )
        except SubjectShreddedError:
            # The subject was erased: their data key is gone, so nothing of theirs can leave.
            group.withheld_keys.append(row.record_key)
            group.erased_keys.append(row.record_key)
            continue
        if recipient is None and any(
            a == "encrypt_for_recipient" for a in decision.obligations.values()
        ):
            recipient = session.get(Partner, caller.partner_id)
        released, sealed_names = gates.obligations.apply(
            opened,
            obligations=decision.obligations,
            categories=categories,
            recipient_id=caller.partner_id,
            recipient_jwks=recipient.jwks if recipient else None,
        )
        if sealed_names:
            encrypted[row.record_key] = sealed_names
        group.undelivered.update(n for n in wanted if n in opened and n not in released)
        group.released_keys.append(row.record_key)
        item = ReleasedRecord(
            record_key=row.record_key,
            version=row.version,
            subject=subject_pseudonym,
            fields=released,
            encrypted_fields=sealed_names,
        )
        items.append(item)
        for name in free_text_fields:
            if isinstance(released.get(name), str) and name not in sealed_names:
                group.free_text.append((item, name))

    for group in groups.values():
        _guard_free_text(gates.guard, group, categories)

    if request.record_key is not None and not items:
        _audit_page(session, gates, request, agreement, groups)
        session.commit()
        raise NotFoundError("No releasable record with this key.")

    next_cursor = None
    if has_more and rows:
        next_cursor = gates.cursors.encode(
            agreement_id=agreement.id, partner_id=caller.partner_id, after_id=rows[-1].id
        )
    _audit_page(session, gates, request, agreement, groups)
    withheld = sum(len(g.withheld_keys) for g in groups.values())
    return ReleasePage(
        items=items,
        released=len(items),
        withheld=withheld,
        next_cursor=next_cursor,
        decision_revision=gates.policy.revision,
        encrypted_fields=encrypted,
    )


def _decision_record(group: _DecisionGroup) -> dict[str, Any]:
    obligations = group.decision.obligations
    return {
        "decision_id": group.decision.decision_id,
        "allow": group.decision.allow,
        "reasons": list(group.decision.reasons),
        "consents": {
            subject: {"consent_id": consent_id, "receipt_id": receipt_id}
            for subject, (consent_id, receipt_id) in sorted(group.consents.items())
        },
        "input_digest": group.input_digest,
        "fields_released": sorted(
            n for n, a in obligations.items() if a != "drop" and n not in group.undelivered
        ),
        "fields_withheld": sorted(
            n for n, a in obligations.items() if a == "drop" or n in group.undelivered
        ),
        "transforms": {n: a for n, a in sorted(obligations.items()) if a not in ("keep", "drop")},
        "guard_findings": dict(sorted(group.guard_findings.items())),
        "subjects": sorted(group.subjects),
        "released_keys": group.released_keys,
        "withheld_keys": group.withheld_keys,
        "erased_keys": group.erased_keys,
    }


def _audit_page(
    session: Session,
    gates: ReleaseGates,
    request: PullRequest,
    agreement: Agreement,
    groups: Mapping[str, _DecisionGroup],
) -> None:
    """One audit event per decision (a page with no records still leaves one event), appended
    together under one lock. Each names its request, so a page's events can be read as one."""
    common = {
        "kind": "release",
        "partner_id": request.caller.partner_id,
        "agreement_id": agreement.id,
        "dataset_id": agreement.dataset_id,
        "purpose": agreement.purpose,
        "request_id": request.request_id,
        "record_key": request.record_key,
        "policy_revision": gates.policy.revision,
        "page_decisions": len(groups),
    }
    if not groups:
        append_events(
            session,
            [{**common, "outcome": "empty", "released": 0, "withheld": 0, "decisions": []}],
        )
        return
    append_events(
        session,
        [
            {
                **common,
                "outcome": "released" if group.released_keys else "withheld",
                "released": len(group.released_keys),
                "withheld": len(group.withheld_keys),
                "decisions": [_decision_record(group)],
            }
            for group in groups.values()
        ],
    )
