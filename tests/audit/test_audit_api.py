"""The regulator's audit API over HTTP: events by subject, signed heads, proofs, exports,
cosignatures; every bad input a 4xx problem."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.audit import (
    WitnessSigner,
    log_size,
    parse_verifier_key,
    verify_checkpoint,
    verify_cosignature,
    verify_export,
)
from hub.audit.merkle import verify_consistency, verify_inclusion
from tests.support.hub import HubEnv

REGULATOR = "regulator-fsr"
LENDER = "lender-jinqiao"
DATASET = "dealer-huadong.loan-applications"


def reg(hub: HubEnv) -> dict[str, str]:
    return hub.auth(REGULATOR)


def pull(hub: HubEnv, ref: str = LENDER, limit: int = 20) -> str:
    """One page pulled by ``ref``; returns the request id."""
    response = hub.client.get(
        f"/v1/agreements/{hub.agreement(ref, DATASET)}/records",
        params={"limit": limit},
        headers=hub.auth(ref),
    )
    assert response.status_code == 200, response.text
    return response.headers["x-request-id"]


def events(hub: HubEnv, **params: Any) -> list[dict[str, Any]]:
    response = hub.client.get(
        "/v1/audit/events", params={"limit": 1000, **params}, headers=reg(hub)
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def tree_head(hub: HubEnv) -> dict[str, Any]:
    response = hub.client.get("/v1/audit/tree-head", headers=reg(hub))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["type"].startswith("https://tollhouse.dev/problems/")
    return body


AUDIT_GETS = [
    "/v1/audit/events",
    "/v1/audit/tree-head",
    "/v1/audit/checkpoint",
    "/v1/audit/proofs/inclusion?index=0&size=1",
    "/v1/audit/proofs/consistency?first=0&second=1",
    "/v1/audit/export",
]


@pytest.mark.parametrize("path", AUDIT_GETS)
def test_audit_routes_need_the_audit_read_scope(hub: HubEnv, path: str) -> None:
    assert_problem(hub.client.get(path), 401)
    assert_problem(hub.client.get(path, headers=hub.auth(LENDER)), 403)


def test_cosignatures_need_the_audit_read_scope(hub: HubEnv) -> None:
    body = {"checkpoint": "x", "cosignature": "y", "witness_key": "z"}
    assert_problem(hub.client.post("/v1/audit/cosignatures", json=body), 401)
    response = hub.client.post("/v1/audit/cosignatures", json=body, headers=hub.auth(LENDER))
    assert_problem(response, 403)


def test_a_denied_pull_appears_in_the_log(hub: HubEnv) -> None:
    agreement_id = hub.agreement(LENDER, DATASET)
    refused = hub.client.get(
        f"/v1/agreements/{agreement_id}/records", headers=hub.auth("lender-pearl")
    )
    assert refused.status_code == 404
    request_id = refused.headers["x-request-id"]
    denied = events(hub, outcome="denied", kind="release.denied")
    ours = [e for e in denied if e["request_id"] == request_id]
    assert len(ours) == 1
    event = ours[0]
    assert event["partner_id"] == hub.partner("lender-pearl")["partner_id"]
    assert event["agreement_id"] == agreement_id and event["reasons"]
    # ... and it is a leaf of the signed log: its inclusion proof verifies against the head.
    head = tree_head(hub)
    proof = hub.client.get(
        "/v1/audit/proofs/inclusion",
        params={"index": event["index"], "size": head["size"]},
        headers=reg(hub),
    ).json()
    canonical = rfc8785.dumps(event)
    leaf = hashlib.sha256(b"\x00" + canonical).digest()
    assert base64.b64decode(proof["leaf_hash"]) == leaf
    path = [base64.b64decode(p) for p in proof["proof"]]
    root = base64.b64decode(head["root_hash"])
    assert verify_inclusion(leaf, event["index"], head["size"], path, root)


def test_events_are_found_by_subject_pseudonym(hub: HubEnv) -> None:
    pull(hub, limit=30)
    everything = events(hub, kind="release")
    named: dict[str, list[int]] = {}
    for event in everything:
        for subject in {s for d in event.get("decisions", []) for s in d.get("subjects", [])}:
            named.setdefault(subject, []).append(event["index"])
    assert named, "the pulls named no subjects"
    for subject, indices in list(named.items())[:5]:
        assert subject.startswith("psn_")
        found = events(hub, subject=subject, kind="release")
        assert [e["index"] for e in found] == indices
    assert events(hub, subject="psn_nobody") == []
    too_long = hub.client.get("/v1/audit/events?subject=" + "x" * 65, headers=reg(hub))
    assert_problem(too_long, 422)


def test_tree_head_is_signed_on_demand_and_verifies(hub: HubEnv) -> None:
    first = tree_head(hub)
    name, public_key = parse_verifier_key(first["verifier_key"])
    assert name == first["origin"] == "testserver/audit"
    head = verify_checkpoint(first["checkpoint"], public_key, name)
    assert head.size == first["size"]
    assert base64.b64encode(head.root_hash).decode() == first["root_hash"]
    with hub.session() as session:
        assert first["size"] == log_size(session)
    again = tree_head(hub)
    assert again == first  # nothing appended: the same head, not a new signature
    pull(hub)
    grown = tree_head(hub)
    with hub.session() as session:
        assert grown["size"] == log_size(session) > first["size"]
    note = hub.client.get("/v1/audit/checkpoint", headers=reg(hub))
    assert note.status_code == 200 and note.headers["content-type"].startswith("text/plain")
    assert note.text == grown["checkpoint"]
    proof = hub.client.get(
        "/v1/audit/proofs/consistency",
        params={"first": first["size"], "second": grown["size"]},
        headers=reg(hub),
    ).json()
    assert verify_consistency(
        first["size"],
        grown["size"],
        base64.b64decode(first["root_hash"]),
        base64.b64decode(grown["root_hash"]),
        [base64.b64decode(p) for p in proof["proof"]],
    )
    older = hub.client.get("/v1/audit/checkpoint", params={"size": first["size"]}, headers=reg(hub))
    assert older.text == first["checkpoint"]
    unsigned = hub.client.get(
        "/v1/audit/checkpoint", params={"size": grown["size"] + 5}, headers=reg(hub)
    )
    assert_problem(unsigned, 404)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/audit/proofs/inclusion?index=5&size=5", 400),
        ("/v1/audit/proofs/inclusion?index=0&size=100000000", 400),
        ("/v1/audit/proofs/inclusion?index=-1&size=5", 422),
        ("/v1/audit/proofs/inclusion?index=0", 422),
        ("/v1/audit/proofs/inclusion?index=x&size=5", 422),
        ("/v1/audit/proofs/inclusion?index=0&size=99999999999999999999999", 422),
        ("/v1/audit/proofs/consistency?first=3&second=2", 400),
        ("/v1/audit/proofs/consistency?first=1&second=100000000", 400),
        ("/v1/audit/proofs/consistency?first=1", 422),
        ("/v1/audit/checkpoint?size=-1", 422),
        ("/v1/audit/checkpoint?size=100000000", 404),
        ("/v1/audit/export?start=5&end=2", 400),
        ("/v1/audit/export?end=100000000", 400),
        ("/v1/audit/export?start=-1", 422),
        ("/v1/audit/events?after_index=99999999999999999999", 422),
    ],
)
def test_bad_audit_requests_are_4xx_problems(hub: HubEnv, path: str, status: int) -> None:
    assert_problem(hub.client.get(path, headers=reg(hub)), status)


def test_export_streams_a_bundle_that_verifies(hub: HubEnv, tmp_path: Path) -> None:
    for _ in range(4):
        pull(hub)
    head = tree_head(hub)
    response = hub.client.get("/v1/audit/export", params={"start": 2}, headers=reg(hub))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/jsonl")
    assert "attachment" in response.headers["content-disposition"]
    out = tmp_path / "audit.jsonl"
    out.write_bytes(response.content)
    report = verify_export(out, head["verifier_key"])
    assert report.ok, report.problems
    assert (report.start, report.end) == (2, head["size"])
    assert report.events_checked == head["size"] - 2
    part = hub.client.get("/v1/audit/export?start=1&end=3", headers=reg(hub))
    out.write_bytes(part.content)
    assert verify_export(out, head["verifier_key"]).events_checked == 2


def test_cosignatures_are_checked_stored_and_served(hub: HubEnv) -> None:
    pull(hub)
    note = hub.client.get("/v1/audit/checkpoint", headers=reg(hub)).text
    head = verify_checkpoint(note, parse_verifier_key(tree_head(hub)["verifier_key"])[1])
    witness = WitnessSigner(Ed25519PrivateKey.generate(), "witness.test/w1")
    line = witness.cosign(head, datetime.now(UTC))
    body = {"checkpoint": note, "cosignature": line, "witness_key": witness.verifier_key}

    created = hub.client.post("/v1/audit/cosignatures", json=body, headers=reg(hub))
    assert created.status_code == 201, created.text
    assert created.json()["size"] == head.size and created.json()["created"] is True
    again = hub.client.post("/v1/audit/cosignatures", json=body, headers=reg(hub))
    assert again.status_code == 200 and again.json()["created"] is False

    served = hub.client.get(
        "/v1/audit/checkpoint", params={"size": head.size}, headers=reg(hub)
    ).text
    assert served == note + line + "\n"
    assert verify_checkpoint(served, head_key(hub)).size == head.size
    assert verify_cosignature(line, head, witness.name, witness.public_key)
    current = tree_head(hub)
    if current["size"] == head.size:
        assert current["cosignatures"][0]["witness"] == "witness.test/w1"

    # Another key under the same witness name is refused: names are bound to their first key.
    impostor = WitnessSigner(Ed25519PrivateKey.generate(), "witness.test/w1")
    forged = {
        "checkpoint": note,
        "cosignature": impostor.cosign(head, datetime.now(UTC)),
        "witness_key": impostor.verifier_key,
    }
    assert_problem(hub.client.post("/v1/audit/cosignatures", json=forged, headers=reg(hub)), 409)


def head_key(hub: HubEnv) -> Any:
    return parse_verifier_key(tree_head(hub)["verifier_key"])[1]


def _bad_cosignatures(hub: HubEnv) -> list[tuple[str, dict[str, str], int]]:
    note = hub.client.get("/v1/audit/checkpoint", headers=reg(hub)).text
    head = verify_checkpoint(note, head_key(hub))
    witness = WitnessSigner(Ed25519PrivateKey.generate(), "witness.test/bad")
    other = WitnessSigner(Ed25519PrivateKey.generate(), "witness.test/other")
    line = witness.cosign(head, datetime.now(UTC))
    good = {"checkpoint": note, "cosignature": line, "witness_key": witness.verifier_key}
    foreign_log = WitnessSigner(Ed25519PrivateKey.generate(), head.origin)
    return [
        ("witness key malformed", good | {"witness_key": "nonsense"}, 400),
        ("log key as witness key", good | {"witness_key": _log_vkey(hub)}, 400),
        ("witness posing as the log", good | {"witness_key": foreign_log.verifier_key}, 400),
        ("line of another key", good | {"witness_key": other.verifier_key}, 400),
        ("garbage line", good | {"cosignature": "\u2014 witness.test/bad !!!"}, 400),
        ("checkpoint edited", good | {"checkpoint": note.replace("\n", "\n\n", 1)}, 400),
        ("not a checkpoint", good | {"checkpoint": "hello"}, 400),
        (
            "cosigns another head",
            good | {"cosignature": witness.cosign(_other_head(head), datetime.now(UTC))},
            400,
        ),
        ("missing field", {"checkpoint": note, "cosignature": line}, 422),
        ("oversized", good | {"cosignature": "x" * 600}, 422),
    ]


def _log_vkey(hub: HubEnv) -> str:
    vkey: str = tree_head(hub)["verifier_key"]
    return vkey


def _other_head(head: Any) -> Any:
    from dataclasses import replace

    return replace(head, root_hash=bytes(32))


def test_bad_cosignatures_are_4xx_problems(hub: HubEnv) -> None:
    for label, body, status in _bad_cosignatures(hub):
        response = hub.client.post("/v1/audit/cosignatures", json=body, headers=reg(hub))
        assert response.status_code == status, (label, response.text)
        assert_problem(response, status)
