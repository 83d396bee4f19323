"""Settings of the partner registry, read from ``TOLLHOUSE_REGISTRY_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RegistrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOLLHOUSE_REGISTRY_", extra="ignore")

    allow_private_networks: bool = Field(
        default=False,
        description=(
            "Allow http and loopback/private JWKS and webhook URLs (tests and development only: "
            "in production the hub never calls such addresses)."
        ),
    )
    jwks_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    jwks_max_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    jwks_cache_seconds: float = Field(default=300.0, ge=0)
    jwks_min_refresh_seconds: float = Field(
        default=30.0,
        ge=0,
        description="An unknown `kid` refetches the JWKS at most this often per partner.",
    )
    max_secret_grace_seconds: int = Field(default=30 * 86400, ge=0)
