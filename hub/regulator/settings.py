"""Regulator dashboard settings (environment variables ``TOLLHOUSE_REGULATOR_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RegulatorSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TOLLHOUSE_REGULATOR_", env_file=".env", extra="ignore"
    )

    #: A signed-in session lasts this long (no sliding renewal: sign in again).
    session_ttl_seconds: int = Field(default=1800, ge=60, le=86_400)
    #: An anonymous session (the sign-in form's CSRF token) lasts this long.
    anonymous_session_ttl_seconds: int = Field(default=1800, ge=60, le=86_400)
    #: Failed sign-ins per partner (client id) within the window, then 429 until it passes.
    failures_per_partner: int = Field(default=5, ge=1)
    #: Failed sign-ins naming no known client within the window, all together.
    failures_unknown_clients: int = Field(default=50, ge=1)
    rate_window_seconds: int = Field(default=900, ge=60)
    default_locale: str = "zh_CN"
    #: Events per page of the search.
    page_size: int = Field(default=50, ge=1, le=500)
