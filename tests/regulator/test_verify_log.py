"""'Verify the log': the current signed head against the one the session kept, with a
consistency proof checked outside the database; rewritten or forked logs are caught."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import delete, select, update

from hub.audit import log_size
from hub.audit.models import AuditEvent, SignedTreeHead, TreeBlock
from hub.regulator.sessions import RegulatorSession
from tests.regulator.helpers import COOKIE, new_client, pull, sign_in
from tests.support.hub import HubEnv

VERDICT = re.compile(r'class="card verdict (ok|bad)"')


def _verify(client: object, csrf: str) -> tuple[int, str]:
    response = client.post("/regulator/verify", data={"csrf_token": csrf})  # type: ignore[attr-defined]
    match = VERDICT.search(response.text)
    assert match, response.text
    return response.status_code, match.group(1)


def test_a_growing_log_checks_out(hub: HubEnv) -> None:
    client = new_client(hub)
    csrf = sign_in(hub, client)  # the head at sign-in is kept
    assert 'id="stored-head"' in client.get("/regulator/verify").text
    assert _verify(client, csrf) == (200, "ok")  # unchanged (or grown by the sign-in itself)
    pull(hub)
    pull(hub)
    status, verdict = _verify(client, csrf)
    assert (status, verdict) == (200, "ok")
    page = client.post("/regulator/verify", data={"csrf_token": csrf}).text
    assert 'id="previous-head"' in page and 'id="current-head"' in page


def test_a_rewritten_log_is_caught(fresh_hub: HubEnv) -> None:
    """The operator edits an old event and re-signs the log from scratch (dropping the heads
    signed so far): the new head cannot be proved consistent with the one the session kept."""
    env = fresh_hub
    pull(env)
    pull(env)
    client = new_client(env)
    csrf = sign_in(env, client)
    with env.session() as session:
        digest = session.scalar(select(AuditEvent.leaf_hash).where(AuditEvent.index == 1))
        assert digest is not None
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.index == 1)
            .values(leaf_hash=bytes(b ^ 1 for b in digest))
        )
        session.execute(delete(SignedTreeHead))
        session.execute(delete(TreeBlock))
        session.commit()
    pull(env)  # the log grows; its next head is computed over the rewritten leaves
    status, verdict = _verify(client, csrf)
    assert (status, verdict) == (409, "bad")
    # The earlier head is kept (not replaced by the bad one): asking again fails again.
    assert _verify(client, csrf) == (409, "bad")


def test_a_truncated_log_is_caught(fresh_hub: HubEnv) -> None:
    env = fresh_hub
    pull(env)
    client = new_client(env)
    csrf = sign_in(env, client)
    with env.session() as session:
        size = log_size(session)
        session.execute(delete(AuditEvent).where(AuditEvent.index >= size - 2))
        session.execute(delete(SignedTreeHead))
        session.execute(delete(TreeBlock))
        session.commit()
    response = client.post("/regulator/verify", data={"csrf_token": csrf})
    assert response.status_code == 409 and 'class="card verdict bad"' in response.text


def test_a_forked_head_is_caught(hub: HubEnv) -> None:
    """A session that saw another head of the same size (a split view) is told so."""
    client = new_client(hub)
    sign_in(hub, client)
    dashboard = hub.client.app.state.regulator  # type: ignore[attr-defined]
    signer = hub.runtime.audit_signer
    head = hub.client.get("/v1/audit/tree-head", headers=hub.auth("regulator-fsr")).json()
    size = head["size"]
    forged = signer.sign_head(size, b"\x07" * 32, datetime.fromisoformat(str(head["timestamp"])))
    cookie = next(c for c in client.cookies.jar if c.name == COOKIE)
    current = dashboard.sessions.decode(cookie.value)
    assert isinstance(current, RegulatorSession)
    client.cookies.clear()
    client.cookies.set(
        COOKIE, dashboard.sessions.encode(dashboard.sessions.with_head(current, forged.note()))
    )
    response = client.post("/regulator/verify", data={"csrf_token": current.csrf_token})
    assert response.status_code == 409
    assert "two different tree heads" in response.text
