"""Secrets and personal data never reach logs or error bodies.

A workload of failures a hub sees every day (bad tokens, a token in the query string, wrong
client secrets, a secret in the form body, forged assertions, malformed and unknown identifiers
in publishes, consent requests and explanations, an unhandled error) runs with every log line
captured (standard library at DEBUG and the JSON lines on stderr) and every error body recorded.
Then both are searched for the demo partners' client secrets, every token issued, the key
material under ``keys/``, and anything shaped like a PRC ID number, a VIN, a mobile number or
an e-mail address.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from hub.observability import redact
from hub.records.models import Record
from tests.support.hub import HubEnv

ID_NUMBER = "11010519491231002X"
VIN = "1M8GDM9AXKP042788"
MOBILE = "13800138000"
EMAIL = "wang.wei.leak@qq.com"
PATTERNS = {
    "id-number": re.compile(r"(?<![\w])\d{17}[\dXx](?![\w])"),
    "vin": re.compile(r"(?<![\w])[A-HJ-NPR-Z0-9]{17}(?![\w])"),
    "mobile": re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)"),
    "email": re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
}
_PUBLIC_JWK_MEMBERS = {"x", "kid", "kty", "crv", "alg", "use"}


def key_material(keys_dir: Path) -> set[str]:
    """Every secret-looking string in the key files, in the encodings a leak would use."""
    found: set[str] = set()
    for path in keys_dir.iterdir():
        raw = path.read_bytes()
        if not raw:
            continue
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            text = ""
        public: set[str] = set()
        if path.suffix == ".jwk":
            public = {str(v) for k, v in json.loads(text).items() if k in _PUBLIC_JWK_MEMBERS}
        if text:
            found |= {t for t in re.findall(r"[A-Za-z0-9+/_-]{24,}", text) if t not in public}
        else:
            found |= {raw.hex(), base64.b64encode(raw).decode().rstrip("=")}
            found.add(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    return found


@pytest.fixture
def error_bodies(hub: HubEnv) -> Iterator[list[str]]:
    bodies: list[str] = []

    def record(response: httpx.Response) -> None:
        if response.status_code >= 400:
            response.read()
            bodies.append(response.text)

    hooks = hub.client.event_hooks["response"]
    hooks.append(record)
    yield bodies
    hooks.remove(record)


def _workload(hub: HubEnv) -> set[str]:
    """Run the failures; return the tokens the workload used (they must not leak either)."""
    client = hub.client
    lender = hub.auth("lender-jinqiao")
    token = lender["Authorization"].split()[1]
    consumer = hub.runtime.consumer_tokens.issue("sub_unknown")
    agreement = hub.partner("lender-jinqiao")["agreements"][0]["id"]
    dataset = "dealer-huadong.loan-applications"
    # tokens in the wrong places
    client.get(f"/v1/agreements/{agreement}/records", params={"access_token": token})
    client.get("/v1/agreements", headers={"Authorization": f"Bearer {token}x"})
    client.get("/v1/agreements", headers={"Authorization": f"Bearer {consumer}"})
    client.get("/v1/me/consents", headers=lender)
    # client secrets in the wrong places
    partner = hub.partner("lender-pearl")
    client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": partner["client_id"],
            "client_secret": partner["client_secret"],
        },
    )
    client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(partner["client_id"], partner["client_secret"] + "-wrong"),
    )
    client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": token,
        },
    )
    # identifiers in bad requests
    bad_fields = {"id_number": ID_NUMBER, "mobile": "+86" + MOBILE, "vin": VIN, "amount_cny": "x"}
    for subject in (
        {"id_number": ID_NUMBER[:-1] + "5"},
        {"vin": VIN.replace("A", "O")},
        {"mobile": MOBILE + "9"},
        {"id_number": ID_NUMBER, "mobile": MOBILE},
        {"email": EMAIL},
        {"email": EMAIL.replace("@", "@@")},
    ):
        client.post(
            f"/v1/datasets/{dataset}/records",
            json={"records": [{"record_key": "S-1", "subject": subject, "fields": bad_fields}]},
            headers=hub.auth("dealer-huadong"),
        )
        client.post(
            "/v1/consent-requests",
            json={
                "subject": subject,
                "purpose": "credit-assessment",
                "categories": ["identity"],
                "duration_days": 30,
                "reason": "loan",
            },
            headers=lender,
        )
        client.post(
            "/v1/decisions/explain",
            json={"agreement_id": agreement, "subject": subject},
            headers=hub.auth("regulator-fsr"),
        )
    with hub.session() as session:
        key = session.scalars(select(Record.record_key).limit(1)).one()
    client.get(f"/v1/agreements/{agreement}/records/{key}x", headers=lender)
    client.get(f"/v1/agreements/{agreement}/records", params={"cursor": "A" * 300}, headers=lender)
    return {token, consumer}


def test_no_secret_or_identifier_in_logs_or_error_bodies(
    hub: HubEnv,
    error_bodies: list[str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level("DEBUG")
    used_tokens = _workload(hub)
    assert len(error_bodies) >= 15
    logs = caplog.text + "\n" + capsys.readouterr().err
    # the test client's own request lines (httpx) name URLs the test chose; the hub's are checked
    logs = "\n".join(line for line in logs.splitlines() if "HTTP Request:" not in line)
    assert "tollhouse.http" in logs, "the hub's request log must have been captured"
    haystacks = {"logs": logs, "error bodies": "\n".join(error_bodies)}
    secrets = {p["client_secret"] for p in hub.credentials["partners"].values()}
    secrets |= used_tokens | set(hub._tokens.values()) | key_material(hub.settings.keys_dir)
    leaks = [
        f"{where}: a secret ({secret[:6]}...)"
        for where, text in haystacks.items()
        for secret in secrets
        if secret and secret in text
    ]
    leaks += [
        f"{where}: {kind} {match!r}"
        for where, text in haystacks.items()
        for kind, pattern in PATTERNS.items()
        for match in pattern.findall(text)
    ]
    assert not leaks, leaks


def test_a_careless_log_line_loses_its_identifiers() -> None:
    event = redact(
        None,
        "info",
        {
            "event": f"lookup of {EMAIL} / {MOBILE} / {VIN} failed",
            "email": EMAIL,
            "identifier": "+86" + MOBILE,
        },
    )
    assert event["email"] == event["identifier"] == "[redacted]"
    assert event["event"] == "lookup of [email] / [mobile] / [vin] failed"
