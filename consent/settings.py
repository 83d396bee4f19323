"""Settings of consent notifications, read from ``TOLLHOUSE_WEBHOOK_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOLLHOUSE_WEBHOOK_", extra="ignore")

    allow_private_networks: bool = Field(
        default=False,
        description=(
            "Allow http and loopback/private webhook URLs (tests and development only; SSRF "
            "protection refuses them in production)."
        ),
    )
    max_attempts: int = Field(default=8, ge=1, le=50)
    backoff_base_seconds: float = Field(default=30.0, ge=0)
    backoff_max_seconds: float = Field(default=6 * 3600.0, ge=0)
    lease_seconds: float = Field(default=60.0, gt=0)
    timeout_seconds: float = Field(default=5.0, gt=0)
