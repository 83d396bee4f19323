"""Validators and canonical forms for the identifiers that flow through the hub.

Pure functions, no I/O, no clock. Each validator answers "is this string, as written, a
well-formed identifier of this kind?". The one canonical form used for comparisons and blind
indexes is :func:`hub.crypto.normalize.normalize_identifier`.

What is checked, per kind:

* **VIN** (ISO 3779): 17 characters from ``0-9 A-Z`` without ``I``, ``O``, ``Q``; upper case only.
  The check digit in position 9 (49 CFR 565, also mandatory in China under GB 16735) is verified
  only when asked (``require_check_digit=True``); :func:`vin_check_digit_applies` tells whether the
  VIN's region uses it (WMI starting ``1``-``5`` for North America, ``L`` for China).
* **PRC resident identity number** (GB 11643): 18 characters, 17 digits and a check character
  from ISO 7064 MOD 11-2 (``0-9`` or ``X``; a lower-case ``x`` is accepted); the 6-digit region
  code's first two digits must be a real province-level code (see :data:`PRC_PROVINCE_CODES`, which
  includes 83 for residence permits of Hong Kong, Macao and Taiwan residents); digits 7-14 must be
  a real calendar
  date between 1880-01-01 and 2099-12-31 (no comparison with today: the validators are clock-free).
  The county part of the region code is not checked against a table. 15-digit first-generation
  numbers are not accepted.
* **Bank cards**: Luhn (:func:`luhn_valid`); lengths are the caller's business.
* **Chinese mobile numbers**: optional ``+86`` / ``0086`` / ``86`` prefix, then ``1[3-9]`` and
  nine more digits; spaces and hyphens between digits are tolerated.
* **Chinese licence plates** (GA 36): a province abbreviation (:data:`PLATE_PROVINCES`), an issuing
  authority letter (``A``-``Z`` without ``I``/``O``), an optional separator (middle dot ``·``,
  bullet, katakana middle dot or one space), then either five alphanumerics with at most two letters
  (ordinary plates; ``I`` and ``O`` never used) or the six-character new-energy serial
  (``D``/``F`` + letter-or-digit + four digits for small vehicles, five digits + ``D``/``F`` for
  large ones). Special suffix plates (学, 警, 挂, 港, 澳, 使, 领) are not accepted.
* **IBAN** (ISO 13616): country code with its registered length (:data:`IBAN_LENGTHS`; unknown
  countries are rejected), MOD 97-10 == 1; spaces between groups tolerated, case-insensitive.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final, Literal

from hub.deid.errors import InvalidIdentifierError

__all__ = [
    "IBAN_LENGTHS",
    "IdentifierKind",
    "PLATE_PROVINCES",
    "PRC_PROVINCE_CODES",
    "iban_check_digits",
    "is_valid_cn_mobile",
    "is_valid_cn_plate",
    "is_valid_iban",
    "is_valid_prc_id",
    "is_valid_vin",
    "luhn_check_digit",
    "luhn_valid",
    "prc_id_birth_date",
    "prc_id_check_char",
    "vin_check_digit",
    "vin_check_digit_applies",
]

IdentifierKind = Literal["vin", "id_number", "plate", "mobile", "email", "iban", "card"]

# --------------------------------------------------------------------------------------------- VIN

_VIN_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
_VIN_RE: Final = re.compile(r"[0-9A-HJ-NPR-Z]{17}")
_VIN_VALUES: Final[dict[str, int]] = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS: Final = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def vin_check_digit(vin17: str) -> str:
    """The check digit (``0``-``9`` or ``X``) that position 9 of ``vin17`` should hold.

    Position 9 itself is ignored (weight 0), so any placeholder may stand there.
    Raises :class:`InvalidIdentifierError` if ``vin17`` is not 17 VIN characters.
    """
    if len(vin17) != 17 or not _VIN_RE.fullmatch(vin17):
        raise InvalidIdentifierError("a VIN has 17 characters from 0-9 and A-Z without I, O, Q")
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin17, _VIN_WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def vin_check_digit_applies(vin: str) -> bool:
    """Whether the VIN's region mandates the position-9 check digit (North America, China)."""
    return bool(vin) and (vin[0] in "12345" or vin[0] == "L")


def is_valid_vin(s: str, *, require_check_digit: bool = False) -> bool:
    """ISO 3779 structure; with ``require_check_digit`` also the position-9 check digit."""
    if len(s) != 17 or not _VIN_RE.fullmatch(s):
        return False
    return not require_check_digit or s[8] == vin_check_digit(s)


# ------------------------------------------------------------------------------------------ PRC ID

PRC_PROVINCE_CODES: Final[dict[str, str]] = {
    "11": "北京",
    "12": "天津",
    "13": "河北",
    "14": "山西",
    "15": "内蒙古",
    "21": "辽宁",
    "22": "吉林",
    "23": "黑龙江",
    "31": "上海",
    "32": "江苏",
    "33": "浙江",
    "34": "安徽",
    "35": "福建",
    "36": "江西",
    "37": "山东",
    "41": "河南",
    "42": "湖北",
    "43": "湖南",
    "44": "广东",
    "45": "广西",
    "46": "海南",
    "50": "重庆",
    "51": "四川",
    "52": "贵州",
    "53": "云南",
    "54": "西藏",
    "61": "陕西",
    "62": "甘肃",
    "63": "青海",
    "64": "宁夏",
    "65": "新疆",
    "71": "台湾",
    "81": "香港",
    "82": "澳门",
    "83": "港澳台居民居住证",
}
"""Province-level codes (first two digits of a PRC ID region code) and their short names."""

_PRC_WEIGHTS: Final = tuple(pow(2, 17 - i, 11) for i in range(17))
_PRC_CHECK: Final = "10X98765432"
_PRC_RE: Final = re.compile(r"\d{17}[0-9Xx]")


def prc_id_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character (``0``-``9`` or ``X``) for the first 17 digits.

    Raises :class:`InvalidIdentifierError` unless ``first17`` is exactly 17 ASCII digits.
    """
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise InvalidIdentifierError("the body of a PRC ID number is 17 digits")
    total = sum(int(c) * w for c, w in zip(first17, _PRC_WEIGHTS, strict=True))
    return _PRC_CHECK[total % 11]


def prc_id_birth_date(s: str) -> date | None:
    """The birth date encoded in digits 7-14 of a PRC ID number, or None if it is not a date."""
    if len(s) < 14 or not s[6:14].isascii() or not s[6:14].isdigit():
        return None
    year, month, day = int(s[6:10]), int(s[10:12]), int(s[12:14])
    if not 1880 <= year <= 2099:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def is_valid_prc_id(s: str) -> bool:
    """18-character PRC resident identity number with real province, birth date and check char."""
    if len(s) != 18 or not _PRC_RE.fullmatch(s):
        return False
    if s[:2] not in PRC_PROVINCE_CODES or prc_id_birth_date(s) is None:
        return False
    return prc_id_check_char(s[:17]) == s[17].upper()


# ---------------------------------------------------------------------------------------- Luhn


def _luhn_sum(digits: str, *, double_first: bool) -> int:
    total = 0
    double = double_first
    for ch in reversed(digits):
        d = ord(ch) - 48
        if double:
            d *= 2
            if d > 9:
                d -= 9
        total += d
        double = not double
    return total


def luhn_valid(digits: str) -> bool:
    """Luhn (ISO/IEC 7812-1) check over a string of ASCII digits (at least two)."""
    if len(digits) < 2 or not digits.isascii() or not digits.isdigit():
        return False
    return _luhn_sum(digits, double_first=False) % 10 == 0


def luhn_check_digit(body: str) -> str:
    """The Luhn check digit to append to ``body`` (ASCII digits)."""
    if not body or not body.isascii() or not body.isdigit():
        raise InvalidIdentifierError("a Luhn body is a non-empty string of digits")
    return str((10 - _luhn_sum(body, double_first=True) % 10) % 10)


# ------------------------------------------------------------------------------------- CN mobile

_SEPARATORS_RE: Final = re.compile(r"[\s\-]")
_CN_MOBILE_RE: Final = re.compile(r"(?:\+86|0086|86)?(1[3-9]\d{9})")


def _cn_mobile_national(s: str) -> str | None:
    if not s or s[0] in " -" or s[-1] in " -" or "  " in s or "--" in s:
        return None
    compact = _SEPARATORS_RE.sub("", s)
    m = _CN_MOBILE_RE.fullmatch(compact)
    return m.group(1) if m else None


def is_valid_cn_mobile(s: str) -> bool:
    """A mainland-China mobile number: optional +86, then ``1[3-9]`` and nine digits."""
    return _cn_mobile_national(s) is not None


# -------------------------------------------------------------------------------------- CN plate

PLATE_PROVINCES: Final[dict[str, str]] = {
    "京": "11",
    "津": "12",
    "冀": "13",
    "晋": "14",
    "蒙": "15",
    "辽": "21",
    "吉": "22",
    "黑": "23",
    "沪": "31",
    "苏": "32",
    "浙": "33",
    "皖": "34",
    "闽": "35",
    "赣": "36",
    "鲁": "37",
    "豫": "41",
    "鄂": "42",
    "湘": "43",
    "粤": "44",
    "桂": "45",
    "琼": "46",
    "渝": "50",
    "川": "51",
    "贵": "52",
    "云": "53",
    "藏": "54",
    "陕": "61",
    "甘": "62",
    "青": "63",
    "宁": "64",
    "新": "65",
}
"""Plate province abbreviations and the PRC province code they belong to."""

PLATE_SEPARATORS: Final = "·•・ "
_PLATE_PROV_CLASS: Final = "[" + "".join(PLATE_PROVINCES) + "]"
_PLATE_LETTER: Final = "[A-HJ-NP-Z]"
_PLATE_ALNUM: Final = "[A-HJ-NP-Z0-9]"
_PLATE_RE: Final = re.compile(
    rf"(?P<prov>{_PLATE_PROV_CLASS})(?P<auth>{_PLATE_LETTER})[{PLATE_SEPARATORS}]?"
    rf"(?P<serial>[DF]{_PLATE_ALNUM}\d{{4}}|\d{{5}}[DF]|{_PLATE_ALNUM}{{5}})"
)


def is_valid_cn_plate(s: str) -> bool:
    """A Chinese civil licence plate, ordinary (7 characters) or new-energy (8 characters)."""
    m = _PLATE_RE.fullmatch(s)
    if m is None:
        return False
    serial: str = m.group("serial")
    if len(serial) == 5:
        return sum(c.isalpha() for c in serial) <= 2
    return True


# ------------------------------------------------------------------------------------------ IBAN

IBAN_LENGTHS: Final[dict[str, int]] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
"""Registered IBAN length per country (SWIFT IBAN registry)."""

_IBAN_RE: Final = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")


def _iban_mod97(rearranged: str) -> int:
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97


def iban_check_digits(country: str, bban: str) -> str:
    """The two check digits for an IBAN of ``country`` (2 letters) and ``bban`` (upper alnum)."""
    if len(country) != 2 or not country.isascii() or not country.isalpha():
        raise InvalidIdentifierError("an IBAN country code is two letters")
    if not bban or not bban.isascii() or not bban.isalnum():
        raise InvalidIdentifierError("an IBAN BBAN is alphanumeric")
    return f"{98 - _iban_mod97((bban + country + '00').upper()):02d}"


def _iban_compact(s: str) -> str:
    return s.replace(" ", "").upper()


def is_valid_iban(s: str) -> bool:
    """ISO 13616 IBAN with its country's registered length and MOD 97-10 check digits."""
    compact = _iban_compact(s)
    if not compact.isascii() or not _IBAN_RE.fullmatch(compact):
        return False
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    return bool(_iban_mod97(compact[4:] + compact[:4]) == 1)
