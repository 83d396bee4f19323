"""The consumer's rights: the access ledger (a partner's pull appears; after a withdrawal the
next pull is refused and appears as refused), download my data, receipts with verify."""

from __future__ import annotations

import csv
import io
import json

from consent.models import ConsentStatus
from tests.portal.helpers import (
    DATASET,
    LENDER,
    consumer_with,
    new_client,
    released_to,
    sign_in,
    statuses_of,
)
from tests.support.hub import HubEnv


def test_pull_appears_in_the_ledger_and_the_next_pull_after_withdrawal_is_refused(
    hub: HubEnv,
) -> None:
    agreement = hub.agreement(LENDER, DATASET)
    purpose = next(a["purpose"] for a in hub.partner(LENDER)["agreements"] if a["id"] == agreement)
    hub.pull_all(LENDER, agreement)
    consumer, consent_id = released_to(hub, LENDER, DATASET, purpose)
    client = new_client(hub)
    token = sign_in(hub, client, consumer.mobile)
    page = client.get("/portal/ledger?outcome=allowed")
    assert page.status_code == 200
    assert "Jinqiao" in page.text and "已提供" in page.text
    assert client.get("/portal/ledger?outcome=denied").text.count('class="card denied"') == 0

    response = client.post(f"/portal/consents/{consent_id}/withdraw", data={"csrf_token": token})
    assert response.status_code == 303
    hub.pull_all(LENDER, agreement)
    refused = client.get("/portal/ledger?outcome=denied")
    assert refused.text.count('class="card denied"') >= 1
    assert "已拒绝：未提供任何数据" in refused.text


def test_download_my_data_as_json_and_csv(hub: HubEnv) -> None:
    consumer = consumer_with(hub, ConsentStatus.ACTIVE, skip=3)
    client = new_client(hub)
    sign_in(hub, client, consumer.mobile)
    page = client.get("/portal/my-data")
    assert page.status_code == 200
    as_json = client.get("/portal/my-data.json")
    assert as_json.status_code == 200
    assert "attachment" in as_json.headers["content-disposition"]
    records = json.loads(as_json.content)["records"]
    assert records, "a demo consumer has records"
    # The consumer's own mobile is in their own data, decrypted.
    assert any(consumer.mobile in json.dumps(r["fields"]) for r in records)
    as_csv = client.get("/portal/my-data.csv")
    assert as_csv.status_code == 200
    rows = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert rows[0] == ["dataset", "record_key", "field", "value"]
    assert len(rows) - 1 == sum(len(r["fields"]) for r in records)
    # Signed out: nothing.
    assert new_client(hub).get("/portal/my-data.json").status_code == 303


def test_receipts_verify_and_download(hub: HubEnv) -> None:
    consumer = consumer_with(hub, ConsentStatus.ACTIVE, skip=4)
    consent_id = statuses_of(hub, consumer.subject_id, ConsentStatus.ACTIVE)[0]
    client = new_client(hub)
    token = sign_in(hub, client, consumer.mobile)
    page = client.get(f"/portal/consents/{consent_id}/receipts")
    assert page.status_code == 200
    with hub.session() as session:
        receipts = hub.runtime.consents.receipts(session, consent_id=consent_id)
        receipt_id, jws = receipts[0].id, receipts[0].jws
    assert receipt_id in page.text
    verified = client.post(
        f"/portal/consents/{consent_id}/receipts/{receipt_id}/verify",
        data={"csrf_token": token},
    )
    assert verified.status_code == 200 and "签名验证通过" in verified.text
    download = client.get(f"/portal/consents/{consent_id}/receipts/{receipt_id}.jwt")
    assert download.status_code == 200 and download.text == jws
    # Another consumer's receipts are not found.
    other = new_client(hub)
    sign_in(hub, other, consumer_with(hub, ConsentStatus.ACTIVE, skip=5).mobile)
    assert other.get(f"/portal/consents/{consent_id}/receipts").status_code == 404
    assert other.get(f"/portal/consents/{consent_id}/receipts/{receipt_id}.jwt").status_code == 404
