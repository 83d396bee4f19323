"""Fixtures for the de-identification tests: one egress guard (and Presidio engine) per session."""

from __future__ import annotations

import pytest

from hub.deid.guard import EgressGuard


@pytest.fixture(scope="session")
def guard() -> EgressGuard:
    """Building the engines loads spaCy once (about a second); every guard test shares it."""
    g = EgressGuard()
    g.analyze(["warm-up: Contact James Smith on +44 7700 900123."])
    return g
