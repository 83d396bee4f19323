"""A consent's data range (``data_from`` / ``data_until``) is enforced at release time: a record
leaves only when its data time (``occurred_at``, from the dataset's ``x-data-time`` field) lies in
``[data_from, data_until)`` (``data_until`` defaulting to the consent's expiry); outside it, or
with no known data time, it is withheld with its own reason; consents without a range are not
touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select, update

from consent.fetches import FETCHES_EXCEEDED
from consent.ranges import DATA_TIME_UNKNOWN, OUTSIDE_DATA_RANGE, DataRange
from consent.service import ConsentState, ConsentTerms
from hub.records.models import Record
from hub.release.pipeline import _data_times
from hub.store.base import utcnow
from tests.release.test_fetch_cap import (
    DATASET,
    LENDER,
    PURPOSE,
    audit_events,
    counts,
    pull,
)
from tests.support.explain import explained as explain_service
from tests.support.hub import HubEnv

MOBILE = "+8613912340001"
OTHER_MOBILE = "+8613912340002"
#: The records' data times: one a day from 2026-01-01 (``applied_on``, a date: midnight UTC).
FIRST_DAY = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 30


def key(day: int, prefix: str = "DR") -> str:
    return f"{prefix}-{day:02d}"


def application(record_key: str, applied_on: str, mobile: str, version: int = 1) -> dict[str, Any]:
    return {
        "record_key": record_key,
        "version": version,
        "subject": {"mobile": mobile},
        "fields": {
            "applicant_name": "测试 申请人",
            "birth_date": "1980-01-01",
            "id_number": "11010519491231002X",
            "mobile": mobile,
            "address": "北京市东城区测试路1号",
            "monthly_income_cny": 18000,
            "vin": "1M8GDM9AXKP042788",
            "amount_cny": 120000,
            "term_months": 36,
            "down_payment_cny": 30000,
            "applied_on": applied_on,
            "lender": "lender-jinqiao",
        },
    }


def publish(hub: HubEnv, records: list[dict[str, Any]]) -> None:
    response = hub.client.post(
        f"/v1/datasets/{DATASET}/records",
        json={"records": records},
        headers=hub.auth("dealer-huadong", "records:publish"),
    )
    assert response.status_code == 200, response.text


def subject_of(hub: HubEnv, record_key: str) -> str:
    with hub.session() as session:
        return session.scalars(
            select(Record.subject_id).where(
                Record.dataset_id == DATASET, Record.record_key == record_key
            )
        ).one()


@pytest.fixture(scope="module")
def subject(hub: HubEnv) -> str:
    """A subject with 30 loan applications, one a day through January 2026, and a consent
    without a data range for the lender."""
    publish(
        hub,
        [
            application(key(day), (FIRST_DAY + timedelta(days=day)).date().isoformat(), MOBILE)
            for day in range(DAYS)
        ],
    )
    subject_id = subject_of(hub, key(0))
    grant(hub, subject_id, None)
    return subject_id


def grant(
    hub: HubEnv,
    subject_id: str,
    data_from: datetime | None,
    data_until: datetime | None = None,
    *,
    now: datetime | None = None,
    expires_in: timedelta = timedelta(days=30),
    fetches_per_day: int | None = None,
) -> str:
    """A new consent for the lender (it wins over the subject's older ones); its id."""
    now = now or utcnow()
    terms = ConsentTerms(
        purpose=PURPOSE,
        categories=("identity", "income", "loan"),
        starts_at=now - timedelta(minutes=1),
        expires_at=now + expires_in,
        data_from=data_from,
        data_until=data_until,
        fetches_per_day=fetches_per_day,
    )
    with hub.session() as session:
        consent = hub.runtime.consents.grant(
            session,
            subject_id=subject_id,
            recipient_id=str(hub.partner(LENDER)["partner_id"]),
            terms=terms,
            channel="test",
            now=now - timedelta(minutes=1),
        )
        session.commit()
        return consent.id


def released_of(page: Any, prefix: str = "DR-") -> set[str]:
    return {item["record_key"] for item in page.items if item["record_key"].startswith(prefix)}


def day(n: int) -> datetime:
    return FIRST_DAY + timedelta(days=n)


def test_records_outside_the_range_are_withheld_with_their_reason(
    hub: HubEnv, subject: str
) -> None:
    before = pull(hub, "dr-before", utcnow())
    assert released_of(before) == {key(d) for d in range(DAYS)}
    others_before = {i["record_key"] for i in before.items} - released_of(before)

    # [Jan 6, Jan 16): days 5..14; day 15's midnight is the excluded upper bound.
    consent_id = grant(hub, subject, day(5), day(15))
    with hub.session() as session:  # an unknown data time: withheld too (fail closed)
        session.execute(update(Record).where(Record.record_key == key(7)).values(occurred_at=None))
        session.commit()
    page = pull(hub, "dr-mixed", utcnow())

    inside = {key(d) for d in range(5, 15)} - {key(7)}
    outside = {key(d) for d in range(DAYS)} - inside - {key(7)}
    assert released_of(page) == inside
    # Consents without a range: every other subject's records as before.
    assert {i["record_key"] for i in page.items} - released_of(page) == others_before
    assert page.released == before.released - len(outside) - 1
    assert page.withheld == before.withheld + len(outside) + 1

    events = audit_events(hub, "dr-mixed")
    decisions = [d for e in events for d in e["decisions"]]
    by_reason = {tuple(d["reasons"]): d for d in decisions if not d["allow"]}
    outside_decision = by_reason[(OUTSIDE_DATA_RANGE,)]
    assert set(outside_decision["withheld_keys"]) == outside
    assert outside_decision["released_keys"] == [] and outside_decision["fields_released"] == []
    assert [c["consent_id"] for c in outside_decision["consents"].values()] == [consent_id]
    unknown_decision = by_reason[(DATA_TIME_UNKNOWN,)]
    assert unknown_decision["withheld_keys"] == [key(7)]
    assert [c["consent_id"] for c in unknown_decision["consents"].values()] == [consent_id]
    # The twins share their allowing decision's policy input, and it released the rest.
    allowing = [d for d in decisions if d["allow"] and inside <= set(d["released_keys"])]
    assert len(allowing) == 1
    assert allowing[0]["input_digest"] == outside_decision["input_digest"]
    assert consent_id in {c["consent_id"] for c in allowing[0]["consents"].values()}
    assert sum(e["withheld"] for e in events) == page.withheld
    assert sum(e["released"] for e in events) == page.released

    # One record: 404 outside the range or with an unknown data time, 200 inside.
    agreement_id = hub.agreement(LENDER, DATASET)
    for record_key, status in ((key(4), 404), (key(15), 404), (key(7), 404), (key(5), 200)):
        response = hub.client.get(
            f"/v1/agreements/{agreement_id}/records/{record_key}", headers=hub.auth(LENDER)
        )
        assert response.status_code == status, (record_key, response.text)
        if status == 404:
            assert response.headers["content-type"].startswith("application/problem+json")


def test_a_range_without_data_until_runs_to_the_expiry(hub: HubEnv, subject: str) -> None:
    now = utcnow()
    # The range [day 20, expiry): expiry is in the future, so every day from the 20th.
    grant(hub, subject, day(20))
    assert released_of(pull(hub, "dr-open", now)) == {key(d) for d in range(20, DAYS)}


def test_republishing_moves_a_record_into_the_range(hub: HubEnv, subject: str) -> None:
    grant(hub, subject, day(0), day(3))
    assert released_of(pull(hub, "dr-move-1", utcnow())) == {key(0), key(1), key(2)}
    publish(hub, [application(key(29), "2026-01-02", MOBILE, version=2)])
    assert released_of(pull(hub, "dr-move-2", utcnow())) == {key(0), key(1), key(2), key(29)}
    publish(hub, [application(key(29), "2026-01-30", MOBILE, version=3)])
    assert released_of(pull(hub, "dr-move-3", utcnow())) == {key(0), key(1), key(2)}


def test_a_capped_consent_whose_records_are_all_outside_counts_no_fetch(
    hub: HubEnv, subject: str
) -> None:
    consent_id = grant(hub, subject, datetime(2025, 1, 1, tzinfo=UTC), day(0), fetches_per_day=1)
    page = pull(hub, "dr-capped", utcnow())
    assert released_of(page) == set()
    # Nothing released under it: the fetch is given back.
    assert set(counts(hub, consent_id).values()) <= {0}
    reasons = {
        tuple(d["reasons"])
        for e in audit_events(hub, "dr-capped")
        for d in e["decisions"]
        if not d["allow"]
    }
    assert (OUTSIDE_DATA_RANGE,) in reasons and (FETCHES_EXCEEDED,) not in reasons

    grant(hub, subject, day(0), day(1), fetches_per_day=1)
    assert released_of(pull(hub, "dr-capped-1", utcnow())) == {key(0)}
    page = pull(hub, "dr-capped-2", utcnow())  # over the cap: the fetch cap's reason wins
    assert released_of(page) == set()
    reasons = {
        tuple(d["reasons"])
        for e in audit_events(hub, "dr-capped-2")
        for d in e["decisions"]
        if not d["allow"] and any(k.startswith("DR-") for k in d["withheld_keys"])
    }
    assert reasons == {(FETCHES_EXCEEDED,)}


def test_explain_shows_the_range_and_whether_a_record_is_inside(hub: HubEnv, subject: str) -> None:
    grant(hub, subject, day(10), day(12))

    def explain(record_key: str | None) -> dict[str, Any]:
        response = hub.client.post(
            "/v1/decisions/explain",
            json={
                "agreement_id": hub.agreement(LENDER, DATASET),
                "subject": {"mobile": MOBILE},
                **({"record_key": record_key} if record_key else {}),
            },
            headers=hub.auth("regulator-fsr"),
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    body = explain(None)
    assert body["data_range"] == {
        "data_from": "2026-01-11T00:00:00+00:00",
        "data_until": "2026-01-13T00:00:00+00:00",
    }
    assert body["record"] is None
    assert "data_from" not in str(body["input"])  # never part of the policy input
    inside = explain(key(11))["record"]
    assert inside == {
        "record_key": key(11),
        "occurred_at": "2026-01-12T00:00:00+00:00",
        "in_data_range": True,
        "withheld_reason": None,
    }
    outside = explain(key(12))["record"]
    assert outside["in_data_range"] is False
    assert outside["withheld_reason"] == OUTSIDE_DATA_RANGE

    # A record of another subject (or none) is not found for this one.
    publish(hub, [application("DX-1", "2026-01-11", OTHER_MOBILE)])
    response = hub.client.post(
        "/v1/decisions/explain",
        json={
            "agreement_id": hub.agreement(LENDER, DATASET),
            "subject": {"mobile": MOBILE},
            "record_key": "DX-1",
        },
        headers=hub.auth("regulator-fsr"),
    )
    assert response.status_code == 404, response.text

    grant(hub, subject, None)  # no range: nothing to check
    explained = explain_service(
        hub, agreement_id=hub.agreement(LENDER, DATASET), mobile=MOBILE, record_key=key(12)
    )
    assert explained["data_range"] is None
    assert explained["record"]["in_data_range"] is None
    assert explained["record"]["withheld_reason"] is None


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    start=st.integers(min_value=-3, max_value=DAYS + 2),
    length_hours=st.integers(min_value=1, max_value=24 * (DAYS + 3)),
)
def test_released_iff_within_the_range(
    hub: HubEnv, subject: str, start: int, length_hours: int
) -> None:
    data_from = day(start) + timedelta(hours=start % 5)
    data_until = data_from + timedelta(hours=length_hours)
    grant(hub, subject, data_from, data_until)
    with hub.session() as session:
        times = dict(
            session.execute(
                select(Record.record_key, Record.occurred_at).where(
                    Record.subject_id == subject, Record.record_key.like("DR-%")
                )
            ).all()
        )
    expected = {k for k, t in times.items() if t is not None and data_from <= t < data_until}
    assert released_of(pull(hub, "dr-property", utcnow())) == expected


_MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(_MOMENTS, _MOMENTS, st.one_of(st.none(), _MOMENTS))
def test_the_range_covers_exactly_its_half_open_interval(
    start: datetime, end: datetime, occurred_at: datetime | None
) -> None:
    covered = DataRange.of(start, end, None)
    assert covered is not None
    reason = covered.withheld_reason(occurred_at)
    if occurred_at is None:
        assert reason == DATA_TIME_UNKNOWN
    else:
        assert (reason is None) == (start <= occurred_at < end)
        assert reason in (None, OUTSIDE_DATA_RANGE)
    assert DataRange.of(None, end, end) is None
    assert DataRange.of(start, None, end) == DataRange(start, end)


def test_pages_without_a_ranged_consent_read_no_data_time(hub: HubEnv, subject: str) -> None:
    """A page with no consent that has a data range reads no ``occurred_at`` (no statement, no
    column); one with such a consent, one statement for its records' data times."""
    grant(hub, subject, None)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(hub.runtime.engine, "before_cursor_execute", seen)
    try:
        page = pull(hub, "dr-unranged", utcnow())
        assert released_of(page) == {key(d) for d in range(DAYS)}
        assert statements and not any("occurred_at" in s for s in statements)
        grant(hub, subject, day(0), day(2))
        statements.clear()
        assert released_of(pull(hub, "dr-ranged", utcnow())) == {key(0), key(1)}
        assert len([s for s in statements if "occurred_at" in s]) == 1
    finally:
        event.remove(hub.runtime.engine, "before_cursor_execute", seen)


def test_a_record_republished_after_its_page_was_read_has_no_data_time(
    hub: HubEnv, subject: str
) -> None:
    with hub.session() as session:
        record_id, version = session.execute(
            select(Record.id, Record.version).where(
                Record.dataset_id == DATASET, Record.record_key == key(3)
            )
        ).one()
        ranged = ConsentState(
            consent_id="con_x",
            status="active",
            categories=frozenset({"loan"}),
            expires_at=None,
            sensitive=False,
            cross_border=False,
            data_range=DataRange(day(0), day(30)),
        )
        row = (record_id, key(3), version, subject, {}, "CN")
        assert _data_times(session, [row], {subject: ranged}) == {record_id: day(3)}
        stale = (record_id, key(3), version + 1, subject, {}, "CN")
        assert _data_times(session, [stale], {subject: ranged}) == {record_id: None}
        assert _data_times(session, [row], {subject: ConsentState.missing()}) == {}
