"""The consumer's rights in the portal: the access ledger (who received what about them, from
the audit log), their own records as the hub holds them (decrypted for them), and their signed
consent receipts with a verifier."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.errors import ConsentNotFoundError, InvalidConsentError
from consent.receipts import verify_receipt
from consent.service import ConsentService
from hub.audit import AuditEvent, query_events
from hub.crypto import FieldProtector
from hub.portal.errors import PortalNotFoundError
from hub.portal.labels import field_label
from hub.records.models import Record
from hub.registry.models import Dataset
from hub.registry.service import partners_by_id
from hub.rights.service import is_erased

Gettext = Callable[[str], str]


def _identity(message: str) -> str:
    return message


#: How many audit events the ledger page reads at most (newest kept).
LEDGER_SCAN = 5000
PAGE = 500


@dataclass(frozen=True)
class LedgerEntry:
    index: int
    at: datetime
    partner: str
    dataset_id: str
    purpose: str
    allowed: bool
    fields: tuple[str, ...]
    #: The same fields in plain words, in the consumer's language.
    field_labels: tuple[str, ...]
    reasons: tuple[str, ...]
    consent_id: str | None
    receipt_id: str | None


@dataclass(frozen=True)
class MyRecord:
    dataset_id: str
    record_key: str
    updated_at: datetime
    fields: dict[str, Any]


@dataclass(frozen=True)
class ReceiptView:
    id: str
    seq: int
    event: str
    issued_at: datetime
    jws: str


@dataclass(frozen=True)
class Verified:
    valid: bool
    claims: dict[str, Any]


class MyData:
    def __init__(
        self,
        *,
        consents: ConsentService,
        protector: FieldProtector,
        jwks: Callable[[], dict[str, Any]],
    ) -> None:
        self.consents = consents
        self.protector = protector
        self.jwks = jwks

    def ledger(
        self,
        session: Session,
        *,
        subject_id: str,
        outcome: str | None = None,
        gettext: Gettext = _identity,
    ) -> list[LedgerEntry]:
        """Every release decision that concerned this consumer, newest first; ``outcome``
        ``allowed`` or ``denied`` filters; field names in plain words through ``gettext``."""
        pseudonym = self.protector.pseudonym("audit", subject_id)
        events: list[AuditEvent] = []
        after: int | None = None
        while len(events) < LEDGER_SCAN:
            page = query_events(
                session, subject=pseudonym, kind="release", limit=PAGE, after_index=after
            )
            events.extend(page)
            if len(page) < PAGE:
                break
            after = page[-1].index
        names = {
            pid: p.name
            for pid, p in partners_by_id(
                session, sorted({e.partner_id for e in events if e.partner_id})
            ).items()
        }
        categories = self.field_categories(session, {e.dataset_id for e in events if e.dataset_id})
        # A decision covers every subject in the same consent state and cites each subject's
        # own consent and receipt by pseudonym; show them only when they are this consumer's.
        own = {c.id for c in self.consents.consents_of_subject(session, subject_id=subject_id)}
        entries: list[LedgerEntry] = []
        for event in events:
            document = json.loads(event.canonical)
            for decision in document.get("decisions", []):
                if pseudonym not in decision.get("subjects", []):
                    continue
                allowed = bool(decision.get("allow"))
                fields = tuple(decision.get("fields_released", [])) if allowed else ()
                of_dataset = categories.get(event.dataset_id or "", {})
                cited = decision.get("consents", {}).get(pseudonym) or {}
                mine = cited.get("consent_id") in own
                if outcome == "allowed" and not allowed or outcome == "denied" and allowed:
                    continue
                entries.append(
                    LedgerEntry(
                        index=event.index,
                        at=event.created_at,
                        partner=names.get(event.partner_id or "", event.partner_id or ""),
                        dataset_id=event.dataset_id or "",
                        purpose=event.purpose or "",
                        allowed=allowed,
                        fields=fields,
                        field_labels=tuple(
                            field_label(f, of_dataset.get(f), gettext) for f in fields
                        ),
                        reasons=tuple(decision.get("reasons", [])),
                        consent_id=cited.get("consent_id") if mine else None,
                        receipt_id=cited.get("receipt_id") if mine else None,
                    )
                )
        entries.reverse()
        return entries

    @staticmethod
    def field_categories(session: Session, dataset_ids: set[str]) -> dict[str, dict[str, str]]:
        """Each dataset's fields and their data categories."""
        if not dataset_ids:
            return {}
        rows = session.scalars(select(Dataset).where(Dataset.id.in_(sorted(dataset_ids)))).all()
        return {d.id: d.field_categories for d in rows}

    def field_labels(
        self, session: Session, records: Sequence[MyRecord], gettext: Gettext
    ) -> dict[str, dict[str, str]]:
        """Plain-words names of the fields of these records, per dataset."""
        categories = self.field_categories(session, {r.dataset_id for r in records})
        return {
            r.dataset_id: {
                name: field_label(name, categories.get(r.dataset_id, {}).get(name), gettext)
                for name in r.fields
            }
            for r in records
        }

    def records(self, session: Session, *, subject_id: str) -> list[MyRecord]:
        """The consumer's records, decrypted; none once their data was erased (the key that
        opened them is gone)."""
        if is_erased(session, subject_id=subject_id):
            return []
        rows = session.scalars(
            select(Record)
            .where(Record.subject_id == subject_id)
            .order_by(Record.dataset_id, Record.record_key)
        ).all()
        return [
            MyRecord(
                dataset_id=row.dataset_id,
                record_key=row.record_key,
                updated_at=row.updated_at,
                fields=self.protector.open_fields(
                    session,
                    subject_id=subject_id,
                    dataset_id=row.dataset_id,
                    record_key=row.record_key,
                    sealed=row.sealed,
                ),
            )
            for row in rows
        ]

    @staticmethod
    def as_json(records: Sequence[MyRecord]) -> bytes:
        document = {
            "records": [
                {
                    "dataset": r.dataset_id,
                    "record_key": r.record_key,
                    "updated_at": r.updated_at.isoformat(),
                    "fields": r.fields,
                }
                for r in records
            ]
        }
        return json.dumps(document, ensure_ascii=False, indent=2, default=str).encode("utf-8")

    @staticmethod
    def as_csv(records: Sequence[MyRecord]) -> bytes:
        """One row per field: dataset, record, field, value (JSON for non-strings)."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["dataset", "record_key", "field", "value"])
        for r in records:
            for name, value in sorted(r.fields.items()):
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                # Cells starting with = + - @ are formulas to a spreadsheet: quote them.
                if text[:1] in ("=", "+", "-", "@"):
                    text = "'" + text
                writer.writerow([r.dataset_id, r.record_key, name, text])
        # A BOM so that spreadsheet programs read the Chinese text as UTF-8.
        return ("\ufeff" + out.getvalue()).encode("utf-8")

    def receipts(self, session: Session, *, subject_id: str, consent_id: str) -> list[ReceiptView]:
        try:
            consent = self.consents.consent_of_subject(
                session, subject_id=subject_id, consent_id=consent_id
            )
        except ConsentNotFoundError as exc:
            raise PortalNotFoundError(consent_id) from exc
        return [
            ReceiptView(id=r.id, seq=r.seq, event=r.event, issued_at=r.issued_at, jws=r.jws)
            for r in self.consents.receipts(session, consent_id=consent.id)
        ]

    def receipt(
        self, session: Session, *, subject_id: str, consent_id: str, receipt_id: str
    ) -> ReceiptView:
        for receipt in self.receipts(session, subject_id=subject_id, consent_id=consent_id):
            if receipt.id == receipt_id:
                return receipt
        raise PortalNotFoundError(receipt_id)

    def verify(self, receipt: ReceiptView) -> Verified:
        try:
            return Verified(True, verify_receipt(receipt.jws, self.jwks()))
        except InvalidConsentError:
            return Verified(False, {})
