"""Dashboard sessions end on the server: signing out revokes the session id (a copy of the
cookie stops working), and a session also ends when its partner is suspended or the secret it
signed in with is rotated away. Service level first, then through the test client."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select

from hub.registry import partners as registry
from hub.regulator.models import RevokedRegulatorSession
from hub.regulator.sessions import PURGE_MARGIN, RegulatorSession, revoke
from hub.regulator.signin import current_regulator
from hub.store.base import utcnow
from hub.store.db import make_engine
from hub.store.migrate import alembic_config, upgrade
from tests.regulator.helpers import COOKIE, REGULATOR, new_client, sign_in
from tests.support.databases import TestDatabases
from tests.support.hub import HubEnv


def _secret_id(env: HubEnv, ref: str = REGULATOR) -> str:
    with env.session() as session:
        pid = env.partner(ref)["partner_id"]
        return registry.live_secrets(session, partner_id=pid)[-1].id


def _session(env: HubEnv, session_id: str, *, ttl: int = 600) -> RegulatorSession:
    return RegulatorSession(
        partner_id=env.partner(REGULATOR)["partner_id"],
        csrf_token="x" * 43,
        locale=None,
        expires_at=int(time.time()) + ttl,
        session_id=session_id,
        secret_id=_secret_id(env),
    )


def _opens(client: TestClient) -> bool:
    response = client.get("/regulator/overview", follow_redirects=False)
    if response.status_code == 200:
        return True
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/regulator/sign-in"
    return False


# -- service level ---------------------------------------------------------------------------


def test_revoke_ends_that_session_only(hub: HubEnv) -> None:
    mine, other = _session(hub, "sid-mine"), _session(hub, "sid-other")

    def alive(session: object, value: RegulatorSession) -> bool:
        assert value.partner_id and value.session_id and value.secret_id
        return (
            current_regulator(
                session,  # type: ignore[arg-type]
                partner_id=value.partner_id,
                epoch=value.epoch,
                session_id=value.session_id,
                secret_id=value.secret_id,
            )
            is not None
        )

    with hub.session() as session:
        assert alive(session, mine) and alive(session, other)
        assert revoke(session, mine) is True
        assert not alive(session, mine)
        assert alive(session, other)
        assert revoke(session, mine) is True  # twice: harmless
        anonymous = RegulatorSession(None, "y" * 43, None, int(time.time()) + 600)
        assert revoke(session, anonymous) is False  # nothing to revoke
        row = session.get(RevokedRegulatorSession, "sid-mine")
        assert row is not None and int(row.expires_at.timestamp()) == mine.expires_at
        session.rollback()


def test_revocations_are_purged_once_the_cookie_is_long_expired(hub: HubEnv) -> None:
    now = utcnow()
    new = _session(hub, "sid-new")
    with hub.session() as session:
        pid = hub.partner(REGULATOR)["partner_id"]
        session.add_all(
            [
                RevokedRegulatorSession(
                    session_id="sid-stale",
                    partner_id=pid,
                    expires_at=now - PURGE_MARGIN - timedelta(seconds=1),
                ),
                RevokedRegulatorSession(
                    session_id="sid-just-expired", partner_id=pid, expires_at=now
                ),
            ]
        )
        session.flush()
        revoke(session, new, now=now)
        left = set(session.scalars(select(RevokedRegulatorSession.session_id)))
        assert left == {"sid-just-expired", "sid-new"}
        session.rollback()


def test_a_signed_in_cookie_without_a_session_id_is_refused(hub: HubEnv) -> None:
    """Cookies from before revocation existed carry no id: they are no session at all."""
    dashboard = hub.client.app.state.regulator  # type: ignore[attr-defined]
    client = new_client(hub)
    old = RegulatorSession(hub.partner(REGULATOR)["partner_id"], "x" * 43, None, 2**40)
    cookie = dashboard.sessions.encode(old)
    assert dashboard.sessions.decode(cookie) is None
    client.cookies.set(COOKIE, cookie)
    assert not _opens(client)
    fine = _session(hub, "sid-fine")
    client.cookies.set(COOKIE, dashboard.sessions.encode(fine))
    assert _opens(client)


# -- through the test client -----------------------------------------------------------------


def test_sign_out_ends_a_copied_cookie(hub: HubEnv) -> None:
    client = new_client(hub)
    csrf = sign_in(hub, client)
    copy = new_client(hub)
    copy.cookies.set(COOKIE, client.cookies[COOKIE])
    assert _opens(copy)  # the copy works while the session lives
    response = client.post("/regulator/sign-out", data={"csrf_token": csrf}, follow_redirects=False)
    assert response.status_code == 303
    refused = copy.get("/regulator/overview", follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"] == "/regulator/sign-in"
    assert f'{COOKIE}=""' in refused.headers["set-cookie"]  # cleared
    # The copy cannot sign out again either (its CSRF token belongs to a dead session), and
    # the browser that signed out has an anonymous session: it may sign in again at once.
    again = copy.post("/regulator/sign-out", data={"csrf_token": csrf}, follow_redirects=False)
    assert again.status_code == 403
    assert not _opens(client)
    sign_in(hub, client)


def test_signing_in_again_ends_the_session_it_replaces(hub: HubEnv) -> None:
    client = new_client(hub)
    csrf = sign_in(hub, client)
    before = client.cookies[COOKIE]
    partner = hub.partner(REGULATOR)
    response = client.post(
        "/regulator/sign-in",
        data={
            "csrf_token": csrf,
            "client_id": partner["client_id"],
            "client_secret": partner["client_secret"],
        },
        follow_redirects=False,
    )
    assert response.status_code == 303 and client.cookies[COOKIE] != before
    assert _opens(client)
    copy = new_client(hub)
    copy.cookies.set(COOKIE, before)
    assert not _opens(copy)


def test_a_new_language_keeps_the_session_revocable(hub: HubEnv) -> None:
    """A re-issued cookie (new language) is the same session: signing out with it ends the
    copy taken before."""
    client = new_client(hub)
    csrf = sign_in(hub, client)
    before = client.cookies[COOKIE]
    client.post("/regulator/language", data={"csrf_token": csrf, "locale": "en"})
    assert client.cookies[COOKIE] != before
    client.post("/regulator/sign-out", data={"csrf_token": csrf})
    copy = new_client(hub)
    copy.cookies.set(COOKIE, before)
    assert not _opens(copy)


def test_suspension_ends_the_session_and_reinstating_does_not_revive_it(
    fresh_hub: HubEnv,
) -> None:
    env = fresh_hub
    client = new_client(env)
    sign_in(env, client)
    cookie = client.cookies[COOKIE]
    pid = env.partner(REGULATOR)["partner_id"]
    with env.session() as session:
        registry.suspend_partner(session, partner_id=pid, actor="test", reason="audit")
        session.commit()
    assert not _opens(client)
    with env.session() as session:
        registry.reinstate_partner(session, partner_id=pid, actor="test", reason="done")
        session.commit()
    copy = new_client(env)
    copy.cookies.set(COOKIE, cookie)
    assert not _opens(copy)
    sign_in(env, copy)  # a new sign-in works again


@pytest.mark.parametrize(("grace", "still_open"), [(0, False), (600, True)])
def test_rotating_the_secret_away_ends_the_session(
    fresh_hub: HubEnv, grace: int, still_open: bool
) -> None:
    env = fresh_hub
    client = new_client(env)
    sign_in(env, client)
    with env.session() as session:
        registry.rotate_client_secret(
            session,
            partner_id=env.partner(REGULATOR)["partner_id"],
            grace_seconds=grace,
            max_grace_seconds=3600,
            actor="test",
        )
        session.commit()
    assert _opens(client) is still_open


def _indexes(url: str) -> list[list[str]] | None:
    """The indexes of the revocations table, or ``None`` without the table (a fresh engine
    each time: a pooled SQLite connection may keep the schema it saw)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            found = inspect(connection)
            if "regulator_revoked_sessions" not in found.get_table_names():
                return None
            indexes = found.get_indexes("regulator_revoked_sessions")
            return [list(i["column_names"]) for i in indexes]  # type: ignore[arg-type]
    finally:
        engine.dispose()


def test_the_migration_downgrades_and_upgrades(databases: TestDatabases) -> None:
    url = databases.new("regulator_sessions_migration")
    upgrade(url)
    assert _indexes(url) == [["expires_at"]]
    command.downgrade(alembic_config(url), "0006")
    assert _indexes(url) is None
    upgrade(url)
    assert _indexes(url) == [["expires_at"]]
