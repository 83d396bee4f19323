"""De-identification transforms: mask, generalize, suppress. Deterministic, per data type.

The policy decides *that* a field is masked or generalized; this module decides *how*, from the
field's data category, its name and the shape of its value. Pseudonymisation and encryption to
the recipient live in :mod:`hub.crypto` (they need keys).

**Fail closed.** A value a transform cannot de-identify (an unparseable address, a number where a
string was expected) is suppressed (``None``), never passed through.

Mask (format-preserving: separators, length and script stay, masked characters become ``*``)

================== ======================================= ==================================
value              rule                                    example
================== ======================================= ==================================
CN mobile          keep +86 and the 3-digit prefix, last 4 ``+86 138 0013 8000`` ->
                                                           ``+86 138 **** 8000``
other phone        keep ``+``, country code digits, last 4 ``+447700900123`` -> ``+44*****0123``
PRC ID / passport  keep last 4                             ``**************002X``
VIN                keep last 4                             ``*************2788``
plate              keep province + letter, last 2          ``粤B·D12345`` -> ``粤B·****45``
bank card          keep last 4                             ``**** **** **** 1111``
IBAN               keep country code and last 4            ``GB** **** **** **** **54 32``
e-mail             first character of local part, domain   ``w*******@qq.com``
name (identity)    Han: surname kept; Latin: initials      ``王*``, ``欧阳**``, ``J**** S****``
address            CN: up to the district; else the last   ``上海市静安区****``,
                   comma-separated part (city)             ``***, 10437 Berlin``
free text          every identifier found by the validated ``车牌粤B·****45，电话138****8000``
                   pattern finders, masked as above
any other string   keep last 4 (all masked if <= 8 chars)
non-string         suppressed
================== ======================================= ==================================

Generalize

================================ ==================================================================
value                            result
================================ ==================================================================
birth date / PRC ID (identity)   age band ``18-24``, ``25-34``, ... ``65+`` (``<18``) as of a date
other dates (ISO ``YYYY-MM-DD``, month ``YYYY-MM``
datetimes)
address                          city (``上海市``, ``苏州市``, ``Berlin``), else suppressed
latitude / longitude             floor to a 0.1° grid (about 11 km), returned as a float
                                 (``location_precise`` category or field named lat/lon)
amounts (int/float)              band ``"lo-hi"`` with width by category: income 5,000; claim
                                 5,000; insurance 2,000; vehicle odometer 10,000; other money
                                 50,000
other strings                    suppressed
================================ ==================================================================

Geohash helpers (:func:`geohash`) are provided for callers that want a cell id instead.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from typing import Any, Final

from hub.deid.errors import TransformInputError, UnknownTransformError
from hub.deid.identifiers import (
    is_valid_cn_mobile,
    is_valid_cn_plate,
    is_valid_iban,
    is_valid_prc_id,
    is_valid_vin,
    luhn_valid,
    prc_id_birth_date,
)
from hub.deid.patterns import (
    CN_MOBILE,
    CN_PLATE,
    CREDIT_CARD,
    IBAN_CODE,
    PRC_ID,
    VIN,
    find_all,
)

__all__ = [
    "AGE_BANDS",
    "age_band",
    "amount_band",
    "apply_transform",
    "city_from_address",
    "coarse_grid",
    "date_to_month",
    "geohash",
    "mask_address",
    "mask_card",
    "mask_email",
    "mask_free_text",
    "mask_iban",
    "mask_id_number",
    "mask_keep_last",
    "mask_name",
    "mask_phone",
    "mask_plate",
    "mask_vin",
    "suppress",
]

MASK: Final = "*"

# ------------------------------------------------------------------------------------------ mask


def mask_keep_last(value: str, n: int = 4, *, keep_first: int = 0) -> str:
    """Mask every letter or digit except the first ``keep_first`` and the last ``n``.

    Separators and punctuation stay where they are, so the format survives.
    """
    positions = [i for i, c in enumerate(value) if c.isalnum()]
    keep = set(positions[:keep_first]) | set(positions[len(positions) - n :] if n > 0 else [])
    return "".join(c if (i in keep or not c.isalnum()) else MASK for i, c in enumerate(value))


def mask_phone(value: str, n: int = 4) -> str:
    """CN mobiles keep ``+86`` and the 3-digit prefix; others keep the country code."""
    digits_before = 0
    stripped = value.strip()
    if is_valid_cn_mobile(stripped):
        prefix_digits = 0
        compact = re.sub(r"[\s\-]", "", stripped)
        if compact.startswith("+86"):
            prefix_digits = 2
        elif compact.startswith("0086"):
            prefix_digits = 4
        elif len(compact) == 13:
            prefix_digits = 2
        digits_before = prefix_digits + 3
    elif stripped.startswith("+"):
        digits_before = 2
    elif stripped.startswith("00"):
        digits_before = 4
    return mask_keep_last(stripped, n, keep_first=digits_before)


def mask_id_number(value: str, n: int = 4) -> str:
    """PRC ID numbers and passports: only the last ``n`` characters stay."""
    return mask_keep_last(value, n)


def mask_vin(value: str, n: int = 4) -> str:
    """A VIN keeps its last ``n`` characters (the end of the serial number)."""
    return mask_keep_last(value, n)


def mask_plate(value: str, n: int = 2) -> str:
    """A plate keeps its province character and issuing letter (the region) and last ``n``."""
    if len(value) < 2:
        return MASK * len(value)
    head, tail = value[:2], value[2:]
    return head + mask_keep_last(tail, n)


def mask_card(value: str, n: int = 4) -> str:
    """A card number keeps its last ``n`` digits; spaces and hyphens stay."""
    return mask_keep_last(value, n)


def mask_iban(value: str, n: int = 4) -> str:
    """An IBAN keeps its country code and last ``n`` characters."""
    stripped = value.strip()
    return stripped[:2] + mask_keep_last(stripped[2:], n)


def mask_email(value: str) -> str:
    """The first character of the local part and the domain stay."""
    local, at, domain = value.strip().rpartition("@")
    if not at or not local:
        return mask_keep_last(value, 0)
    return local[0] + MASK * (len(local) - 1) + "@" + domain


_COMPOUND_SURNAMES: Final = frozenset(
    {"欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "令狐", "慕容", "司徒", "夏侯", "尉迟"}
)
_HAN_RE: Final = re.compile(r"[\u3400-\u9fff]+")


def mask_name(value: str) -> str:
    """Han names keep the surname (``王*``, ``欧阳**``); others keep each part's initial."""
    name = value.strip()
    if _HAN_RE.fullmatch(name):
        keep = 2 if name[:2] in _COMPOUND_SURNAMES and len(name) > 2 else 1
        return name[:keep] + MASK * (len(name) - keep)
    return re.sub(r"(?<=\w)\w", MASK, name)


_CN_ADMIN_RE: Final = re.compile(
    r"^(?P<prefix>(?:[\u4e00-\u9fff]{2,8}?(?:省|自治区))?"
    r"(?:[\u4e00-\u9fff]{2,6}?(?:市|自治州|地区|盟))"
    r"(?:[\u4e00-\u9fff]{1,6}?(?:区|县|市|旗))?)"
)
_MUNICIPALITY_RE: Final = re.compile(r"^(北京市|上海市|天津市|重庆市)")


def mask_address(value: str) -> str:
    """CN addresses keep province, city and district; others keep their last comma part."""
    address = value.strip()
    m = _CN_ADMIN_RE.match(address)
    if m and _HAN_RE.match(address):
        prefix = m.group("prefix")
        return prefix + MASK * 4 if len(address) > len(prefix) else prefix
    if "," in address:
        head, _, last = address.rpartition(",")
        last = _EN_CITY_RE.sub(lambda pc: re.sub(r"\w", MASK, pc.group()), last)
        return re.sub(r"[^\s,]", MASK, head) + "," + last
    return mask_keep_last(address, 0)


_MASKERS_BY_ENTITY: Final = {
    VIN: mask_vin,
    PRC_ID: mask_id_number,
    CN_PLATE: mask_plate,
    CN_MOBILE: mask_phone,
    CREDIT_CARD: mask_card,
    IBAN_CODE: mask_iban,
}


def mask_free_text(text: str) -> str:
    """Mask every identifier the validated pattern finders see in ``text``, in place.

    Names in free text are the egress guard's business (it runs after the obligations).
    """
    out: list[str] = []
    last = 0
    for span in find_all(text, tuple(_MASKERS_BY_ENTITY)):
        out.append(text[last : span.start])
        out.append(_MASKERS_BY_ENTITY[span.entity](text[span.start : span.end]))
        last = span.end
    out.append(text[last:])
    return "".join(out)


def _mask_string(category: str, field: str, value: str) -> str:
    compact = value.strip()
    upper = re.sub(r"[\s\-]", "", compact).upper()
    lowered = field.lower()
    if category == "free_text":
        return mask_free_text(value)
    if is_valid_vin(upper) and category == "vehicle_identifier":
        return mask_vin(compact)
    if is_valid_prc_id(upper):
        return mask_id_number(compact)
    if is_valid_cn_plate(compact):
        return mask_plate(compact)
    if is_valid_cn_mobile(compact):
        return mask_phone(compact)
    digits = re.sub(r"[\s\-]", "", compact)
    if digits.isdigit() and 12 <= len(digits) <= 19 and luhn_valid(digits):
        return mask_card(compact)
    if re.fullmatch(r"(\+|00)[\d\s\-()]{7,20}", compact):
        return mask_phone(compact)
    if "@" in compact and " " not in compact:
        return mask_email(compact)
    if is_valid_iban(compact):
        return mask_iban(compact)
    if is_valid_vin(upper):
        return mask_vin(compact)
    if category == "identity" and "name" in lowered:
        return mask_name(compact)
    if "address" in lowered or (category == "contact" and len(compact) > 12):
        return mask_address(compact)
    return mask_keep_last(compact, 4 if len(compact) > 8 else 0)


# ------------------------------------------------------------------------------------ generalize

AGE_BANDS: Final = ((0, 17, "<18"), (18, 24, "18-24"), (25, 34, "25-34"), (35, 44, "35-44"),
                    (45, 54, "45-54"), (55, 64, "55-64"), (65, 200, "65+"))  # fmt: skip


def _age(birth: date, as_of: date) -> int:
    return as_of.year - birth.year - ((as_of.month, as_of.day) < (birth.month, birth.day))


def age_band(value: date | str, *, as_of: date) -> str | None:
    """Age band on ``as_of`` from a birth date (``date`` or ISO string) or a PRC ID number."""
    birth: date | None
    if isinstance(value, date):
        birth = value
    elif is_valid_prc_id(value.strip().upper()):
        birth = prc_id_birth_date(value.strip())
    else:
        try:
            birth = date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    if birth is None or birth > as_of:
        return None
    age = _age(birth, as_of)
    return next(label for lo, hi, label in AGE_BANDS if lo <= age <= hi)


def date_to_month(value: date | datetime | str) -> str | None:
    """``YYYY-MM`` of a date, a datetime (in UTC if aware) or their ISO strings."""
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value
        return f"{moment:%Y-%m}"
    if isinstance(value, date):
        return f"{value:%Y-%m}"
    text = value.strip()
    try:
        if len(text) > 10:
            return date_to_month(datetime.fromisoformat(text))
        return date_to_month(date.fromisoformat(text))
    except ValueError:
        return None


_EN_CITY_RE: Final = re.compile(r"(?:[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|\d{4,5})")


def city_from_address(address: str) -> str | None:
    """The city of an address: ``上海市`` / ``苏州市`` for Chinese ones, ``Berlin`` for others."""
    text = address.strip()
    municipality = _MUNICIPALITY_RE.match(text)
    if municipality:
        return municipality.group(1)
    m = re.match(
        r"^(?:[\u4e00-\u9fff]{2,8}?(?:省|自治区))?([\u4e00-\u9fff]{2,6}?(?:市|自治州|地区|盟))",
        text,
    )
    if m:
        return m.group(1)
    if "," in text:
        last = text.rpartition(",")[2]
        city = _EN_CITY_RE.sub("", last).strip()
        if city and re.fullmatch(r"[^\d]{2,40}", city):
            return city
    return None


def coarse_grid(value: float, step: float = 0.1) -> float:
    """Floor a latitude or longitude to a ``step``-degree grid (0.1° is about 11 km)."""
    if not math.isfinite(value):
        raise TransformInputError("a coordinate must be a finite number")
    cells = math.floor(round(value / step, 9))
    return round(cells * step, 6)


_GEOHASH_ALPHABET: Final = "0123456789bcdefghjkmnpqrstuvwxyz"


def geohash(lat: float, lon: float, precision: int = 5) -> str:
    """The geohash cell of a point; precision 5 is about 4.9 km x 4.9 km."""
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise TransformInputError("latitude or longitude out of range")
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    bits: list[int] = []
    even = True
    while len(bits) < precision * 5:
        if even:
            mid = (lon_lo + lon_hi) / 2
            bits.append(int(lon >= mid))
            lon_lo, lon_hi = (mid, lon_hi) if lon >= mid else (lon_lo, mid)
        else:
            mid = (lat_lo + lat_hi) / 2
            bits.append(int(lat >= mid))
            lat_lo, lat_hi = (mid, lat_hi) if lat >= mid else (lat_lo, mid)
        even = not even
    return "".join(
        _GEOHASH_ALPHABET[int("".join(map(str, bits[i : i + 5])), 2)]
        for i in range(0, len(bits), 5)
    )


def amount_band(value: float, width: int) -> str:
    """The band ``"lo-hi"`` of width ``width`` holding ``value`` (``lo <= value < hi``)."""
    if width <= 0:
        raise TransformInputError("a band width is positive")
    if not math.isfinite(value):
        raise TransformInputError("an amount must be a finite number")
    lo = math.floor(value / width) * width
    return f"{lo}-{lo + width}"


_BAND_WIDTH: Final = {"income": 5_000, "claim": 5_000, "insurance": 2_000}
_DEFAULT_MONEY_BAND: Final = 50_000
_ODOMETER_BAND: Final = 10_000


def _generalize(category: str, field: str, value: Any, as_of: date) -> Any:
    lowered = field.lower()
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if category == "location_precise" or lowered.endswith(("lat", "lon", "lng", "latitude",
                                                               "longitude")):  # fmt: skip
            return coarse_grid(float(value)) if math.isfinite(value) else None
        if not math.isfinite(value):
            return None
        if "odometer" in lowered or lowered.endswith("_km"):
            return amount_band(value, _ODOMETER_BAND)
        return amount_band(value, _BAND_WIDTH.get(category, _DEFAULT_MONEY_BAND))
    if isinstance(value, date | datetime):
        if "birth" in lowered:
            return age_band(value if not isinstance(value, datetime) else value.date(), as_of=as_of)
        return date_to_month(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if is_valid_prc_id(text.upper()):
        return age_band(text, as_of=as_of)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return age_band(text, as_of=as_of) if "birth" in lowered else date_to_month(text)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ].+", text):
        return date_to_month(text)
    if "address" in lowered or category in ("contact", "location_coarse", "location_precise"):
        return city_from_address(text)
    return None


# ------------------------------------------------------------------------------------- dispatch


def suppress(value: Any) -> None:
    """Suppression: the value is withheld (``None``)."""
    return None


def apply_transform(
    action: str, category: str, value: Any, *, field: str, as_of: date | None = None
) -> Any:
    """Apply the obligation ``action`` (``mask``, ``generalize`` or ``suppress``) to ``value``.

    ``category`` is the field's data category from the dataset schema, ``field`` its name; both
    only steer the choice of rule (see the module docstring). ``as_of`` fixes the reference date
    for age bands (default: today in UTC). ``None`` stays ``None``. An unknown action raises
    :class:`UnknownTransformError`; a value that cannot be de-identified is suppressed.
    """
    if action not in ("mask", "generalize", "suppress"):
        raise UnknownTransformError(f"unknown transform action {action!r}")
    if value is None or action == "suppress":
        return None
    if action == "mask":
        return _mask_string(category, field, value) if isinstance(value, str) else None
    return _generalize(category, field, value, as_of or datetime.now(UTC).date())
