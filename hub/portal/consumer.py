"""What the portal shows and does for a signed-in consumer: a thin layer over the consent
service that turns its answers into views in the consumer's language and its errors into
portal errors. No consent rule lives here; the consent service decides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time

from sqlalchemy.orm import Session

from consent.erasure import ended_by_erasure
from consent.errors import (
    ConsentNotFoundError,
    InvalidConsentError,
    InvalidConsentTransitionError,
)
from consent.models import ConsentMode, ConsentStatus
from consent.ranges import DataRange
from consent.service import ConsentOverview, ConsentService, GrantChoices
from hub.portal.errors import PortalConflictError, PortalInvalidError, PortalNotFoundError
from hub.portal.i18n import N_
from hub.portal.labels import CATEGORY_LABELS, PURPOSE_LABELS, ROLE_LABELS, STATUS_LABELS

Gettext = Callable[[str], str]
PORTAL_CHANNEL = "portal"

_SHOWN = [
    ConsentStatus.ACTIVE,
    ConsentStatus.PAUSED,
    ConsentStatus.WITHDRAWN,
    ConsentStatus.REVOKED,
    ConsentStatus.EXPIRED,
    ConsentStatus.DENIED,
]


@dataclass(frozen=True)
class CategoryChoice:
    key: str
    label: str
    sensitive: bool


@dataclass(frozen=True)
class ConsentView:
    id: str
    partner: str
    status: str
    status_label: str
    summary: str
    reason: str
    sensitive: bool
    cross_border: bool
    can_pause: bool
    can_resume: bool
    can_withdraw: bool
    categories: tuple[CategoryChoice, ...] = ()
    duration_days: int = 0
    #: Why it ended, when the erasure of the consumer's data ended it (not the consumer).
    erasure_note: str = ""
    #: The cap on fetches a day (asked for, on a request); ``None`` when there is none.
    fetches_per_day: int | None = None
    #: The cap in plain words: on a request what the partner asks for, otherwise the cap and
    #: the fetches used today (UTC); empty when there is no cap.
    fetches_note: str = ""
    #: Who received the consumer's data under a consent addressed to a role, in plain words;
    #: empty for a consent naming one partner.
    received_note: str = ""
    #: The data range in plain words (the data times the consent covers, asked for on a
    #: request); empty when it has none.
    data_range_note: str = ""


@dataclass(frozen=True)
class PartnerGroup:
    partner: str
    consents: list[ConsentView] = field(default_factory=list)


@dataclass(frozen=True)
class Home:
    requests: list[ConsentView]
    groups: list[PartnerGroup]
    ended: list[ConsentView]


def _fetches_note(item: ConsentOverview, _: Gettext) -> str:
    cap = item.consent.fetches_per_day
    if cap is None:
        return ""
    if item.status == ConsentStatus.REQUESTED:
        if cap == 1:
            return _("They ask to fetch your data at most once a day.")
        return _("They ask to fetch your data at most {cap} times a day.").format(cap=cap)
    template = (
        _("Up to 1 fetch a day; {used} used today (UTC).")
        if cap == 1
        else _("Up to {cap} fetches a day; {used} used today (UTC).")
    )
    return template.format(cap=cap, used=item.fetches_today or 0)


def _received_note(item: ConsentOverview, names: dict[str, str], _: Gettext) -> str:
    if item.consent.recipient_role is None or item.status == ConsentStatus.REQUESTED:
        return ""
    if not item.received_by:
        return _("No partner has received your data under it.")
    received = _(", ").join(names.get(p, p) for p in item.received_by)
    return _("Received your data under it: {partners}.").format(partners=received)


def _moment(value: datetime) -> str:
    """A range bound as the portal shows it: the day, and the time (UTC) unless midnight."""
    value = value.astimezone(UTC)
    if value.time() == time(0):
        return value.date().isoformat()
    return value.strftime("%Y-%m-%d %H:%M")


def _data_range_note(item: ConsentOverview, _: Gettext) -> str:
    consent = item.consent
    data_range = DataRange.of(consent.data_from, consent.data_until, consent.expires_at)
    if data_range is None:
        return ""
    template = (
        _("They ask only for data produced from {start} until {end} (UTC).")
        if item.status == ConsentStatus.REQUESTED
        else _("Only data produced from {start} until {end} (UTC).")
    )
    return template.format(start=_moment(data_range.start), end=_moment(data_range.end))


def _partner_name(item: ConsentOverview, names: dict[str, str], _: Gettext) -> str:
    consent = item.consent
    if consent.recipient_id:
        return names.get(consent.recipient_id, consent.recipient_id)
    role = consent.recipient_role or ""
    return _("Every {role}").format(role=_(ROLE_LABELS[role]) if role in ROLE_LABELS else role)


class ConsumerPortal:
    def __init__(self, consents: ConsentService) -> None:
        self.consents = consents

    def _names(self, session: Session, items: Sequence[ConsentOverview]) -> dict[str, str]:
        ids = sorted(
            {i.consent.recipient_id for i in items if i.consent.recipient_id}
            | {p for i in items for p in i.received_by}
        )
        directory = self.consents.directory
        return dict(directory(session, ids)) if directory and ids else {}

    def summary(self, item: ConsentOverview, partner: str, _: Gettext) -> str:
        consent = item.consent
        what = _(", ").join(
            _(CATEGORY_LABELS[c]) if c in CATEGORY_LABELS else c for c in consent.categories
        )
        why = _(PURPOSE_LABELS[consent.purpose]) if consent.purpose in PURPOSE_LABELS else ""
        template = (
            _("{who} may see once {what} to {why}, until {until}.")
            if consent.mode == ConsentMode.VIEW_ONCE
            else _("{who} may read {what} to {why}, until {until}.")
        )
        text = template.format(
            who=partner,
            what=what,
            why=why or consent.purpose,
            until=consent.expires_at.date().isoformat(),
        )
        if consent.sensitive:
            text += " " + _("Includes sensitive personal information (granted separately).")
        if consent.cross_border:
            text += " " + _("May be transferred abroad (granted separately).")
        return text

    def _view(self, item: ConsentOverview, names: dict[str, str], _: Gettext) -> ConsentView:
        consent = item.consent
        partner = _partner_name(item, names, _)
        taxonomy = self.consents.taxonomy
        return ConsentView(
            id=consent.id,
            partner=partner,
            status=item.status,
            status_label=_(STATUS_LABELS.get(item.status, item.status)),
            summary=self.summary(item, partner, _),
            reason=consent.reason,
            sensitive=consent.sensitive,
            cross_border=consent.cross_border,
            can_pause=item.status == ConsentStatus.ACTIVE,
            can_resume=item.status == ConsentStatus.PAUSED,
            can_withdraw=item.status in (ConsentStatus.ACTIVE, ConsentStatus.PAUSED),
            categories=tuple(
                CategoryChoice(
                    key=c,
                    label=_(CATEGORY_LABELS[c]) if c in CATEGORY_LABELS else c,
                    sensitive=taxonomy.is_sensitive(c),
                )
                for c in consent.categories
            ),
            duration_days=max(1, (consent.expires_at - consent.starts_at).days),
            fetches_per_day=consent.fetches_per_day,
            fetches_note=_fetches_note(item, _),
            received_note=_received_note(item, names, _),
            data_range_note=_data_range_note(item, _),
        )

    def home(self, session: Session, *, subject_id: str, gettext: Gettext) -> Home:
        requests = self.consents.overview(
            session, subject_id=subject_id, statuses=[ConsentStatus.REQUESTED]
        )
        shown = self.consents.overview(session, subject_id=subject_id, statuses=_SHOWN)
        names = self._names(session, [*requests, *shown])
        groups: dict[str, PartnerGroup] = {}
        ended: list[ConsentView] = []
        by_erasure = ended_by_erasure(
            session,
            [
                i.consent.id
                for i in shown
                if i.status in (ConsentStatus.REVOKED, ConsentStatus.DENIED)
            ],
        )
        for item in shown:
            view = self._view(item, names, gettext)
            if view.can_withdraw:
                groups.setdefault(view.partner, PartnerGroup(view.partner)).consents.append(view)
            else:
                note = ""
                if view.id in by_erasure:
                    note = gettext(
                        N_(
                            "Ended when your data was erased; the partner was told to delete "
                            "what it received about you."
                        )
                        if item.status == ConsentStatus.REVOKED
                        and (item.consent.recipient_id or item.received_by)
                        else N_("Ended when your data was erased.")
                    )
                ended.append(replace(view, erasure_note=note))
        return Home(
            requests=[self._view(i, names, gettext) for i in requests],
            groups=sorted(groups.values(), key=lambda g: g.partner),
            ended=ended,
        )

    def change(self, session: Session, *, subject_id: str, consent_id: str, action: str) -> None:
        """``pause``, ``resume`` or ``withdraw`` one of the consumer's consents."""
        service = self.consents
        operations = {
            "pause": service.pause,
            "resume": service.resume,
            "withdraw": service.withdraw,
        }
        operation = operations.get(action)
        if operation is None:
            raise PortalNotFoundError(action)
        try:
            operation(session, consent_id=consent_id, subject_id=subject_id, channel=PORTAL_CHANNEL)
        except ConsentNotFoundError as exc:
            raise PortalNotFoundError(consent_id) from exc
        except InvalidConsentTransitionError as exc:
            raise PortalConflictError(str(exc)) from exc

    def grant(
        self,
        session: Session,
        *,
        subject_id: str,
        consent_id: str,
        categories: Sequence[str],
        duration_days: int | None,
        sensitive: bool,
        cross_border: bool,
        fetches_per_day: int | None = None,
    ) -> None:
        if not categories:
            raise PortalInvalidError("choose at least one kind of data")
        try:
            self.consents.grant_request(
                session,
                consent_id=consent_id,
                subject_id=subject_id,
                choices=GrantChoices(
                    categories=list(categories),
                    duration_days=duration_days,
                    sensitive=sensitive,
                    cross_border=cross_border,
                    fetches_per_day=fetches_per_day,
                ),
                channel=PORTAL_CHANNEL,
            )
        except ConsentNotFoundError as exc:
            raise PortalNotFoundError(consent_id) from exc
        except InvalidConsentTransitionError as exc:
            raise PortalConflictError(str(exc)) from exc
        except InvalidConsentError as exc:
            raise PortalInvalidError(str(exc)) from exc

    def deny(self, session: Session, *, subject_id: str, consent_id: str) -> None:
        try:
            self.consents.deny_request(
                session, consent_id=consent_id, subject_id=subject_id, channel=PORTAL_CHANNEL
            )
        except ConsentNotFoundError as exc:
            raise PortalNotFoundError(consent_id) from exc
        except InvalidConsentTransitionError as exc:
            raise PortalConflictError(str(exc)) from exc
