"""Fixtures for the consent tests: a seeded hub that may call webhooks on loopback, consumer
tokens, and the synthetic population to name subjects the way partners do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from hub.demo.population import Consumer, generate_population
from tests.conftest import TEST_CONSUMERS, make_settings
from tests.support.databases import TestDatabases
from tests.support.hub import HubEnv, build_env


@pytest.fixture(scope="module")
def hub(
    seeded_template: tuple[Path, str, dict[str, Any]], databases: TestDatabases
) -> Iterator[HubEnv]:
    """The shared seeded hub, with webhook delivery to loopback allowed (the SSRF guard is
    tested on its own with the production setting)."""
    with loopback_webhook_hub(seeded_template, databases) as env:
        yield env


@contextmanager
def loopback_webhook_hub(
    seeded_template: tuple[Path, str, dict[str, Any]], databases: TestDatabases
) -> Iterator[HubEnv]:
    data_dir, template_url, credentials = seeded_template
    settings = make_settings(data_dir, databases.clone(template_url))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOLLHOUSE_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
        patch.setenv("TOLLHOUSE_WEBHOOK_BACKOFF_BASE_SECONDS", "10")
        patch.setenv("TOLLHOUSE_WEBHOOK_MAX_ATTEMPTS", "4")
        env = build_env(settings, credentials)
    with env.client:
        yield env
    env.runtime.engine.dispose()


@pytest.fixture(scope="session")
def people() -> list[Consumer]:
    return list(generate_population(seed=7, consumers=TEST_CONSUMERS).consumers)
