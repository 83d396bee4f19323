"""The release pipeline, one straight line per page:

    agreement -> page of records -> consent state per subject -> policy decision per distinct
    state -> consent's fetch cap and data range -> obligations (decrypt, keep/drop/mask/generalize/
    pseudonymize/encrypt) -> audit event -> response page

Decisions depend on a record only through its subject's consent state and jurisdiction, so a page
is decided once per distinct state, never per record. Two consent terms are the pipeline's own,
outside the policy input: a fetch cap (per subject) and a data range (per record, its
``occurred_at``, read only for pages with such consents); what they withhold goes to a
withholding twin of the allowing decision, with its own reason. Nothing flows backwards: each
gate gets what the previous one produced.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, cast

import orjson
from pydantic_core import to_jsonable_python
from sqlalchemy import Integer, Table, bindparam, select
from sqlalchemy.orm import Session

from consent.fetches import (
    FETCHES_EXCEEDED,
    capped_consents,
    claim_fetches,
    give_back_fetches,
)
from consent.ranges import DataRange
from consent.releases import claim_releases, give_back_releases, role_consents
from consent.service import (
    STATE_COLUMNS,
    ConsentState,
    consent_states,
    state_condition,
    states_from_rows,
)
from hub.audit import append_event, append_events
from hub.auth.tokens import AuthenticatedPartner
from hub.crypto import FieldProtector, SubjectShreddedError
from hub.crypto.recipient import recipient_encryption_key
from hub.crypto.service import KEY_COLUMNS, FieldOpener
from hub.deid.guard import EgressGuard, entities_for_categories
from hub.errors import NotFoundError
from hub.policy import Decision, PolicyEngine, canonical_digest
from hub.policy.interfaces import new_decision_id
from hub.records.models import DataSubject, Record
from hub.registry import service as registry
from hub.registry.errors import AgreementInactiveError, AgreementNotFoundError
from hub.registry.service import AgreementTerms, DatasetTerms, ReleaseTerms
from hub.release.cursor import CursorCodec
from hub.release.obligations import ObligationApplier
from hub.store.prebuilt import PrebuiltSelect


@dataclass(frozen=True)
class ReleaseGates:
    """The collaborators of the pipeline, built once per process."""

    policy: PolicyEngine
    protector: FieldProtector
    cursors: CursorCodec
    obligations: ObligationApplier
    guard: EgressGuard


_RECORDS = cast(Table, Record.__table__)
_DATA_SUBJECTS = cast(Table, DataSubject.__table__)
# Core columns, not ORM entities: the page's rows come back as plain tuples. Both statements
# are built once, with bind parameters, so a pull pays no statement construction.
_PAGE_COLUMNS = select(
    _RECORDS.c.id,
    _RECORDS.c.record_key,
    _RECORDS.c.version,
    _RECORDS.c.subject_id,
    _RECORDS.c.sealed,
    _DATA_SUBJECTS.c.jurisdiction,
).join(_DATA_SUBJECTS, _DATA_SUBJECTS.c.id == _RECORDS.c.subject_id)
# One record: its data time, its subject's key row and consent rows (as many rows as consents,
# at least one) come with it, so a one-record pull reads in one statement what a page reads in
# three (four with a data range).
_SUBJECT_KEYS = KEY_COLUMNS[0].table
_OCCURRED_AT = len(_PAGE_COLUMNS.selected_columns)
_KEYS_AT = _OCCURRED_AT + 1
_STATES_AT = _KEYS_AT + len(KEY_COLUMNS)
_ONE_RECORD = PrebuiltSelect(  # run on the driver's cursor: every one-record pull runs it
    _PAGE_COLUMNS.add_columns(_RECORDS.c.occurred_at, *KEY_COLUMNS, *STATE_COLUMNS)
    .outerjoin(_SUBJECT_KEYS, _SUBJECT_KEYS.c.subject_id == _RECORDS.c.subject_id)
    .outerjoin(STATE_COLUMNS[0].table, state_condition(_RECORDS.c.subject_id))
    .where(
        _RECORDS.c.dataset_id == bindparam("dataset_id"),
        _RECORDS.c.record_key == bindparam("record_key"),
    )
)
_PAGE = (
    _PAGE_COLUMNS.where(
        _RECORDS.c.dataset_id == bindparam("dataset_id"),
        _RECORDS.c.id > bindparam("after_id"),
    )
    .order_by(_RECORDS.c.id)
    .limit(bindparam("limit", type_=Integer))
)
# The data times of a page's records whose consent has a data range: read only for such pages,
# so a page without one reads (and parses) no timestamp at all. With each record's version: a
# record republished between the two statements is not dated by its new version.
_DATA_TIMES = select(_RECORDS.c.id, _RECORDS.c.version, _RECORDS.c.occurred_at).where(
    _RECORDS.c.id.in_(bindparam("record_ids", expanding=True))
)


def _data_times(
    session: Session, rows: Sequence[Sequence[Any]], states: Mapping[str, ConsentState]
) -> dict[int, datetime | None]:
    """Per record id of the page whose subject's consent has a data range, its data time
    (``None`` when unknown, or when the record changed version since the page was read)."""
    if all(state.data_range is None for state in states.values()):  # per subject, not record
        return {}
    versions = {row[0]: row[2] for row in rows if states[row[3]].data_range is not None}
    found = session.execute(_DATA_TIMES, {"record_ids": list(versions)}).all()
    return {
        record_id: occurred_at if versions[record_id] == version else None
        for record_id, version, occurred_at in found
    }


@dataclass(slots=True)
class ReleasedPage:
    """One page as it leaves the pipeline: the JSON shape of ``ReleasePage`` (the documented
    response model), built as plain dicts and serialised once with orjson (``to_json``)."""

    #: Each ``{record_key, version, subject, fields, encrypted_fields}`` (``ReleasedRecord``).
    items: list[dict[str, Any]]
    released: int
    withheld: int
    next_cursor: str | None
    decision_revision: str
    encrypted_fields: dict[str, list[str]]

    def to_json(self) -> bytes:
        return orjson.dumps(self, default=to_jsonable_python)


@dataclass(slots=True)
class _Plan:
    """What a decision that allows does to each record: computed once per decision group."""

    #: Fields to decrypt: not dropped, and not bound for a recipient key that does not exist.
    open_names: list[str]
    #: Fields the decision releases that cannot leave (``encrypt_for_recipient``, no key).
    undeliverable: list[str]
    #: Every opened field is released as it is: no per-field obligation work.
    all_keep: bool
    #: Opens ``open_names`` of this page's records (each subject's key looked up once).
    opener: FieldOpener


@dataclass
class _DecisionGroup:
    decision: Decision
    released_keys: list[str] = field(default_factory=list)
    withheld_keys: list[str] = field(default_factory=list)
    #: (a released record's ``fields``, the name of a free-text field in it)
    free_text: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    erased_keys: list[str] = field(default_factory=list)
    #: Per subject (audit pseudonym): the consent and receipt the decision relied on.
    consents: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    #: Fields the decision released that could not leave (no recipient encryption key).
    undelivered: set[str] = field(default_factory=set)
    input_digest: str = ""
    guard_findings: dict[str, int] = field(default_factory=dict)
    plan: _Plan | None = None
    #: Each record's subject (audit pseudonym): the decision's subjects, and how a large
    #: decision's audit event is split.
    key_subject: dict[str, str] = field(default_factory=dict)


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
#: Records one audit event covers at most. A decision over more of a page's records is written
#: as several events, each with whole subjects (their consents and keys): the log refuses events
#: over 256 KiB, and a record can take ~300 bytes of one (a 128-character key, its subject's
#: pseudonym and consent), so a page of 1,000 records of 1,000 subjects would not fit in one.
MAX_RECORDS_PER_EVENT = 250


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


def _withholding_twin(
    group: _DecisionGroup,
    reason: str,
    twins: dict[tuple[str, str], _DecisionGroup],
    groups: dict[str, _DecisionGroup],
) -> _DecisionGroup:
    """The withholding twin of an allowing decision, for records the consent's own terms keep
    back although the policy allows them: every field dropped, ``reason`` (
    :data:`FETCHES_EXCEEDED` for a subject whose consent has no fetch left today,
    :data:`~consent.ranges.OUTSIDE_DATA_RANGE` or :data:`~consent.ranges.DATA_TIME_UNKNOWN` for
    a record its consent's data range does not cover), the policy input it shares (so its
    digest too). One per allowing decision, reason and page."""
    twin = twins.get((group.decision.decision_id, reason))
    if twin is None:
        decision = group.decision
        withheld = Decision(
            allow=False,
            obligations=MappingProxyType(dict.fromkeys(decision.obligations, "drop")),
            reasons=(reason,),
            decision_id=new_decision_id(),
            policy_revision=decision.policy_revision,
        )
        twin = twins[decision.decision_id, reason] = groups[withheld.decision_id] = _DecisionGroup(
            decision=withheld, input_digest=group.input_digest
        )
    return twin


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
    texts = [fields[name] for fields, name in group.free_text]
    for (fields, name), result in zip(
        group.free_text, guard.scan_and_redact(texts, allowed), strict=True
    ):
        fields[name] = result.text
        for entity, count in result.findings.items():
            group.guard_findings[entity] = group.guard_findings.get(entity, 0) + count


def _rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def policy_input(
    *,
    caller: AuthenticatedPartner,
    agreement: AgreementTerms,
    dataset: DatasetTerms,
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
    session: Session, request: PullRequest, *, reason: str, agreement: AgreementTerms | None
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


def _resolve_agreement(session: Session, request: PullRequest) -> ReleaseTerms:
    """The agreement, its dataset and the recipient's keys, read in one statement."""
    try:
        terms = registry.release_terms(
            session, agreement_id=request.agreement_id, partner_id=request.caller.partner_id
        )
    except AgreementNotFoundError:
        _deny_and_log(session, request, reason="agreement.not_recipient", agreement=None)
        raise
    try:
        registry.ensure_in_force(terms.agreement, request.now)
    except AgreementInactiveError as exc:
        _deny_and_log(session, request, reason=exc.reason, agreement=terms.agreement)
        raise
    return terms


def _plan(
    decision: Decision,
    recipient_key: dict[str, Any] | None,
    opener: Callable[[list[str]], FieldOpener],
) -> _Plan:
    open_names: list[str] = []
    undeliverable: list[str] = []
    for name, action in decision.obligations.items():
        if action == "drop":
            continue
        if action == "encrypt_for_recipient" and recipient_key is None:
            undeliverable.append(name)  # no key to seal it to: never decrypted, never sent
            continue
        open_names.append(name)
    all_keep = all(decision.obligations[name] == "keep" for name in open_names)
    return _Plan(
        open_names=open_names,
        undeliverable=undeliverable,
        all_keep=all_keep,
        opener=opener(open_names),
    )


def pull_page(session: Session, gates: ReleaseGates, request: PullRequest) -> ReleasedPage:
    terms = _resolve_agreement(session, request)
    agreement, dataset = terms.agreement, terms.dataset
    caller = request.caller

    after_id = 0
    if request.cursor:
        after_id = gates.cursors.decode(
            request.cursor, agreement_id=agreement.id, partner_id=caller.partner_id
        )
    protector = gates.protector
    if request.record_key is not None:
        joined = _ONE_RECORD.rows(
            session,
            {
                "dataset_id": dataset.id,
                "record_key": request.record_key,
                "recipient_id": caller.partner_id,
                "recipient_role": caller.role,
                "purpose": agreement.purpose,
            },
        )
        rows: Sequence[Sequence[Any]] = [row[:_OCCURRED_AT] for row in joined[:1]]
        data_times: dict[int, datetime | None] = {row[0]: row[_OCCURRED_AT] for row in joined[:1]}
        subject_ids = {row[3] for row in rows}
        states = states_from_rows(
            [row[_STATES_AT:] for row in joined if row[_STATES_AT] is not None],
            subject_ids=subject_ids,
            now=request.now,
        )
        # erasures seen at once; the subject's key cached
        protector.refresh_from(session, [row[_KEYS_AT:_STATES_AT] for row in joined[:1]])
        has_more = False
    else:
        rows = session.execute(
            _PAGE, {"dataset_id": dataset.id, "after_id": after_id, "limit": request.limit + 1}
        ).all()
        has_more = len(rows) > request.limit
        rows = rows[: request.limit]
        subject_ids = {row[3] for row in rows}
        states = consent_states(
            session,
            subject_ids=subject_ids,
            recipient_id=caller.partner_id,
            purpose=agreement.purpose,
            now=request.now,
            recipient_role=caller.role,
        )
        protector.refresh(session, subject_ids)  # erasures seen at once; the page's keys cached

    # Role-addressed consents ("any lender"): this partner is recorded as receiving records
    # under each, so that the consent's ending reaches it (:mod:`consent.releases`); claimed
    # before any record is opened, given back below if nothing was released. A consent that
    # changed meanwhile (a concurrent ending) has its subjects' states read again.
    recorded: set[str] = set()
    claim = role_consents(states.values())
    while claim:
        new, changed = claim_releases(session, claim, partner_id=caller.partner_id, now=request.now)
        recorded |= new
        if not changed:
            break
        reread = consent_states(
            session,
            subject_ids=[s for s, state in states.items() if state.consent_id in changed],
            recipient_id=caller.partner_id,
            purpose=agreement.purpose,
            now=request.now,
            recipient_role=caller.role,
        )
        states.update(reread)
        claim = role_consents(reread.values()) - recorded

    # Capped consents (``fetches_per_day``): this pull is one fetch of each, claimed for the
    # page in one statement before any record is opened; a consent with none left today has
    # its subjects' records withheld. Uncapped consents are never counted (no statement, no row).
    capped = capped_consents(states.values())
    exhausted: Collection[str] = claim_fetches(session, capped, now=request.now) if capped else ()
    if request.record_key is None:  # a one-record pull read its data time with it
        data_times = _data_times(session, rows, states)
    # Withholding twins of allowing decisions, per (decision, reason): fetch caps, data ranges.
    twins: dict[tuple[str, str], _DecisionGroup] = {}

    groups: dict[str, _DecisionGroup] = {}
    decided: dict[tuple[object, ...], _DecisionGroup] = {}
    categories = dataset.field_categories  # a property that builds a dict: once per page
    free_text_fields = [n for n, c in categories.items() if c == FREE_TEXT]
    # Per subject: its decision group, its pseudonyms (for the recipient, for the audit log)
    # and, if the decision allows and the consent has a data range, the range and the consent
    # (id, receipt). A decision depends on a record only through its subject (consent state,
    # jurisdiction), so once per subject.
    per_subject: dict[
        str, tuple[_DecisionGroup, str, str, tuple[DataRange, tuple[str, str | None]] | None]
    ] = {}
    recipient_jwks = terms.recipient_jwks
    recipient_key: dict[str, Any] | None = None
    recipient_checked = False
    items: list[dict[str, Any]] = []
    encrypted: dict[str, list[str]] = {}
    dataset_id = dataset.id

    def opener(names: list[str]) -> FieldOpener:
        return protector.opener(session, dataset_id=dataset_id, only=names)

    apply = gates.obligations.apply

    for record_id, record_key, version, subject_id, sealed, jurisdiction in rows:
        known = per_subject.get(subject_id)
        if known is None:
            state = states[subject_id]
            group_key = _decision_key(state, jurisdiction, request.now)
            found = decided.get(group_key)
            if found is None:
                policy_doc = policy_input(
                    caller=caller,
                    agreement=agreement,
                    dataset=dataset,
                    consent=state,
                    subject_jurisdiction=jurisdiction,
                    now=request.now,
                )
                decision = gates.policy.decide(policy_doc)
                found = groups.get(decision.decision_id)
                if found is None:
                    found = groups[decision.decision_id] = _DecisionGroup(
                        decision=decision, input_digest=canonical_digest(policy_doc)
                    )
                    if decision.allow:
                        if not recipient_checked and any(
                            a == "encrypt_for_recipient" for a in decision.obligations.values()
                        ):
                            recipient_key = recipient_encryption_key(recipient_jwks)
                            recipient_checked = True
                        found.plan = _plan(decision, recipient_key, opener)
                decided[group_key] = found
            if found.plan is not None and state.consent_id in exhausted:
                found = _withholding_twin(found, FETCHES_EXCEEDED, twins, groups)
            audit_pseudonym = protector.pseudonym("audit", subject_id)
            ranged = None
            if state.consent_id is not None:
                consent = (state.consent_id, state.receipt_id)
                if state.data_range is not None and found.plan is not None:
                    ranged = (state.data_range, consent)
                else:
                    found.consents[audit_pseudonym] = consent
            known = per_subject[subject_id] = (
                found,
                protector.pseudonym(caller.partner_id, subject_id),
                audit_pseudonym,
                ranged,
            )
        group, subject_pseudonym, audit_subject, ranged = known
        if ranged is not None:
            # A consent with a data range: this record's data time decides which group (the
            # allowing decision or a withholding twin) it, and its subject's consent, go to.
            data_range, consent = ranged
            withheld_reason = data_range.withheld_reason(data_times.get(record_id))
            if withheld_reason is not None:
                group = _withholding_twin(group, withheld_reason, twins, groups)
            group.consents[audit_subject] = consent
        group.key_subject[record_key] = audit_subject
        plan = group.plan
        if plan is None:  # the decision does not allow
            group.withheld_keys.append(record_key)
            continue
        try:
            opened = plan.opener.open(subject_id, record_key, sealed)
        except SubjectShreddedError:
            # The subject was erased: their data key is gone, so nothing of theirs can leave.
            group.withheld_keys.append(record_key)
            group.erased_keys.append(record_key)
            continue
        for name in plan.undeliverable:
            if name in sealed:
                group.undelivered.add(name)
        sealed_names: list[str]
        if plan.all_keep:
            released, sealed_names = opened, []
        else:
            released, sealed_names = apply(
                opened,
                obligations=group.decision.obligations,
                categories=categories,
                recipient_id=caller.partner_id,
                recipient_jwks=recipient_jwks,
            )
            if sealed_names:
                encrypted[record_key] = sealed_names
            if len(released) != len(opened):
                group.undelivered.update(n for n in opened if n not in released)
        group.released_keys.append(record_key)
        items.append(
            {
                "record_key": record_key,
                "version": version,
                "subject": subject_pseudonym,
                "fields": released,
                "encrypted_fields": sealed_names,
            }
        )
        for name in free_text_fields:
            if isinstance(released.get(name), str) and name not in sealed_names:
                group.free_text.append((released, name))

    if capped or recorded:  # claims under which nothing was released are given back
        released_under = {
            group.consents.get(group.key_subject[key], ("",))[0]
            for group in groups.values()
            for key in group.released_keys
        }
        give_back_fetches(
            session, set(capped).difference(exhausted, released_under), now=request.now
        )
        give_back_releases(session, recorded - released_under, partner_id=caller.partner_id)
    if twins:  # an allowing decision whose records were all withheld by its twins has none
        groups = {d: g for d, g in groups.items() if g.key_subject}
    for group in groups.values():
        _guard_free_text(gates.guard, group, categories)

    if request.record_key is not None and not items:
        _audit_page(session, gates, request, agreement, groups)
        session.commit()
        raise NotFoundError("No releasable record with this key.")

    next_cursor = None
    if has_more and rows:
        next_cursor = gates.cursors.encode(
            agreement_id=agreement.id, partner_id=caller.partner_id, after_id=rows[-1][0]
        )
    _audit_page(session, gates, request, agreement, groups)
    withheld = sum(len(g.withheld_keys) for g in groups.values())
    return ReleasedPage(
        items=items,
        released=len(items),
        withheld=withheld,
        next_cursor=next_cursor,
        decision_revision=gates.policy.revision,
        encrypted_fields=encrypted,
    )


def _decision_record(group: _DecisionGroup, subjects: set[str] | None) -> dict[str, Any]:
    """The audit record of a decision: of all its subjects, or only of ``subjects``."""
    obligations = group.decision.obligations
    released, withheld, erased = group.released_keys, group.withheld_keys, group.erased_keys
    consents = group.consents
    if subjects is not None:
        of = group.key_subject
        released = [k for k in released if of[k] in subjects]
        withheld = [k for k in withheld if of[k] in subjects]
        erased = [k for k in erased if of[k] in subjects]
        consents = {s: c for s, c in consents.items() if s in subjects}
    return {
        "decision_id": group.decision.decision_id,
        "allow": group.decision.allow,
        "reasons": list(group.decision.reasons),
        "consents": {
            subject: {"consent_id": consent_id, "receipt_id": receipt_id}
            for subject, (consent_id, receipt_id) in sorted(consents.items())
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
        "subjects": sorted(set(group.key_subject.values()) if subjects is None else subjects),
        "released_keys": released,
        "withheld_keys": withheld,
        "erased_keys": erased,
    }


def _event_parts(group: _DecisionGroup) -> list[set[str] | None]:
    """The subjects of each audit event a decision is written as: one event of all of them
    (``None``) up to :data:`MAX_RECORDS_PER_EVENT` records; beyond, subjects packed whole in
    sorted order, at most that many records a part (a subject with more gets a part alone)."""
    if len(group.released_keys) + len(group.withheld_keys) <= MAX_RECORDS_PER_EVENT:
        return [None]
    records = Counter(group.key_subject.values())
    parts: list[set[str] | None] = []
    part: set[str] = set()
    size = 0
    for subject in sorted(records):
        count = records[subject]
        if part and size + count > MAX_RECORDS_PER_EVENT:
            parts.append(part)
            part, size = set(), 0
        part.add(subject)
        size += count
    if part:
        parts.append(part)
    return parts


def _audit_page(
    session: Session,
    gates: ReleaseGates,
    request: PullRequest,
    agreement: AgreementTerms,
    groups: Mapping[str, _DecisionGroup],
) -> None:
    """One audit event per decision (a page with no records still leaves one event; a decision
    over many records, several: ``part`` ``[i, n]``), appended together under one lock. Each
    names its request, so a page's events can be read as one."""
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
    events: list[dict[str, Any]] = []
    for group in groups.values():
        parts = _event_parts(group)
        for i, subjects in enumerate(parts, start=1):
            record = _decision_record(group, subjects)
            event: dict[str, Any] = {
                **common,
                "outcome": "released" if record["released_keys"] else "withheld",
                "released": len(record["released_keys"]),
                "withheld": len(record["withheld_keys"]),
                "decisions": [record],
            }
            if len(parts) > 1:
                event["part"] = [i, len(parts)]
            events.append(event)
    append_events(session, events)
