"""Normalisation of identifiers before blind indexing, so equal identifiers index equally.

Every kind is first NFKC-normalised (full-width ``ＡＢ１２`` becomes ``AB12``) and stripped of
whitespace. Then:

* ``vin``, ``id_number``, ``plate``: upper-case; hyphens, dashes, dots and middle dots removed
  (``粤B·D12345`` -> ``粤BD12345``, ``11010519491231002x`` -> ``11010519491231002X``).
* ``mobile``: E.164 (``+`` and 8-15 digits). ``00`` becomes ``+``; a bare number gets the default
  country code ``86`` (a leading trunk ``0`` is dropped); punctuation ``-.()`` and spaces removed.
* ``email``: lower-cased (the whole address; hyphens and dots are significant and kept).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final, Literal, get_args

from hub.crypto.errors import NormalizationError

__all__ = ["IdentifierKind", "normalize_identifier"]

IdentifierKind = Literal["vin", "id_number", "plate", "mobile", "email"]
KINDS: Final[frozenset[str]] = frozenset(get_args(IdentifierKind))

# hyphen-minus, hyphen, non-breaking hyphen, figure dash, en/em dash, minus, full stop, middle dots,
# bullet, katakana middle dot, hyphenation point, dot operator, bullet operator
_SEPARATORS = "-\u2010\u2011\u2012\u2013\u2014\u2212.\u00b7\u2022\u30fb\u2027\u22c5\u2219"
_STRIP_SEPARATORS = str.maketrans("", "", _SEPARATORS)
_WHITESPACE = re.compile(r"\s+")
_MOBILE_PUNCT = str.maketrans("", "", "-.()/" + _SEPARATORS)
_DIGITS = re.compile(r"[0-9]{8,15}")


def normalize_identifier(kind: str, value: str, *, default_country_code: str = "86") -> str:
    """The canonical form of ``value`` for ``kind``; ``NormalizationError`` if it has none."""
    if kind not in KINDS:
        raise NormalizationError(
            f"unknown identifier kind {kind!r}; expected one of {sorted(KINDS)}"
        )
    if not isinstance(value, str):
        raise NormalizationError(f"{kind} must be a string")
    text = _WHITESPACE.sub("", unicodedata.normalize("NFKC", value))
    if kind == "email":
        out = text.lower()
        if out.count("@") != 1 or out.startswith("@") or out.endswith("@"):
            raise NormalizationError("email address is malformed")
        return out
    if kind == "mobile":
        return _mobile(text, default_country_code)
    out = text.upper().translate(_STRIP_SEPARATORS)
    if not out:
        raise NormalizationError(f"{kind} is empty after normalisation")
    return out


def _mobile(text: str, default_cc: str) -> str:
    digits = text.translate(_MOBILE_PUNCT)
    if digits.startswith("+"):
        digits = digits[1:]
    elif digits.startswith("00"):
        digits = digits[2:]
    elif digits.startswith("0"):
        digits = default_cc + digits[1:]
    elif not (digits.startswith(default_cc) and len(digits) == len(default_cc) + 11):
        digits = default_cc + digits
    if not digits.isascii() or not _DIGITS.fullmatch(digits):
        raise NormalizationError("mobile number is not a valid E.164 number")
    return "+" + digits
