"""Code delivery: the development outbox, and SMTP against a real server on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.portal.notifier import Message, NotifierError, OutboxNotifier, SmtpNotifier
from hub.portal.settings import PortalSettings
from tests.portal.smtp import Collect, free_port


def test_outbox_writes_one_private_file_per_message(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    OutboxNotifier(folder).send(Message(to="+8613800138000", subject="码", body="123456"))
    files = list(folder.glob("*.json"))
    assert len(files) == 1
    assert files[0].stat().st_mode & 0o777 == 0o600
    assert json.loads(files[0].read_text(encoding="utf-8"))["body"] == "123456"


def test_smtp_delivers_to_the_sms_gateway(smtp_server: tuple[Collect, int]) -> None:
    handler, port = smtp_server
    settings = PortalSettings(
        notifier="smtp", smtp_port=port, smtp_sms_gateway="sms.example", smtp_timeout_seconds=5
    )
    SmtpNotifier(settings).send(
        Message(to="+8613800138000", subject="Your code", body="Your code is 654321.")
    )
    assert len(handler.received) == 1
    email = handler.received[0]
    assert email["To"] == "8613800138000@sms.example"  # type: ignore[index]
    assert email["Subject"] == "Your code"  # type: ignore[index]
    assert "654321" in email.get_payload()  # type: ignore[attr-defined]


def test_smtp_sends_an_email_address_as_it_is(smtp_server: tuple[Collect, int]) -> None:
    handler, port = smtp_server
    settings = PortalSettings(
        notifier="smtp", smtp_port=port, smtp_sms_gateway="sms.example", smtp_timeout_seconds=5
    )
    SmtpNotifier(settings).send(
        Message(to="wang.wei@example.cn", subject="Your code", body="Your code is 123456.")
    )
    assert len(handler.received) == 1
    assert handler.received[0]["To"] == "wang.wei@example.cn"  # type: ignore[index]


def test_smtp_failure_is_a_typed_error() -> None:
    settings = PortalSettings(notifier="smtp", smtp_port=free_port(), smtp_timeout_seconds=2)
    with pytest.raises(NotifierError):
        SmtpNotifier(settings).send(Message(to="a@b.example", subject="s", body="b"))
