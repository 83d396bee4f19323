"""Validated pattern finders for identifiers in free text (English and Chinese).

Each finder scans raw text with a loose regular expression, then keeps only candidates that pass
the identifier's validation from :mod:`hub.deid.identifiers` (check digits, region codes, dates,
IIN ranges) and scores them with context words in English and Chinese found near the candidate.
They are pure Python, need no NLP model, and work the same on English and Chinese text, which is
why Chinese text is handled by these finders alone (see :mod:`hub.deid.guard`).

Boundaries are ASCII-alphanumeric lookarounds rather than ``\\b``: in Chinese text an identifier
touches CJK characters (``车架号LGX...。``), and CJK characters count as word characters.

Scores (the guard's threshold is :data:`DEFAULT_THRESHOLD`):

=============== =============================================================== ===============
entity          accepted when                                                    score
=============== =============================================================== ===============
VIN             17 VIN characters, >=1 letter, >=5 digits, last 4 numeric, not  1.0
                starting with 0; check digit right (required where the region
                mandates it: WMI ``1``-``5``, ``L``); otherwise                 0.55 / +context 0.95
PRC_ID          18 characters valid per :func:`is_valid_prc_id` (6-8-4 spacing  1.0
                tolerated)
CN_PLATE        :func:`is_valid_cn_plate`                                        0.85 / +context 1.0
CN_MOBILE       :func:`is_valid_cn_mobile`, 3-4-4 spacing tolerated             0.85 / +context 1.0,
                                                                                 negative 0.3
CREDIT_CARD     13-19 digits (groups allowed), Luhn, a known IIN range and      0.9 / +context 1.0,
                length (Visa, Mastercard, UnionPay, Amex, JCB, Discover)         negative 0.3
IBAN_CODE       :func:`is_valid_iban` (upper case, spaces allowed)              1.0
PHONE_NUMBER    ``+``/``00`` international format, 8-15 digits      0.6 / +context 0.95,
                                                                                 negative 0.3
GPS_COORDINATE  "lat, lon" decimal pair with >=4 decimals, inside bounds        0.6 / +context 0.95
PERSON          Chinese surname + 0-2 characters + 先生/女士/小姐, or a name      0.75
                after 姓名/车主/客户/报案人/联系人; 2-3 capitalised Latin words  0.7
                after Mr/Ms/Dr, Owner:, Name:, driver, customer, Contact
=============== =============================================================== ===============

"Negative" context (order, invoice, part numbers: 订单, 工单, 单号, 配件...) within 14
characters before a number lowers its score below the threshold unless a context word is nearer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from hub.deid.identifiers import (
    IBAN_LENGTHS,
    PLATE_PROVINCES,
    is_valid_cn_mobile,
    is_valid_cn_plate,
    is_valid_iban,
    is_valid_prc_id,
    is_valid_vin,
    luhn_valid,
    vin_check_digit,
    vin_check_digit_applies,
)

__all__ = [
    "CN_MOBILE",
    "CN_PLATE",
    "CREDIT_CARD",
    "DEFAULT_THRESHOLD",
    "FINDERS",
    "GPS_COORDINATE",
    "IBAN_CODE",
    "PATTERN_ENTITIES",
    "PERSON",
    "PHONE_NUMBER",
    "PRC_ID",
    "VIN",
    "Span",
    "find_all",
    "find_cards",
    "find_cn_mobiles",
    "find_cn_plates",
    "find_gps",
    "find_intl_phones",
    "rescore_phone",
    "find_ibans",
    "find_prc_ids",
    "find_vins",
    "find_person_names",
    "resolve_overlaps",
]

VIN: Final = "VIN"
PRC_ID: Final = "PRC_ID"
CN_PLATE: Final = "CN_PLATE"
CN_MOBILE: Final = "CN_MOBILE"
PHONE_NUMBER: Final = "PHONE_NUMBER"
CREDIT_CARD: Final = "CREDIT_CARD"
IBAN_CODE: Final = "IBAN_CODE"
GPS_COORDINATE: Final = "GPS_COORDINATE"
PERSON: Final = "PERSON"

DEFAULT_THRESHOLD: Final = 0.5


@dataclass(frozen=True, slots=True)
class Span:
    """A finding: entity type, character offsets ``[start, end)`` and a confidence score."""

    entity: str
    start: int
    end: int
    score: float


# --------------------------------------------------------------------------------------- context

_CONTEXT: Final[dict[str, tuple[str, ...]]] = {
    VIN: ("vin", "chassis", "frame no", "vehicle identification", "车架号", "车架", "车辆识别",
          "识别代号", "底盘号", "vin码"),
    PRC_ID: ("id", "identity", "id card", "id no", "身份证", "证件号", "公民身份号码", "身份号"),
    CN_PLATE: ("plate", "licence", "license", "registration", "车牌", "牌照", "号牌", "车号"),
    CN_MOBILE: ("phone", "mobile", "call", "tel", "cell", "contact", "whatsapp", "wechat",
                "电话", "手机", "致电", "回电", "联系", "来电", "微信"),
    CREDIT_CARD: ("card", "visa", "mastercard", "unionpay", "debit", "credit", "account",
                  "卡号", "银行卡", "信用卡", "借记卡", "储蓄卡", "银联", "账号", "还款", "账户"),
    PHONE_NUMBER: ("phone", "mobile", "call", "tel", "cell", "contact", "whatsapp", "wechat",
                   "电话", "手机", "致电", "回电", "联系", "来电", "微信"),
    GPS_COORDINATE: ("gps", "lat", "lon", "coordinates", "location", "position", "坐标",
                     "经纬度", "定位", "位置"),
}  # fmt: skip
_NEGATIVE: Final = ("order", "invoice", "ref", "part", "ticket", "tracking", "serial", "订单",
                    "工单", "单号", "配件", "零件", "编号", "发票", "流水", "批次")  # fmt: skip
_BEFORE: Final = 28
_AFTER: Final = 12


def _cue_distance(window: str, words: Iterable[str], *, before: bool) -> int | None:
    """Distance in characters between the candidate and the nearest cue word in ``window``."""
    best: int | None = None
    for word in words:
        pattern = rf"(?<![a-z]){re.escape(word)}(?![a-z])" if word.isascii() else re.escape(word)
        for m in re.finditer(pattern, window):
            d = len(window) - m.end() if before else m.start()
            if best is None or d < best:
                best = d
    return best


def _context_score(
    text: str, start: int, end: int, entity: str, *, base: float, hit: float, negative: float
) -> float:
    """``hit`` if a context word of ``entity`` is near, ``negative`` if an order/part cue is
    nearer than any context word (looking back only), else ``base``."""
    words = _CONTEXT[entity]
    before = text[max(0, start - _BEFORE) : start].lower()
    after = text[end : end + _AFTER].lower()
    pos = _cue_distance(before, words, before=True)
    pos_after = _cue_distance(after, words, before=False)
    neg = _cue_distance(text[max(0, start - 14) : start].lower(), _NEGATIVE, before=True)
    if neg is not None and (pos is None or neg < pos):
        return negative
    if pos is not None or pos_after is not None:
        return hit
    return base


def _has_context(text: str, start: int, end: int, words: Iterable[str]) -> bool:
    before = text[max(0, start - _BEFORE) : start].lower()
    after = text[end : end + _AFTER].lower()
    return (
        _cue_distance(before, words, before=True) is not None
        or _cue_distance(after, words, before=False) is not None
    )


# ------------------------------------------------------------------------------------------- VIN

_VIN_RE: Final = re.compile(r"(?<![A-Za-z0-9])[A-HJ-NPR-Z0-9]{17}(?![A-Za-z0-9])")


def find_vins(text: str) -> list[Span]:
    out: list[Span] = []
    for m in _VIN_RE.finditer(text):
        vin = m.group()
        digits = sum(c.isdigit() for c in vin)
        if digits < 5 or digits == 17 or vin[0] == "0" or not vin[13:].isdigit():
            continue  # no WMI region starts with 0; ISO 3779 ends every VIN in four digits
        if not is_valid_vin(vin):
            continue
        if vin[8] == vin_check_digit(vin):
            score = 1.0
        elif vin_check_digit_applies(vin):
            continue  # a North-American/Chinese VIN with a wrong check digit is a look-alike
        else:
            score = 0.95 if _has_context(text, m.start(), m.end(), _CONTEXT[VIN]) else 0.55
        out.append(Span(VIN, m.start(), m.end(), score))
    return out


# ---------------------------------------------------------------------------------------- PRC ID

_PRC_RE: Final = re.compile(r"(?<![A-Za-z0-9])\d{6} ?\d{8} ?\d{3}[0-9Xx](?![A-Za-z0-9])")


def find_prc_ids(text: str) -> list[Span]:
    return [
        Span(PRC_ID, m.start(), m.end(), 1.0)
        for m in _PRC_RE.finditer(text)
        if is_valid_prc_id(m.group().replace(" ", ""))
    ]


# ---------------------------------------------------------------------------------------- plates

_PLATE_RE: Final = re.compile(
    "(?<![A-Za-z0-9])[" + "".join(PLATE_PROVINCES) + r"][A-HJ-NP-Z][·•・ ]?[A-HJ-NP-Z0-9]{5,6}"
    r"(?![A-Za-z0-9])"
)


def find_cn_plates(text: str) -> list[Span]:
    out: list[Span] = []
    for m in _PLATE_RE.finditer(text):
        if not is_valid_cn_plate(m.group()):
            continue
        ctx = _has_context(text, m.start(), m.end(), _CONTEXT[CN_PLATE])
        out.append(Span(CN_PLATE, m.start(), m.end(), 1.0 if ctx else 0.85))
    return out


# --------------------------------------------------------------------------------------- mobiles

_MOBILE_RE: Final = re.compile(
    r"(?<![A-Za-z0-9+])(?:(?:\+86|0086|86)[ -]?)?1[3-9]\d(?:(?:[ -]?\d{4}){2}|[ -]\d{8})"
    r"(?![A-Za-z0-9])"
)


_FOREIGN_PREFIX_RE: Final = re.compile(r"(?:\+|(?<![0-9])00)(?!86)\d{1,3}[ \-]?$")


def find_cn_mobiles(text: str) -> list[Span]:
    out: list[Span] = []
    for m in _MOBILE_RE.finditer(text):
        if not is_valid_cn_mobile(m.group()) or _FOREIGN_PREFIX_RE.search(text, 0, m.start()):
            continue  # "+49 151 99955031" is a German number, not a Chinese one
        score = _context_score(
            text, m.start(), m.end(), CN_MOBILE, base=0.85, hit=1.0, negative=0.3
        )
        out.append(Span(CN_MOBILE, m.start(), m.end(), score))
    return out


# -------------------------------------------------------------------------- international phones

_INTL_PHONE_RE: Final = re.compile(
    r"(?<![A-Za-z0-9+])(?:\+|00)[1-9]\d{0,2}(?:[ \-.]?\(?\d{1,5}\)?){2,6}(?![A-Za-z0-9])"
)


def find_intl_phones(text: str) -> list[Span]:
    """Numbers written in international format (``+44 7700 900123``, ``0049 151 ...``).

    E.164 allows 8-15 digits after the prefix; anything in that range, written with a ``+`` or
    ``00`` prefix, is taken as a phone number (0.6; with context 0.95; after an order cue 0.3).
    Chinese mobiles in this form are also CN_MOBILE, which wins the overlap.
    """
    out: list[Span] = []
    for m in _INTL_PHONE_RE.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if m.group().startswith("00"):
            digits = digits[2:]
        if not 8 <= len(digits) <= 15:
            continue
        score = _context_score(
            text, m.start(), m.end(), PHONE_NUMBER, base=0.6, hit=0.95, negative=0.3
        )
        out.append(Span(PHONE_NUMBER, m.start(), m.end(), score))
    return out


def rescore_phone(text: str, span: Span) -> Span:
    """Re-score another recognizer's phone finding with the bilingual context words: at least
    0.9 with a context word near, 0.2 after an order/part cue, else unchanged."""
    score = _context_score(
        text,
        span.start,
        span.end,
        PHONE_NUMBER,
        base=span.score,
        hit=max(0.9, span.score),
        negative=0.2,
    )
    return Span(span.entity, span.start, span.end, score)


# ----------------------------------------------------------------------------------------- cards

_CARD_RE: Final = re.compile(r"(?<![A-Za-z0-9])\d(?:[ -]?\d){12,18}(?![A-Za-z0-9])")


def _card_brand_ok(digits: str) -> bool:
    n = len(digits)
    p2 = int(digits[:2])
    p4 = int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16
    if p2 in (34, 37):
        return n == 15
    if p2 == 62 or p2 == 81:  # UnionPay (incl. the 81 range)
        return 16 <= n <= 19
    if p2 == 35 and 3528 <= p4 <= 3589:  # JCB
        return 16 <= n <= 19
    if p4 == 6011 or p2 == 65 or 644 <= int(digits[:3]) <= 649:  # Discover
        return 16 <= n <= 19
    return False


def find_cards(text: str) -> list[Span]:
    out: list[Span] = []
    for m in _CARD_RE.finditer(text):
        raw = m.group()
        digits = raw.replace(" ", "").replace("-", "")
        if not luhn_valid(digits):
            continue
        if not _card_brand_ok(digits):
            # Luhn-valid but no card brand has this prefix and length: negative evidence that
            # vetoes generic card recognizers on the same digits (score below any threshold)
            out.append(Span(CREDIT_CARD, m.start(), m.end(), 0.05))
            continue
        score = _context_score(
            text, m.start(), m.end(), CREDIT_CARD, base=0.9, hit=1.0, negative=0.3
        )
        out.append(Span(CREDIT_CARD, m.start(), m.end(), score))
    return out


# ------------------------------------------------------------------------------------------ IBAN

_IBAN_START: Final = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2})\d{2}[ ]?[A-Z0-9]")


def find_ibans(text: str) -> list[Span]:
    out: list[Span] = []
    for m in _IBAN_START.finditer(text):
        length = IBAN_LENGTHS.get(m.group(1))
        if length is None:
            continue
        i, seen = m.start(), 0
        while i < len(text) and seen < length:
            ch = text[i]
            if ch.isascii() and ch.isalnum() and (ch.isdigit() or ch.isupper()):
                seen += 1
            elif ch != " " or i + 1 >= len(text) or text[i + 1] == " ":
                break
            i += 1
        if seen != length or (i < len(text) and text[i].isascii() and text[i].isalnum()):
            continue
        if is_valid_iban(text[m.start() : i]):
            out.append(Span(IBAN_CODE, m.start(), i, 1.0))
    return out


# ------------------------------------------------------------------------------------------- GPS

_GPS_RE: Final = re.compile(
    r"(?<![\d.])([-+]?\d{1,2}\.\d{4,})°?\s*[NS]?\s*[,，/;]?\s*([-+]?\d{1,3}\.\d{4,})°?\s*[EW]?"
    r"(?![\d.])"
)


def find_gps(text: str) -> list[Span]:
    out: list[Span] = []
    for m in _GPS_RE.finditer(text):
        lat, lon = float(m.group(1)), float(m.group(2))
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            continue
        ctx = _has_context(text, m.start(), m.end(), _CONTEXT[GPS_COORDINATE])
        out.append(Span(GPS_COORDINATE, m.start(), m.end(), 0.95 if ctx else 0.6))
    return out


# ------------------------------------------------------------------------ names without NER

_ZH_SURNAMES: Final = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾"
    "丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤"
    "尹黎易常武乔贺赖龚文"
)
_ZH_COMPOUND: Final = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "令狐", "慕容")
_HAN: Final = r"[\u4e00-\u9fff]"
_ZH_HONORIFIC_RE: Final = re.compile(
    rf"(?:{'|'.join(_ZH_COMPOUND)}|[{_ZH_SURNAMES}]){_HAN}{{0,2}}?(?=先生|女士|小姐|师傅)"
)
_ZH_LABEL_RE: Final = re.compile(
    rf"(?:姓名|车主|客户|报案人|联系人|投保人|被保险人|驾驶员|借款人)[:：\s]?"
    rf"((?:{'|'.join(_ZH_COMPOUND)}|[{_ZH_SURNAMES}]){_HAN}{{1,2}})"
    r"(?=[，。,;；\s（(]|先生|女士|$)"
)


_EN_LABEL_RE: Final = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Miss|Dr)\.?|\b(?:[Oo]wner|[Nn]ame|[Cc]ustomer|[Cc]laimant|[Dd]river|"
    r"[Pp]olicyholder|[Cc]ontact)\b[:,]?)[ \t]+"
    r"([A-Z][a-zà-öø-ÿ'\-]+(?:[ \t]+[A-Z][a-zà-öø-ÿ'\-]+){1,2})\b"
)


def find_person_names(text: str) -> list[Span]:
    """Personal names found without NER: Chinese names next to an honorific or after a role
    label, and capitalised Latin names after an English title or role label
    (``Mr``, ``Owner:``, ``driver,``, ``Contact``)."""
    out = [Span(PERSON, m.start(), m.end(), 0.75) for m in _ZH_HONORIFIC_RE.finditer(text)]
    out += [Span(PERSON, m.start(1), m.end(1), 0.75) for m in _ZH_LABEL_RE.finditer(text)]
    out += [Span(PERSON, m.start(1), m.end(1), 0.7) for m in _EN_LABEL_RE.finditer(text)]
    return out


# ------------------------------------------------------------------------------------------- all

FINDERS: Final[dict[str, Callable[[str], list[Span]]]] = {
    VIN: find_vins,
    PRC_ID: find_prc_ids,
    CN_PLATE: find_cn_plates,
    CN_MOBILE: find_cn_mobiles,
    CREDIT_CARD: find_cards,
    IBAN_CODE: find_ibans,
    GPS_COORDINATE: find_gps,
    PHONE_NUMBER: find_intl_phones,
}
"""The validated pattern finders by entity type (language-independent)."""

PATTERN_ENTITIES: Final = frozenset(FINDERS)
_PRIORITY: Final = {
    e: i
    for i, e in enumerate(
        (PRC_ID, VIN, IBAN_CODE, CN_PLATE, CN_MOBILE, CREDIT_CARD, GPS_COORDINATE, PHONE_NUMBER)
    )
}


def resolve_overlaps(spans: Iterable[Span]) -> list[Span]:
    """Keep the best of overlapping spans: higher score first, then the longer span.

    Ties go to the more specific entity (PRC_ID before CREDIT_CARD). A specific, validated
    finding (a VIN scored 1.0) thus wins over a generic one on the same characters (spaCy's
    PERSON, Presidio's PHONE_NUMBER). The result is sorted by position.
    """
    kept: list[Span] = []
    ranked = sorted(
        spans, key=lambda s: (-s.score, -(s.end - s.start), _PRIORITY.get(s.entity, 99), s.start)
    )
    for s in ranked:
        if all(s.end <= k.start or s.start >= k.end for k in kept):
            kept.append(s)
    return sorted(kept, key=lambda s: s.start)


def find_all(
    text: str,
    entities: Sequence[str] | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    zh_names: bool = False,
) -> list[Span]:
    """Every validated finding in ``text`` at or above ``threshold``, overlaps resolved."""
    spans: list[Span] = []
    for entity, finder in FINDERS.items():
        if entities is None or entity in entities:
            spans.extend(finder(text))
    if zh_names and (entities is None or PERSON in entities):
        spans.extend(find_person_names(text))
    return resolve_overlaps(s for s in spans if s.score >= threshold)
