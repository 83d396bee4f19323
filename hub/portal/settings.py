"""Portal settings (environment variables ``TOLLHOUSE_PORTAL_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class PortalSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TOLLHOUSE_PORTAL_", env_file=".env", extra="ignore"
    )

    #: ``outbox``: write messages to ``<data dir>/outbox`` (development, demo, tests);
    #: ``smtp``: send them through an SMTP relay.
    notifier: Literal["outbox", "smtp"] = "outbox"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_sender: str = "no-reply@tollhouse.example"
    #: Mobile numbers are sent to ``<digits>@<gateway>`` (an e-mail-to-SMS gateway).
    smtp_sms_gateway: str = "sms.tollhouse.example"
    smtp_timeout_seconds: float = 10.0

    code_ttl_seconds: int = 300
    code_max_attempts: int = 5
    #: Codes per identifier, and per client IP, within the window.
    codes_per_identifier: int = 5
    codes_per_ip: int = 30
    rate_window_seconds: int = 900

    session_ttl_seconds: int = 1800
    anonymous_session_ttl_seconds: int = 1800
    default_locale: str = "zh_CN"
