"""Runtime settings, read from ``TOLLHOUSE_*`` environment variables (and an optional ``.env``).

Defaults give the embedded set-up: a SQLite file and keys under ``var/``, the embedded Rego engine,
and the demo ecosystem seeded on first run.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.ratelimit.limits import DEFAULT_RATE_LIMITS, RateLimit, RouteClass

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOLLHOUSE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=PROJECT_ROOT / "var",
        description="Where the SQLite file, keys, demo credentials and outbox live.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means the SQLite file <data_dir>/tollhouse.db.",
    )
    issuer: str = Field(
        default="http://127.0.0.1:8000",
        description="Public base URL of the hub: the token issuer and the audience of assertions.",
    )
    db_concurrency: int = Field(
        default=8,
        ge=1,
        le=1000,
        description=(
            "PostgreSQL: requests a worker lets use the database at once (others wait their "
            "turn on the event loop). SQLite always admits one."
        ),
    )
    policies_dir: Path = Field(default=PROJECT_ROOT / "policies")
    policy_engine: Literal["embedded", "opa"] = "embedded"
    opa_url: str = "http://127.0.0.1:8181"
    policy_watch_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How often the embedded engine checks policies/ for changes (0: never).",
    )
    access_token_ttl_seconds: int = Field(default=600, ge=30, le=3600)
    page_limit_default: int = Field(default=100, ge=1)
    page_limit_max: int = Field(default=1000, ge=1)
    max_publish_batch: int = Field(default=1000, ge=1)
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    statistics_min_k: int = Field(
        default=10, ge=2, description="Smallest group size published by the statistics API."
    )
    demo_seed: int = 7
    demo_consumers: int = Field(default=200, ge=10)
    insecure_transport: bool = Field(
        default=True,
        description="Allow OAuth over plain http (development, or TLS terminated by a proxy).",
    )
    # --- hardening (issue 12): logs and metrics ---
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Level of the JSON logs on stderr."
    )
    metrics: Literal["loopback", "open", "off"] = Field(
        default="loopback",
        description=(
            "GET /metrics: 'loopback' answers only direct connections from this host (no "
            "proxy forwarding headers), 'open' answers anyone (a private scrape network), "
            "'off' removes the route."
        ),
    )
    # --- hardening (issue 12): per-partner rate limits, identity-lookup velocity ---
    rate_limits_enabled: bool = Field(
        default=True, description="Per-partner token buckets (429 + Retry-After when empty)."
    )
    rate_limits: dict[RouteClass, RateLimit] = Field(
        default_factory=lambda: dict(DEFAULT_RATE_LIMITS),
        description=(
            'Per route class (pull, publish, lookup, token, api): {"per_minute", "burst"}; '
            "classes not named keep their defaults. A partner's registry setting overrides."
        ),
    )
    rate_limit_lease: int = Field(
        default=10, ge=1, le=1000, description="Tokens a process may take from a bucket at once."
    )
    lookup_velocity_max: int = Field(
        default=200, ge=1, description="Distinct identifiers a partner may look up per window."
    )
    lookup_velocity_window_seconds: int = Field(default=3600, ge=1, le=7 * 86400)

    def rate_limit(self, route_class: RouteClass) -> RateLimit:
        return self.rate_limits.get(route_class) or DEFAULT_RATE_LIMITS[route_class]

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'tollhouse.db'}"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
