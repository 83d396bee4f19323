"""The consumer's rights requests in the portal: correction of a field of one of their
records (routed to the record's provider) and erasure of everything the hub holds about them.
A thin layer over :mod:`hub.rights.service` that turns requests into views in the consumer's
language, and its refusals into form errors shown on the form again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.service import ConsentService
from hub.crypto import FieldProtector
from hub.crypto.errors import CryptoError
from hub.portal.consumer import Gettext
from hub.portal.errors import PortalNotFoundError
from hub.portal.i18n import N_
from hub.portal.labels import RIGHTS_KIND_LABELS, RIGHTS_STATUS_LABELS, field_label
from hub.records.models import Record
from hub.registry.models import Dataset
from hub.registry.service import partners_by_id
from hub.rights import service
from hub.rights.errors import (
    InvalidRightsRequestError,
    RightsRequestNotFoundError,
    RightsTransitionError,
    SubjectErasedError,
)
from hub.rights.models import RightsKind, RightsRequest

#: What the hub's own steps say, in the consumer's language.
HUB_REASONS = {
    service.REASON_SHREDDED: N_("The key that protected your data was destroyed."),
    service.REASON_ALREADY_ERASED: N_("Your data had already been erased."),
    service.REASON_CLOSED_BY_ERASURE: N_("Closed because your data was erased."),
}


class FormRefused(Exception):
    """A form value the service refused: the form is shown again with ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class StepView:
    status_label: str
    actor: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class RightsView:
    id: str
    kind: str
    kind_label: str
    status: str
    status_label: str
    what: str
    proposed: str | None
    steps: list[StepView]


@dataclass(frozen=True)
class FieldChoice:
    name: str
    label: str
    current: str


@dataclass(frozen=True)
class CorrectionForm:
    dataset_id: str
    dataset_title: str
    record_key: str
    fields: list[FieldChoice]


def _shown(value: object) -> str:
    return "" if value is None else str(value)


class ConsumerRights:
    def __init__(self, protector: FieldProtector, consents: ConsentService) -> None:
        self.protector = protector
        self.consents = consents

    def erased(self, session: Session, *, subject_id: str) -> bool:
        return service.is_erased(session, subject_id=subject_id)

    def requests(self, session: Session, *, subject_id: str, gettext: Gettext) -> list[RightsView]:
        _ = gettext
        rows = service.requests_of_subject(session, subject_id=subject_id)
        partner_ids = {
            e.actor.removeprefix("partner:")
            for r in rows
            for e in r.events
            if e.actor.startswith("partner:")
        }
        names = {pid: p.name for pid, p in partners_by_id(session, sorted(partner_ids)).items()}
        datasets = self._datasets(session, {r.dataset_id for r in rows if r.dataset_id})

        def actor(name: str) -> str:
            if name == service.CONSUMER:
                return _("you")
            if name == service.HUB:
                return _("Tollhouse")
            pid = name.removeprefix("partner:")
            return names.get(pid, pid)

        views: list[RightsView] = []
        for r in rows:
            views.append(
                RightsView(
                    id=r.id,
                    kind=r.kind,
                    kind_label=_(RIGHTS_KIND_LABELS.get(r.kind, r.kind)),
                    status=r.status,
                    status_label=_(RIGHTS_STATUS_LABELS.get(r.status, r.status)),
                    what=self._what(r, datasets, _),
                    proposed=service.open_proposal(
                        session, protector=self.protector, request=r
                    ).value,
                    steps=[
                        StepView(
                            status_label=_(RIGHTS_STATUS_LABELS.get(e.to_status, e.to_status)),
                            actor=actor(e.actor),
                            reason=_(HUB_REASONS[e.reason])
                            if e.actor == service.HUB and e.reason in HUB_REASONS
                            else e.reason,
                            at=e.at,
                        )
                        for e in r.events
                    ],
                )
            )
        return views

    @staticmethod
    def _datasets(session: Session, ids: set[str]) -> dict[str, Dataset]:
        if not ids:
            return {}
        rows = session.scalars(select(Dataset).where(Dataset.id.in_(sorted(ids)))).all()
        return {d.id: d for d in rows}

    @staticmethod
    def _what(request: RightsRequest, datasets: dict[str, Dataset], _: Gettext) -> str:
        if request.kind != RightsKind.CORRECTION or request.dataset_id is None:
            return _("Everything Tollhouse holds about you")
        dataset = datasets.get(request.dataset_id)
        field = request.field or ""
        category = dataset.field_categories.get(field) if dataset else None
        return _("{field} in {dataset}, record {record}").format(
            field=field_label(field, category, _),
            dataset=dataset.title if dataset else request.dataset_id,
            record=request.record_key,
        )

    def correction_form(
        self,
        session: Session,
        *,
        subject_id: str,
        dataset_id: str,
        record_key: str,
        gettext: Gettext,
    ) -> CorrectionForm:
        record = session.scalars(
            select(Record).where(
                Record.dataset_id == dataset_id,
                Record.record_key == record_key,
                Record.subject_id == subject_id,
            )
        ).one_or_none()
        dataset = session.get(Dataset, dataset_id) if record is not None else None
        if record is None or dataset is None:
            raise PortalNotFoundError(record_key)
        try:
            values = self.protector.open_fields(
                session,
                subject_id=subject_id,
                dataset_id=dataset_id,
                record_key=record_key,
                sealed=record.sealed,
            )
        except CryptoError:
            values = {}
        categories = dataset.field_categories
        return CorrectionForm(
            dataset_id=dataset_id,
            dataset_title=dataset.title,
            record_key=record_key,
            fields=[
                FieldChoice(
                    name=name,
                    label=field_label(name, categories.get(name), gettext),
                    current=_shown(values.get(name)),
                )
                for name in dataset.field_specs
            ],
        )

    def request_correction(
        self,
        session: Session,
        *,
        subject_id: str,
        dataset_id: str,
        record_key: str,
        field: str,
        value: str,
        note: str,
    ) -> RightsRequest:
        try:
            return service.request_correction(
                session,
                protector=self.protector,
                subject_id=subject_id,
                dataset_id=dataset_id,
                record_key=record_key,
                field=field,
                value=value,
                note=note,
            )
        except RightsRequestNotFoundError as exc:
            raise PortalNotFoundError(record_key) from exc
        except SubjectErasedError as exc:
            raise FormRefused(
                409, N_("Your data was erased; there is nothing to correct.")
            ) from exc
        except RightsTransitionError as exc:
            raise FormRefused(
                409, N_("You already asked for a correction of this field; it is being handled.")
            ) from exc
        except InvalidRightsRequestError as exc:
            fields = {e.field for e in exc.errors}
            if "field" in fields:
                message = N_("Please choose one of the fields of this record.")
            elif "note" in fields:
                message = N_("Your explanation is too long (at most 1000 characters).")
            else:
                message = N_("Please write the correct value (at most 500 characters).")
            raise FormRefused(422, message) from exc

    def erase(self, session: Session, *, subject_id: str, identifier: str) -> RightsRequest:
        """Erase the consumer, confirmed by their own mobile number or e-mail address."""
        try:
            return service.erase_my_data(
                session,
                protector=self.protector,
                consents=self.consents,
                subject_id=subject_id,
                identifier=identifier,
            )
        except InvalidRightsRequestError as exc:
            raise FormRefused(
                422, N_("That is not your mobile number or e-mail address. Nothing was erased.")
            ) from exc
