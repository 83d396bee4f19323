"""Every message the portal shows is translated in both catalogs, and nothing else is in them."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from hub.portal.i18n import LOCALE_DIR, LOCALES, Catalogs

PORTAL = Path(__file__).resolve().parents[2] / "hub" / "portal"


def _msgids() -> set[str]:
    found = extract_from_dir(
        str(PORTAL),
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
    assert not [m.id for m in catalog if m.id and m.fuzzy]


def test_catalogs_compile_and_differ() -> None:
    catalogs = Catalogs.load()
    assert catalogs.get("zh_CN").gettext("Sign in") == "登录"
    assert catalogs.get("en").gettext("Sign in") == "Sign in"
    # An unknown locale falls back to the default (Chinese).
    assert catalogs.get("fr").gettext("Sign in") == "登录"
