"""Message catalogs: ``locale/<lang>/LC_MESSAGES/messages.po``, compiled in memory at start-up
(no ``.mo`` files to keep in sync). ``zh_CN`` is the default for subjects in CN; ``en`` otherwise.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from gettext import GNUTranslations
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
LOCALES = ("zh_CN", "en")
DOMAIN = "messages"


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated where it is shown."""
    return message


@dataclass(frozen=True)
class Catalogs:
    translations: dict[str, GNUTranslations]

    @classmethod
    def load(cls, locale_dir: Path = LOCALE_DIR) -> Catalogs:
        compiled: dict[str, GNUTranslations] = {}
        for locale in LOCALES:
            po = locale_dir / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
            with po.open("rb") as handle:
                catalog = read_po(handle, locale=locale)
            buffer = io.BytesIO()
            write_mo(buffer, catalog)
            buffer.seek(0)
            compiled[locale] = GNUTranslations(buffer)
        return cls(compiled)

    def get(self, locale: str) -> GNUTranslations:
        return self.translations.get(locale, self.translations[LOCALES[0]])


def pick_locale(requested: str | None, *, jurisdiction: str | None, default: str) -> str:
    if requested in LOCALES:
        return str(requested)
    if jurisdiction is not None:
        return "zh_CN" if jurisdiction == "CN" else "en"
    return default if default in LOCALES else LOCALES[0]
