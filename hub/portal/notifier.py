"""How one-time codes reach the consumer: a :class:`Notifier` behind a small protocol.

* :class:`OutboxNotifier` writes each message as a JSON file in a folder (``<data dir>/outbox``)
  that the demo and the tests read: development only, it holds the recipient in clear.
* :class:`SmtpNotifier` hands the message to an SMTP relay (mobile numbers go to an
  e-mail-to-SMS gateway address).
"""

from __future__ import annotations

import json
import os
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from hub.keyfiles import ensure_private_dir
from hub.portal.settings import PortalSettings
from hub.store.base import new_id, utcnow


@dataclass(frozen=True, slots=True)
class Message:
    to: str
    subject: str
    body: str


class NotifierError(Exception):
    """The message could not be handed over."""


class Notifier(Protocol):
    def send(self, message: Message) -> None: ...


class OutboxNotifier:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: Message) -> None:
        ensure_private_dir(self.folder)
        now = utcnow()
        name = f"{now.strftime('%Y%m%dT%H%M%S%f')}-{new_id('msg')}.json"
        document = {
            "to": message.to,
            "subject": message.subject,
            "body": message.body,
            "sent_at": now.isoformat(),
        }
        path = self.folder / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(document, ensure_ascii=False, indent=2), encoding="utf-8")
        os.chmod(tmp, 0o600)
        tmp.replace(path)


class SmtpNotifier:
    def __init__(self, settings: PortalSettings) -> None:
        self.settings = settings

    def address(self, to: str) -> str:
        if "@" in to:
            return to
        digits = "".join(ch for ch in to if ch.isdigit())
        return f"{digits}@{self.settings.smtp_sms_gateway}"

    def send(self, message: Message) -> None:
        email = EmailMessage()
        email["From"] = self.settings.smtp_sender
        email["To"] = self.address(message.to)
        email["Subject"] = message.subject
        email.set_content(message.body)
        try:
            with smtplib.SMTP(
                self.settings.smtp_host,
                self.settings.smtp_port,
                timeout=self.settings.smtp_timeout_seconds,
            ) as smtp:
                smtp.send_message(email)
        except (OSError, smtplib.SMTPException) as exc:
            raise NotifierError(f"SMTP delivery failed: {exc}") from exc


def build_notifier(settings: PortalSettings, data_dir: Path) -> Notifier:
    if settings.notifier == "smtp":
        return SmtpNotifier(settings)
    return OutboxNotifier(data_dir / "outbox")
