"""Explaining decisions, and reloading policies without ever failing open."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.settings import PROJECT_ROOT
from tests.conftest import make_settings
from tests.portal.helpers import demo_consumers
from tests.support.databases import TestDatabases
from tests.support.hub import HubEnv, build_env

LENDER = "lender-jinqiao"
DATASET = "dealer-huadong.loan-applications"


def _a_released_subject(hub: HubEnv) -> dict[str, str]:
    """Identifiers of a subject whose application the lender may read."""
    items = hub.pull_all(LENDER, hub.agreement(LENDER, DATASET))
    return {"mobile": items[0]["fields"]["mobile"]}


def test_regulator_sees_decision_obligations_and_reasons(hub: HubEnv) -> None:
    body = {"agreement_id": hub.agreement(LENDER, DATASET), "subject": _a_released_subject(hub)}
    response = hub.client.post(
        "/v1/decisions/explain", json=body, headers=hub.auth("regulator-fsr")
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    decision = result["explanation"]["decision"]
    assert decision["allow"] is True
    assert decision["obligations"]["address"] == "drop"
    reasons = result["explanation"]["field_reasons"]["address"]
    assert "minimisation.field_not_in_agreement" in reasons
    assert result["subject"].startswith("psn_")
    assert "11010" not in str(result["subject"])


def test_explain_names_the_subject_by_email(hub: HubEnv) -> None:
    protector = hub.runtime.protector
    mobile = _a_released_subject(hub)["mobile"]
    consumer = next(
        c
        for c in demo_consumers(hub)
        if protector.blind_index("mobile", c.mobile) == protector.blind_index("mobile", mobile)
    )
    agreement = hub.agreement(LENDER, DATASET)
    auth = hub.auth("regulator-fsr")
    by_mobile = hub.client.post(
        "/v1/decisions/explain",
        json={"agreement_id": agreement, "subject": {"mobile": mobile}},
        headers=auth,
    )
    by_email = hub.client.post(
        "/v1/decisions/explain",
        json={"agreement_id": agreement, "subject": {"email": consumer.email.upper()}},
        headers=auth,
    )
    assert by_email.status_code == 200, by_email.text
    assert by_email.json()["subject"] == by_mobile.json()["subject"]
    assert by_email.json()["explanation"]["decision"]["allow"] is True
    malformed = hub.client.post(
        "/v1/decisions/explain",
        json={"agreement_id": agreement, "subject": {"email": "li.wei.163.com"}},
        headers=auth,
    )
    assert malformed.status_code == 422, malformed.text
    assert "li.wei.163.com" not in malformed.text


@pytest.mark.parametrize(
    ("ref", "body", "status"),
    [
        (LENDER, None, 403),
        ("regulator-fsr", {"agreement_id": "agr_nope", "subject": {"id_number": "x"}}, 404),
        ("regulator-fsr", {"agreement_id": "a", "subject": {}}, 422),
        ("regulator-fsr", {"agreement_id": "a", "subject": {"name": "x"}}, 422),
    ],
)
def test_explain_refuses_what_it_should(
    hub: HubEnv, ref: str, body: dict[str, Any] | None, status: int
) -> None:
    payload = body or {"agreement_id": "agr_x", "subject": {"id_number": "x"}}
    response = hub.client.post("/v1/decisions/explain", json=payload, headers=hub.auth(ref))
    assert response.status_code == status


@pytest.fixture()
def hub_with_own_policies(
    seeded_template: tuple[Path, str, dict[str, Any]], databases: TestDatabases, tmp_path: Path
) -> Iterator[tuple[HubEnv, Path]]:
    policies = tmp_path / "policies"
    shutil.copytree(PROJECT_ROOT / "policies", policies)
    data_dir, template_url, credentials = seeded_template
    settings = make_settings(data_dir, databases.clone(template_url), policies_dir=policies)
    env = build_env(settings, credentials)
    with env.client:
        yield env, policies
    env.runtime.engine.dispose()


def test_a_broken_policy_never_replaces_a_working_one(
    hub_with_own_policies: tuple[HubEnv, Path],
) -> None:
    hub, policies = hub_with_own_policies
    admin = hub.auth("operator", "admin")
    agreement_id = hub.agreement(LENDER, DATASET)
    before = hub.pull_all(LENDER, agreement_id)
    unchanged = hub.client.post("/v1/policy/reload", headers=admin).json()
    assert unchanged["changed"] is False

    release = policies / "tollhouse" / "release" / "release.rego"
    permissive = release.read_text().replace("default allow := false", "default allow := true")
    release.write_text(permissive)
    refused = hub.client.post("/v1/policy/reload", headers=admin)
    assert refused.status_code == 422, refused.text
    assert hub.pull_all(LENDER, agreement_id) == before

    release.write_text("package tollhouse.release\n this is not rego")
    assert hub.client.post("/v1/policy/reload", headers=admin).status_code == 422
    assert hub.pull_all(LENDER, agreement_id) == before


def test_a_valid_change_is_swapped_in_and_shows_in_the_revision(
    hub_with_own_policies: tuple[HubEnv, Path],
) -> None:
    hub, policies = hub_with_own_policies
    admin = hub.auth("operator", "admin")
    note = policies / "tollhouse" / "release" / "release.rego"
    note.write_text(note.read_text() + "\n# reviewed 2026-11-25\n")
    response = hub.client.post("/v1/policy/reload", headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["changed"] is True and body["revision"] != body["previous_revision"]
    page = hub.client.get(
        f"/v1/agreements/{hub.agreement(LENDER, DATASET)}/records", headers=hub.auth(LENDER)
    ).json()
    assert page["decision_revision"] == body["revision"]


def test_reload_needs_the_admin_scope(hub: HubEnv) -> None:
    assert hub.client.post("/v1/policy/reload", headers=hub.auth(LENDER)).status_code == 403


def test_changed_policy_files_are_picked_up_by_the_watcher(
    seeded_template: tuple[Path, str, dict[str, Any]], databases: TestDatabases, tmp_path: Path
) -> None:
    import time

    policies = tmp_path / "watched"
    shutil.copytree(PROJECT_ROOT / "policies", policies)
    data_dir, template_url, credentials = seeded_template
    settings = make_settings(
        data_dir, databases.clone(template_url), policies_dir=policies, policy_watch_seconds=0.2
    )
    hub = build_env(settings, credentials)
    agreement_id = hub.agreement(LENDER, DATASET)
    with hub.client:

        def revision() -> str:
            page = hub.client.get(
                f"/v1/agreements/{agreement_id}/records", headers=hub.auth(LENDER)
            ).json()
            return str(page["decision_revision"])

        before = revision()
        broken = policies / "tollhouse" / "release" / "release.rego"
        original = broken.read_text()
        broken.write_text("package tollhouse.release\n not rego at all")
        time.sleep(1.0)
        assert revision() == before, "a broken policy must never be swapped in"
        broken.write_text(original + "\n# reviewed\n")
        deadline = time.monotonic() + 20
        while revision() == before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert revision() != before
    hub.runtime.engine.dispose()
