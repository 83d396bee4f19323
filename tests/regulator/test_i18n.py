"""Every message the dashboard shows is translated in both catalogs, and nothing else is in them
(the catalogs and their loader are the portal's machinery)."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from hub.portal.i18n import LOCALES, Catalogs
from hub.regulator.web import LOCALE_DIR

REGULATOR = Path(__file__).resolve().parents[2] / "hub" / "regulator"


def _msgids() -> set[str]:
    found = extract_from_dir(
        str(REGULATOR),
        [("**.py", "python"), ("**/templates/**.html", "jinja2")],
        keywords={"_": None, "gettext": None, "N_": None},
    )
    return {m if isinstance(m, str) else m[0] for _file, _line, m, _comments, _context in found}


@pytest.mark.parametrize("locale", LOCALES)
def test_every_msgid_is_translated(locale: str) -> None:
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    translated = {m.id: m.string for m in catalog if m.id}
    used = _msgids()
    assert used, "no messages extracted"
    assert sorted(used - set(translated)) == []
    assert sorted(set(translated) - used) == []
    assert [m for m, s in translated.items() if not s] == []


def test_catalogs_compile_and_differ() -> None:
    catalogs = Catalogs.load(LOCALE_DIR)
    assert catalogs.get("zh_CN").gettext("Verify the log") == "验证日志"
    assert catalogs.get("en").gettext("Verify the log") == "Verify the log"
