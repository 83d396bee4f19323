"""Sign-in by e-mail: providers name subjects by e-mail (a blind index, like the others), the
demo publishes consumers' addresses, and the portal's one field takes a mobile number or an
e-mail address under the same rules (same answer for an unknown identifier, limits, errors)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from consent.models import ConsentStatus
from hub.portal.notifier import SmtpNotifier
from hub.portal.settings import PortalSettings
from hub.records.models import SubjectIdentifier
from tests.portal.helpers import (
    CODE,
    ask_code,
    consumer_with,
    csrf_of,
    messages_to,
    new_client,
    outbox,
    portal_of,
    sign_in,
)
from tests.portal.smtp import Collect
from tests.support.hub import HubEnv

DATASET = "dealer-huadong.loan-applications"


def _publish(hub: HubEnv, key: str, subject: dict[str, str]) -> Any:
    fields = {
        "applicant_name": "测试 邮箱",
        "birth_date": "1990-01-01",
        "id_number": "11010519491231002X",
        "mobile": "+8613800138000",
        "address": "北京市东城区测试路1号",
        "monthly_income_cny": 18000,
        "vin": "1M8GDM9AXKP042788",
        "amount_cny": 120000,
        "term_months": 36,
        "down_payment_cny": 30000,
        "applied_on": "2026-11-20",
        "lender": "lender-jinqiao",
    }
    return hub.client.post(
        f"/v1/datasets/{DATASET}/records",
        json={"records": [{"record_key": key, "version": 1, "subject": subject, "fields": fields}]},
        headers=hub.auth("dealer-huadong", "records:publish"),
    )


def _subject_by(hub: HubEnv, kind: str, value: str) -> str | None:
    digest = hub.runtime.protector.blind_index(kind, value)
    with hub.session() as session:
        return session.scalar(
            select(SubjectIdentifier.subject_id).where(
                SubjectIdentifier.kind == kind, SubjectIdentifier.digest == digest
            )
        )


def test_demo_consumer_signs_in_by_email(hub: HubEnv) -> None:
    consumer = consumer_with(hub, ConsentStatus.ACTIVE)
    assert consumer.email and _subject_by(hub, "email", consumer.email) == consumer.subject_id
    client = new_client(hub)
    # Case and surrounding spaces do not matter: the address is normalised.
    sign_in(hub, client, f"  {consumer.email.upper()} ")
    home = client.get("/portal/home")
    assert "您的授权" in home.text
    message = messages_to(hub, consumer.email)[-1]
    assert message["to"] == consumer.email.lower()
    assert consumer.mobile not in message["to"]


def test_unknown_email_gets_the_same_answer_as_unknown_mobile_and_no_message(
    hub: HubEnv,
) -> None:
    known = consumer_with(hub, ConsentStatus.ACTIVE, skip=1)
    before = set(outbox(hub).glob("*.json"))
    pages = []
    for identifier in ("nobody.here@example.cn", "+8613000000002", known.email):
        client = new_client(hub)
        ask_code(client, identifier)
        page = client.get("/portal/sign-in/code")
        pages.append((page.status_code, page.text.replace(csrf_of(page.text), "")))
    assert pages[0] == pages[1] == pages[2]
    sent = set(outbox(hub).glob("*.json")) - before
    assert len(sent) == 1  # only to the known consumer's address
    assert messages_to(hub, "nobody.here@example.cn") == []


def test_a_code_for_an_unknown_email_never_signs_in(hub: HubEnv) -> None:
    client = new_client(hub)
    token = ask_code(client, "nobody.else@example.cn")
    response = client.post("/portal/sign-in/code", data={"csrf_token": token, "code": "123456"})
    assert response.status_code == 400
    assert client.get("/portal/home").status_code == 303


@pytest.mark.parametrize(
    "identifier", ["a@@example.cn", "@example.cn", "wang@", "wang wei@example.cn", "wang@example"]
)
def test_malformed_email_is_an_html_422(hub: HubEnv, identifier: str) -> None:
    client = new_client(hub)
    page = client.get("/portal/sign-in")
    before = set(outbox(hub).glob("*.json"))
    response = client.post(
        "/portal/sign-in", data={"csrf_token": csrf_of(page.text), "identifier": identifier}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "这既不是手机号码，也不是电子邮箱地址。" in response.text
    assert set(outbox(hub).glob("*.json")) == before


def test_too_long_identifier_is_an_html_422(hub: HubEnv) -> None:
    client = new_client(hub)
    page = client.get("/portal/sign-in")
    response = client.post(
        "/portal/sign-in",
        data={"csrf_token": csrf_of(page.text), "identifier": "a" * 250 + "@example.cn"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "手机号码或电子邮箱" in response.text  # the field, in plain words


def test_codes_per_email_are_rate_limited(hub: HubEnv) -> None:
    consumer = consumer_with(hub, ConsentStatus.ACTIVE, skip=2)
    limit = portal_of(hub).settings.codes_per_identifier
    statuses = []
    for n in range(limit + 1):
        client = new_client(hub)
        page = client.get("/portal/sign-in")
        # Differently written, the same address: one identifier.
        written = consumer.email.upper() if n % 2 else consumer.email
        response = client.post(
            "/portal/sign-in", data={"csrf_token": csrf_of(page.text), "identifier": written}
        )
        statuses.append(response.status_code)
    assert statuses == [303] * limit + [429]


def test_published_email_finds_the_subject_and_signs_in(hub: HubEnv) -> None:
    response = _publish(
        hub, "T-MAIL-1", {"mobile": "+8613700137001", "email": "Li.Na+Car@Example.CN"}
    )
    assert response.status_code == 200, response.text
    subject_id = _subject_by(hub, "mobile", "+8613700137001")
    assert subject_id is not None
    assert _subject_by(hub, "email", "li.na+car@example.cn") == subject_id
    # Stored as a blind index only.
    with hub.session() as session:
        digests = session.scalars(
            select(SubjectIdentifier.digest).where(SubjectIdentifier.subject_id == subject_id)
        ).all()
    assert not any("li.na" in d.lower() for d in digests)

    # A later record naming the subject by e-mail alone resolves to the same subject.
    again = _publish(hub, "T-MAIL-2", {"email": "li.na+car@example.cn"})
    assert again.status_code == 200, again.text
    assert again.json()["created"] == 1

    client = new_client(hub)
    sign_in(hub, client, "li.na+car@example.cn")
    mydata = client.get("/portal/my-data.json")
    assert mydata.status_code == 200
    assert "T-MAIL-1" in mydata.text and "T-MAIL-2" in mydata.text


@pytest.mark.parametrize("email", ["no-at-sign.example.cn", "a@b@example.cn", "x@example"])
def test_publish_refuses_a_malformed_email(hub: HubEnv, email: str) -> None:
    response = _publish(hub, "T-MAIL-BAD", {"email": email})
    assert response.status_code == 422, response.text
    assert "records[0].subject.email" in response.text


def test_publish_openapi_describes_the_email(hub: HubEnv) -> None:
    schema = hub.client.get("/openapi.json").json()
    ref = schema["components"]["schemas"]["SubjectRef"]["properties"]["email"]
    assert "e-mail" in str(ref).lower()


def test_email_code_is_sent_by_smtp_to_the_address(
    hub: HubEnv, smtp_server: tuple[Collect, int]
) -> None:
    handler, port = smtp_server
    consumer = consumer_with(hub, ConsentStatus.ACTIVE, skip=3)
    sign_in_service = portal_of(hub).sign_in
    outboxed = sign_in_service.notifier
    sign_in_service.notifier = SmtpNotifier(
        PortalSettings(
            notifier="smtp", smtp_port=port, smtp_sms_gateway="sms.example", smtp_timeout_seconds=5
        )
    )
    try:
        client = new_client(hub)
        ask_code(client, consumer.email)
    finally:
        sign_in_service.notifier = outboxed
    assert len(handler.received) == 1
    email = handler.received[0]
    assert email["To"] == consumer.email.lower()  # type: ignore[index]
    assert "sms.example" not in str(email["To"])  # type: ignore[index]
    body = email.get_payload(decode=True).decode("utf-8")  # type: ignore[attr-defined]
    assert CODE.search(body), body
