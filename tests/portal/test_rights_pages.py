"""Rights requests in the portal: a correction goes to the record's provider, who resolves or
rejects it through the partner API while the consumer follows its status; erasure after a
confirmation step; form errors as HTML pages in the consumer's language; the ledger in plain
words."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from consent.models import ConsentStatus
from hub.audit.models import AuditEvent
from hub.crypto import SubjectKey
from hub.rights.models import RightsRequest
from tests.portal.helpers import (
    DATASET,
    LENDER,
    DemoConsumer,
    consumer_with,
    csrf_of,
    demo_consumers,
    new_client,
    portal_of,
    released_to,
    sign_in,
)
from tests.support.hub import HubEnv


def _record_of(env: HubEnv, consumer: DemoConsumer) -> tuple[str, str, str]:
    """(dataset id, record key, a field) of one of this consumer's own records."""
    with env.session() as session:
        records = portal_of(env).mydata.records(session, subject_id=consumer.subject_id)
    record = next(r for r in records if r.dataset_id == DATASET)
    return record.dataset_id, record.record_key, "monthly_income_cny"


def _provider(dataset_id: str) -> str:
    return dataset_id.split(".")[0]


def _correct(
    client: Any, token: str, dataset_id: str, record_key: str, field: str, value: str
) -> Any:
    return client.post(
        "/portal/rights/correction",
        data={
            "csrf_token": token,
            "dataset": dataset_id,
            "record": record_key,
            "field": field,
            "value": value,
            "note": "My payslip says otherwise.",
        },
    )


def _with_records(env: HubEnv, skip: int) -> DemoConsumer:
    found = 0
    for consumer in demo_consumers(env):
        with env.session() as session:
            records = portal_of(env).mydata.records(session, subject_id=consumer.subject_id)
        if any(r.dataset_id == DATASET for r in records):
            if found == skip:
                return consumer
            found += 1
    raise LookupError("no consumer with a loan application")


def test_correction_is_routed_to_the_provider_and_its_answer_shown(hub: HubEnv) -> None:
    consumer = _with_records(hub, 0)
    client = new_client(hub)
    token = sign_in(hub, client, consumer.mobile)
    dataset_id, record_key, field = _record_of(hub, consumer)

    page = client.get(f"/portal/rights/correction?dataset={dataset_id}&record={record_key}")
    assert page.status_code == 200
    assert "月收入（元）" in page.text  # fields in plain words

    response = _correct(client, token, dataset_id, record_key, field, "23000")
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/portal/rights?notice=correction-requested"
    rights = client.get("/portal/rights?notice=correction-requested")
    assert "已收到" in rights.text and "23000" in rights.text

    # The provider sees it, with the proposed value; another partner does not.
    provider = hub.auth(_provider(dataset_id))
    listed = hub.client.get("/v1/rights-requests", headers=provider)
    assert listed.status_code == 200, listed.text
    item = next(i for i in listed.json()["items"] if i["record_key"] == record_key)
    assert item["field"] == field and item["proposed_value"] == "23000"
    assert item["consumer_note"] == "My payslip says otherwise."
    assert [h["status"] for h in item["history"]] == ["requested"]
    other = hub.auth("dealer-nanfang")
    assert all(
        i["id"] != item["id"]
        for i in hub.client.get("/v1/rights-requests", headers=other).json()["items"]
    )
    assert hub.client.get(f"/v1/rights-requests/{item['id']}", headers=other).status_code == 404
    stolen = hub.client.post(f"/v1/rights-requests/{item['id']}/resolution", headers=other, json={})
    assert stolen.status_code == 404

    # in progress, then rejected with a reason the consumer reads.
    ack = hub.client.post(f"/v1/rights-requests/{item['id']}/acknowledgement", headers=provider)
    assert ack.status_code == 200 and ack.json()["status"] == "in_progress"
    assert "处理中" in client.get("/portal/rights").text
    no_reason = hub.client.post(
        f"/v1/rights-requests/{item['id']}/rejection", headers=provider, json={"reason": " "}
    )
    assert no_reason.status_code == 422
    assert no_reason.headers["content-type"].startswith("application/problem+json")
    rejected = hub.client.post(
        f"/v1/rights-requests/{item['id']}/rejection",
        headers=provider,
        json={"reason": "The income on file matches your signed application."},
    )
    assert rejected.status_code == 200, rejected.text
    assert [h["status"] for h in rejected.json()["history"]] == [
        "requested",
        "in_progress",
        "rejected",
    ]
    again = hub.client.post(f"/v1/rights-requests/{item['id']}/resolution", headers=provider)
    assert again.status_code == 409
    page = client.get("/portal/rights")
    assert "已驳回" in page.text
    assert "The income on file matches your signed application." in page.text

    # A new request for the same field, resolved at once.
    assert _correct(client, token, dataset_id, record_key, field, "24000").status_code == 303
    duplicate = _correct(client, token, dataset_id, record_key, field, "25000")
    assert duplicate.status_code == 409
    assert "text/html" in duplicate.headers["content-type"]
    assert "正在处理中" in duplicate.text
    open_items = hub.client.get("/v1/rights-requests?status=requested", headers=provider)
    second = next(i for i in open_items.json()["items"] if i["proposed_value"] == "24000")
    done = hub.client.post(
        f"/v1/rights-requests/{second['id']}/resolution",
        headers=provider,
        json={"reason": "Corrected."},
    )
    assert done.status_code == 200 and done.json()["status"] == "completed"
    assert "已完成" in client.get("/portal/rights").text
    with hub.session() as session:
        kinds = session.scalars(
            select(AuditEvent.kind).where(AuditEvent.kind == "rights.changed")
        ).all()
    assert len(kinds) >= 5


@pytest.mark.parametrize(
    ("form", "status", "text"),
    [
        ({"field": "monthly_income_cny", "value": "  "}, 422, "请填写正确的内容"),
        ({"field": "no_such_field", "value": "1"}, 422, "请选择这条记录中的一项信息"),
        ({"field": "monthly_income_cny", "value": "x" * 501}, 422, "最多 500 个字符"),
    ],
)
def test_bad_correction_shows_the_form_again(
    hub: HubEnv, form: dict[str, str], status: int, text: str
) -> None:
    consumer = _with_records(hub, 1)
    client = new_client(hub)
    token = sign_in(hub, client, consumer.mobile)
    dataset_id, record_key, _field = _record_of(hub, consumer)
    response = client.post(
        "/portal/rights/correction",
        data={"csrf_token": token, "dataset": dataset_id, "record": record_key, **form},
    )
    assert response.status_code == status
    assert "text/html" in response.headers["content-type"]
    assert text in response.text
    assert 'id="correction-error"' in response.text


def test_another_consumers_record_is_404_and_csrf_is_checked(hub: HubEnv) -> None:
    owner = _with_records(hub, 2)
    intruder = _with_records(hub, 3)
    dataset_id, record_key, field = _record_of(hub, owner)
    client = new_client(hub)
    token = sign_in(hub, client, intruder.mobile)
    page = client.get(f"/portal/rights/correction?dataset={dataset_id}&record={record_key}")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert _correct(client, token, dataset_id, record_key, field, "1").status_code == 404
    assert _correct(client, "wrong", dataset_id, record_key, field, "1").status_code == 403
    with hub.session() as session:
        assert (
            session.scalar(
                select(RightsRequest.id).where(RightsRequest.subject_id == owner.subject_id)
            )
            is None
        )


def test_form_errors_are_html_pages_in_the_consumers_language(hub: HubEnv) -> None:
    consumer = consumer_with(hub, ConsentStatus.ACTIVE, skip=4)
    client = new_client(hub)
    token = sign_in(hub, client, consumer.mobile)
    bad = client.post(
        "/portal/requests/cns_x/grant", data={"csrf_token": token, "duration_days": "soon"}
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("text/html")
    assert "您填写的部分内容无法被接受" in bad.text and "天数" in bad.text
    client.post("/portal/language", data={"csrf_token": token, "locale": "en"})
    bad = client.post(
        "/portal/requests/cns_x/grant", data={"csrf_token": token, "duration_days": "0"}
    )
    assert bad.status_code == 422
    assert "Some of the values you entered could not be accepted." in bad.text
    assert "Number of days" in bad.text
    ledger = client.get("/portal/ledger?outcome=maybe")
    assert ledger.status_code == 422 and "text/html" in ledger.headers["content-type"]
    # An unknown page runs no portal code: the default language.
    missing = client.get("/portal/no-such-page")
    assert missing.status_code == 404 and "未找到相应内容" in missing.text
    # API clients keep problem+json.
    api = hub.client.post("/v1/consent-requests", headers=hub.auth("insurer-anxin"), json={})
    assert api.status_code == 422
    assert api.headers["content-type"].startswith("application/problem+json")
    assert (
        hub.client.get("/v1/nothing-here")
        .headers["content-type"]
        .startswith("application/problem+json")
    )


def test_the_ledger_names_fields_in_plain_words(hub: HubEnv) -> None:
    agreement = hub.agreement(LENDER, DATASET)
    purpose = next(a["purpose"] for a in hub.partner(LENDER)["agreements"] if a["id"] == agreement)
    hub.pull_all(LENDER, agreement)
    consumer, _consent = released_to(hub, LENDER, DATASET, purpose, skip=2)
    client = new_client(hub)
    token = sign_in(hub, client, consumer.mobile)
    page = client.get("/portal/ledger?outcome=allowed")
    assert "月收入（元）" in page.text and "monthly_income_cny" not in page.text
    client.post("/portal/language", data={"csrf_token": token, "locale": "en"})
    page = client.get("/portal/ledger?outcome=allowed")
    assert "monthly income (CNY)" in page.text and "monthly_income_cny" not in page.text


def test_erasure_needs_confirmation_then_shreds_at_once(hub: HubEnv) -> None:
    consumer = _with_records(hub, 4)
    client = new_client(hub)
    token = sign_in(hub, client, consumer.mobile)
    dataset_id, record_key, field = _record_of(hub, consumer)
    assert _correct(client, token, dataset_id, record_key, field, "1").status_code == 303

    page = client.get("/portal/rights/erasure")
    assert page.status_code == 200 and "此操作无法撤销" in page.text
    token = csrf_of(page.text)
    unconfirmed = client.post(
        "/portal/rights/erasure", data={"csrf_token": token, "identifier": consumer.mobile}
    )
    assert unconfirmed.status_code == 422 and "请勾选确认框" in unconfirmed.text
    other = _with_records(hub, 5)
    wrong = client.post(
        "/portal/rights/erasure",
        data={"csrf_token": token, "identifier": other.mobile, "confirm": "true"},
    )
    assert wrong.status_code == 422 and "这不是您的手机号码或电子邮箱" in wrong.text
    no_csrf = client.post(
        "/portal/rights/erasure", data={"identifier": consumer.mobile, "confirm": "true"}
    )
    assert no_csrf.status_code == 403
    with hub.session() as session:
        assert session.get(SubjectKey, other.subject_id).shredded_at is None  # type: ignore[union-attr]
        assert session.get(SubjectKey, consumer.subject_id).shredded_at is None  # type: ignore[union-attr]

    with hub.session() as session:
        # Live: active or paused and not past their end (those are the expiry sweep's).
        live = [
            item.consent.id
            for item in hub.runtime.consents.overview(session, subject_id=consumer.subject_id)
            if item.status in (ConsentStatus.ACTIVE, ConsentStatus.PAUSED)
        ]
    assert live, "the demo gave this consumer consents"

    done = client.post(
        "/portal/rights/erasure",
        data={"csrf_token": token, "identifier": consumer.mobile, "confirm": "true"},
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/portal/rights?notice=erased"
    rights = client.get(done.headers["location"])
    assert "您的数据已被删除" in rights.text and "已完成" in rights.text
    assert "Tollhouse 保存的关于您的全部数据" in rights.text
    with hub.session() as session:
        key = session.get(SubjectKey, consumer.subject_id)
        assert key is not None and key.shredded_at is not None
        assert (
            session.scalar(select(AuditEvent.index).where(AuditEvent.kind == "subject.erased"))
            is not None
        )
        statuses = {
            r.kind: r.status
            for r in session.scalars(
                select(RightsRequest).where(RightsRequest.subject_id == consumer.subject_id)
            )
        }
    # The open correction was closed by the hub; the erasure is complete.
    assert statuses == {"correction": "rejected", "erasure": "completed"}
    # Their consents ended in the same step, and the consent list says why.
    with hub.session() as session:
        ended = {
            c.id: c.status
            for c in hub.runtime.consents.consents_of_subject(
                session, subject_id=consumer.subject_id
            )
            if c.id in live
        }
    assert set(ended.values()) == {ConsentStatus.REVOKED}
    home = client.get("/portal/home")
    assert "目前没有机构可以使用您的数据" in home.text
    for consent_id in live:
        item = home.text.split(f'id="consent-{consent_id}"', 1)[1].split("</li>", 1)[0]
        assert "已被平台撤销" in item and "因您的数据被删除而终止" in item
    client.post("/portal/language", data={"csrf_token": token, "locale": "en"})
    home = client.get("/portal/home")
    assert "Ended when your data was erased" in home.text
    client.post("/portal/language", data={"csrf_token": token, "locale": "zh_CN"})
    my_data = client.get("/portal/my-data")
    assert my_data.status_code == 200 and "您的数据已被删除" in my_data.text
    assert client.get("/portal/my-data.json").json() == {"records": []}
    after = _correct(client, token, dataset_id, record_key, field, "2")
    assert after.status_code == 409 and "没有可更正的内容" in after.text
    provider = hub.auth(_provider(dataset_id))
    items = hub.client.get("/v1/rights-requests?status=rejected", headers=provider).json()
    mine = [i for i in items["items"] if i["record_key"] == record_key]
    assert mine and all(i["proposed_value"] is None for i in mine)


def _with_email(env: HubEnv, skip: int) -> DemoConsumer:
    return [c for c in demo_consumers(env) if c.email][skip]


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "not-an-address@",
        "@",
        "x" * 300,
        "zhang.wei.1987@163.com",  # nobody's
    ],
)
def test_erasure_refuses_what_is_not_the_consumers_identifier(hub: HubEnv, typed: str) -> None:
    consumer = _with_email(hub, 0)
    client = new_client(hub)
    sign_in(hub, client, consumer.email)
    token = csrf_of(client.get("/portal/rights/erasure").text)
    response = client.post(
        "/portal/rights/erasure",
        data={"csrf_token": token, "identifier": typed, "confirm": "true"},
    )
    assert response.status_code == 422
    assert "text/html" in response.headers["content-type"]
    with hub.session() as session:
        key = session.get(SubjectKey, consumer.subject_id)
        assert key is None or key.shredded_at is None


def test_signed_in_by_email_the_consumer_confirms_erasure_by_email(hub: HubEnv) -> None:
    consumer = _with_email(hub, 1)
    other = _with_email(hub, 2)
    client = new_client(hub)
    sign_in(hub, client, consumer.email)
    client.post(
        "/portal/language",
        data={"csrf_token": csrf_of(client.get("/portal/home").text), "locale": "en"},
    )
    page = client.get("/portal/rights/erasure")
    assert "type the mobile number or e-mail address you sign in with" in page.text
    assert 'name="identifier"' in page.text
    token = csrf_of(page.text)
    # Another consumer's address (known to the hub) is refused like any wrong one.
    wrong = client.post(
        "/portal/rights/erasure",
        data={"csrf_token": token, "identifier": other.email, "confirm": "true"},
    )
    assert wrong.status_code == 422
    assert "That is not your mobile number or e-mail address. Nothing was erased." in wrong.text
    with hub.session() as session:
        for who in (consumer, other):
            key = session.get(SubjectKey, who.subject_id)
            assert key is None or key.shredded_at is None
    # Their own address, as typed in another case and with spaces: the blind index decides.
    done = client.post(
        "/portal/rights/erasure",
        data={"csrf_token": token, "identifier": f" {consumer.email.upper()} ", "confirm": "true"},
    )
    assert done.status_code == 303, done.text
    with hub.session() as session:
        key = session.get(SubjectKey, consumer.subject_id)
        assert key is not None and key.shredded_at is not None
        other_key = session.get(SubjectKey, other.subject_id)
        assert other_key is None or other_key.shredded_at is None
        canonical = session.scalars(
            select(AuditEvent.canonical).where(AuditEvent.kind == "subject.erased")
        ).all()
    assert canonical and all(consumer.email.lower().encode() not in c.lower() for c in canonical)
