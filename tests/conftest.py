"""Shared fixtures: one seeded template database per test process, a fresh copy per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from hub.demo.ecosystem import seed_demo
from hub.ratelimit import ROUTE_CLASSES, RateLimit
from hub.runtime import Runtime
from hub.settings import PROJECT_ROOT, Settings
from hub.store.db import unit_of_work
from hub.store.migrate import upgrade
from tests.support.browser import chromium
from tests.support.databases import TestDatabases
from tests.support.hub import TEST_ISSUER, HubEnv, build_env
from tests.support.served import served_in_thread

TEST_CONSUMERS = 60
GENEROUS_RATE_LIMITS = {
    cls: RateLimit(per_minute=1_000_000, burst=100_000) for cls in ROUTE_CLASSES
}

# No per-example deadlines: they are timing assertions, and these machines are shared.
hypothesis_settings.register_profile("tollhouse", deadline=None)
hypothesis_settings.load_profile("tollhouse")


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabases]:
    dbs = TestDatabases(tmp_path_factory.mktemp("db"))
    yield dbs
    dbs.drop_all()


def make_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        issuer=TEST_ISSUER,
        policies_dir=overrides.pop("policies_dir", PROJECT_ROOT / "policies"),
        demo_consumers=TEST_CONSUMERS,
        # The test population is small; production keeps the default floor of 10.
        statistics_min_k=overrides.pop("statistics_min_k", 3),
        # Rate and velocity limits never bind in the suite; tests/hardening/test_rate_limits.py
        # sets low ones of its own.
        rate_limits=overrides.pop("rate_limits", GENEROUS_RATE_LIMITS),
        lookup_velocity_max=overrides.pop("lookup_velocity_max", 1_000_000),
        **overrides,
    )


@pytest.fixture(scope="session")
def seeded_template(
    databases: TestDatabases, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str, dict[str, Any]]:
    """Migrate and seed the demo ecosystem once per test process; return its data dir, its
    database URL (to clone, never to use) and the demo credentials."""
    data_dir = tmp_path_factory.mktemp("hubdata")
    url = databases.new("template")
    settings = make_settings(data_dir, url)
    upgrade(url)
    runtime = Runtime.build(settings)
    with unit_of_work(runtime.session_factory) as session:
        summary = seed_demo(
            session,
            protector=runtime.protector,
            policies_dir=settings.policies_dir,
            seed=settings.demo_seed,
            consumers=TEST_CONSUMERS,
            receipts=runtime.consents.signer,
        )
    runtime.engine.dispose()
    return data_dir, url, summary.credentials


@pytest.fixture(scope="module")
def hub(
    seeded_template: tuple[Path, str, dict[str, Any]], databases: TestDatabases
) -> Iterator[HubEnv]:
    """A seeded hub of this test module's own: changes never leak into other modules."""
    data_dir, template_url, credentials = seeded_template
    settings = make_settings(data_dir, databases.clone(template_url))
    env = build_env(settings, credentials)
    with env.client:
        yield env
    env.runtime.engine.dispose()


@pytest.fixture(scope="module")
def base_url(hub: HubEnv) -> Iterator[str]:
    """The module's hub served over HTTP on loopback (for a real browser)."""
    with served_in_thread(hub.client.app) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium (Debian's) for the module's browser tests."""
    with chromium() as launched:
        yield launched
