"""A generated, labelled corpus of claim-, service- and dealer-note-style sentences.

English and Chinese sentences with planted identifiers (gold labels with character offsets) and
look-alikes that must *not* be reported: VINs and PRC ID numbers with a wrong check character,
order, invoice and repair-order numbers (some Luhn-valid, some shaped like a mobile number), part
numbers, timestamps and amounts. Deterministic from a seed; no data files.

Entity types follow the guard (:mod:`hub.deid.guard`): VIN, PRC_ID, CN_PLATE, CN_MOBILE,
CREDIT_CARD, IBAN_CODE, EMAIL_ADDRESS, PHONE_NUMBER (non-Chinese numbers), PERSON (English names;
Chinese names next to an honorific), LOCATION (English city names), GPS_COORDINATE.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from hub.deid.identifiers import (
    PLATE_PROVINCES,
    iban_check_digits,
    luhn_check_digit,
    prc_id_check_char,
    vin_check_digit,
)

__all__ = ["Gold", "LabelledText", "generate_corpus"]


@dataclass(frozen=True, slots=True)
class Gold:
    entity: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class LabelledText:
    text: str
    language: Literal["en", "zh"]
    gold: tuple[Gold, ...]


_VIN_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
_WMIS: Final = ("LGX", "LRW", "LSV", "LFV", "L6T", "LGW", "LVG", "LFM", "LVH", "LHG", "LBV",
                "1FA", "1C4", "5YJ", "2HG", "3VW")  # fmt: skip
_EU_WMIS: Final = ("WBA", "WP1", "WDD", "WVW", "VF1", "ZFA", "SAL", "YV1")
_REGIONS: Final = (
    "110105", "310115", "440106", "440305", "320506", "330106", "510107",
    "420106", "370202", "610113", "500103", "350203", "210202", "230103",
)  # fmt: skip
_MOBILE_PREFIXES: Final = ("138", "139", "135", "150", "152", "158", "186", "187", "188", "189",
                           "176", "199", "181", "133", "166")  # fmt: skip
_EN_FIRST: Final = ("James", "Oliver", "Emily", "Sophie", "Lukas", "Anna", "Michael", "Sarah",
                    "Thomas", "Laura", "Daniel", "Hannah", "David", "Jessica")  # fmt: skip
_EN_LAST: Final = ("Smith", "Taylor", "Brown", "Wilson", "Miller", "Schmidt", "Fischer",
                   "Johnson", "Walker", "Clark", "Evans", "Becker")  # fmt: skip
_CITIES: Final = ("Shanghai", "Beijing", "Shenzhen", "Guangzhou", "Hangzhou", "London", "Berlin",
                  "Munich", "Chengdu")  # fmt: skip
_ZH_SURNAMES: Final = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
_ZH_GIVEN: Final = "伟强磊军洋勇杰涛明超芳娜敏静丽艳娟霞婷雪"
_PARTS: Final = ("5Q0-615-301-H", "04E 115 561 H", "3Q0 698 151 A", "90915-YZZE1", "8W0-807-065")


# --------------------------------------------------------------------------------------- values


def _vin(rng: random.Random) -> str:
    wmi = rng.choice(_WMIS)
    body = "".join(rng.choice(_VIN_ALPHABET) for _ in range(8)) + "".join(
        rng.choice("0123456789") for _ in range(6)
    )
    draft = wmi + body
    return draft[:8] + vin_check_digit(draft) + draft[9:]


def _eu_vin(rng: random.Random) -> str:
    draft = (
        rng.choice(_EU_WMIS)
        + "".join(rng.choice(_VIN_ALPHABET) for _ in range(8))
        + "".join(rng.choice("0123456789") for _ in range(6))
    )
    return draft


def _bad_vin(rng: random.Random) -> str:
    vin = _vin(rng)
    wrong = rng.choice([c for c in "0123456789X" if c != vin[8]])
    return vin[:8] + wrong + vin[9:]


def _prc_id(rng: random.Random) -> str:
    body = (
        rng.choice(_REGIONS)
        + f"{rng.randint(1950, 2004)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        + f"{rng.randint(0, 999):03d}"
    )
    return body + prc_id_check_char(body)


def _bad_prc_id(rng: random.Random) -> str:
    good = _prc_id(rng)
    return good[:17] + rng.choice([c for c in "0123456789X" if c != good[17]])


def _plate(rng: random.Random) -> str:
    prov = rng.choice(sorted(PLATE_PROVINCES))
    auth = rng.choice("ABCDEFGHJKLMN")
    sep = rng.choice(("", "", "·"))
    kind = rng.random()
    if kind < 0.3:
        serial = (
            rng.choice("DF") + rng.choice("0123456789ABCDEFGHJK") + f"{rng.randint(0, 9999):04d}"
        )
    elif kind < 0.4:
        serial = f"{rng.randint(0, 99999):05d}" + rng.choice("DF")
    else:
        digits = list(f"{rng.randint(0, 99999):05d}")
        for pos in rng.sample(range(5), rng.choice((0, 1, 1, 2))):
            digits[pos] = rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ")
        serial = "".join(digits)
    return f"{prov}{auth}{sep}{serial}"


def _mobile(rng: random.Random) -> str:
    n = rng.choice(_MOBILE_PREFIXES) + f"{rng.randint(0, 99_999_999):08d}"
    style = rng.randrange(5)
    if style == 0:
        return n
    if style == 1:
        return f"{n[:3]} {n[3:7]} {n[7:]}"
    if style == 2:
        return f"{n[:3]}-{n[3:7]}-{n[7:]}"
    if style == 3:
        return f"+86 {n[:3]} {n[3:7]} {n[7:]}"
    return f"+86{n}"


def _card(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        body = rng.choice(("622202", "622848", "621700", "625807")) + "".join(
            rng.choice("0123456789") for _ in range(12)
        )
    elif kind == 1:
        body = rng.choice(("622588", "623058", "621483")) + "".join(
            rng.choice("0123456789") for _ in range(9)
        )
    elif kind == 2:
        body = "4" + "".join(rng.choice("0123456789") for _ in range(14))
    else:
        body = rng.choice(("51", "52", "55")) + "".join(rng.choice("0123456789") for _ in range(13))
    card = body + luhn_check_digit(body)
    if rng.random() < 0.3 and len(card) == 16:
        return " ".join(card[i : i + 4] for i in range(0, 16, 4))
    return card


def _bad_card(rng: random.Random) -> str:
    card = _card(rng).replace(" ", "")
    return card[:-1] + str((int(card[-1]) + rng.randint(1, 9)) % 10)


def _iban(rng: random.Random) -> str:
    country = rng.choice(("DE", "GB", "FR"))
    if country == "DE":
        bban = "".join(rng.choice("0123456789") for _ in range(18))
    elif country == "GB":
        bban = rng.choice(("NWBK", "BARC", "HBUK")) + "".join(
            rng.choice("0123456789") for _ in range(14)
        )
    else:
        bban = "".join(rng.choice("0123456789") for _ in range(23))
    iban = country + iban_check_digits(country, bban) + bban
    if rng.random() < 0.5:
        return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban


def _email(rng: random.Random) -> str:
    local = rng.choice(("wang.wei", "lina88", "james.smith", "s.fischer", "zhangmin", "dt2019"))
    return f"{local}{rng.randint(1, 99)}@{rng.choice(('qq.com', '163.com', 'gmail.com', 'web.de'))}"


def _foreign_phone(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"+44 7700 900{rng.randint(0, 999):03d}"
    return f"+49 151 {rng.randint(1000_0000, 9999_9999)}"


def _en_name(rng: random.Random) -> str:
    return f"{rng.choice(_EN_FIRST)} {rng.choice(_EN_LAST)}"


def _zh_name(rng: random.Random) -> str:
    return rng.choice(_ZH_SURNAMES) + "".join(
        rng.choice(_ZH_GIVEN) for _ in range(rng.randint(0, 2))
    )


def _gps(rng: random.Random) -> str:
    return f"{rng.uniform(22, 41):.6f}, {rng.uniform(102, 124):.6f}"


def _order_number(rng: random.Random) -> str:
    return f"20{rng.randint(23, 26)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}" + "".join(
        rng.choice("0123456789") for _ in range(rng.choice((6, 8, 10)))
    )


def _luhn_order(rng: random.Random) -> str:
    body = rng.choice(("62", "4", "55")) + "".join(rng.choice("0123456789") for _ in range(13))
    return body + luhn_check_digit(body)


def _battery_serial(rng: random.Random) -> str:
    """A 17-character battery-pack serial: VIN-shaped, but letters among its last four."""
    head = "0" + "".join(rng.choice(_VIN_ALPHABET) for _ in range(12))
    tail = list("".join(rng.choice("0123456789") for _ in range(4)))
    tail[rng.randrange(4)] = rng.choice("ABCDEFGH")
    return head + "".join(tail)


def _mobile_like_order(rng: random.Random) -> str:
    return rng.choice(_MOBILE_PREFIXES) + f"{rng.randint(0, 99_999_999):08d}"


# ------------------------------------------------------------------------------------ templates

# Slots: {NAME:ENTITY} plants a gold value; {NAME} plants a look-alike (no gold label).
_POSITIVE: Final[dict[str, Callable[[random.Random], str]]] = {
    "VIN": _vin,
    "EUVIN": _eu_vin,
    "PRC_ID": _prc_id,
    "CN_PLATE": _plate,
    "CN_MOBILE": _mobile,
    "CREDIT_CARD": _card,
    "IBAN_CODE": _iban,
    "EMAIL_ADDRESS": _email,
    "PHONE_NUMBER": _foreign_phone,
    "PERSON": _en_name,
    "ZH_PERSON": _zh_name,
    "LOCATION": lambda rng: rng.choice(_CITIES),
    "GPS_COORDINATE": _gps,
}
_LOOKALIKE: Final[dict[str, Callable[[random.Random], str]]] = {
    "BADVIN": _bad_vin,
    "BADID": _bad_prc_id,
    "BADCARD": _bad_card,
    "ORDER": _order_number,
    "LUHNORDER": _luhn_order,
    "MOBORDER": _mobile_like_order,
    "PART": lambda rng: rng.choice(_PARTS),
    "TRACK": lambda rng: "SF" + "".join(rng.choice("0123456789") for _ in range(12)),
    "BATTERY": _battery_serial,
    "AMOUNT": lambda rng: f"{rng.randint(1, 400) * 500:,}",
    "TIME": lambda rng: (
        f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} "
        f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
    ),
}
_GOLD_ENTITY: Final = {"EUVIN": "VIN", "ZH_PERSON": "PERSON"}

_EN_TEMPLATES: Final = (
    "Insured vehicle {v:CN_PLATE} was rear-ended at a red light; rear bumper damaged.",
    "VIN {v:VIN} checked against the registration certificate, no mismatch.",
    "Chassis number {v:EUVIN} confirmed by the assessor on site.",
    "Claimant ID {v:PRC_ID}, please verify before settlement.",
    "Call the owner back on {v:CN_MOBILE} after 6 pm.",
    "Customer asked us to call {v:CN_MOBILE} regarding the courtesy car.",
    "Refund to card {v:CREDIT_CARD} once the invoice is approved.",
    "Payout to IBAN {v:IBAN_CODE} as requested by the policyholder.",
    "Send the repair estimate to {v:EMAIL_ADDRESS} today.",
    "The driver, {v:PERSON}, reported the accident near {v:LOCATION}.",
    "Contact {v:PERSON} on {v:PHONE_NUMBER} for the survey appointment.",
    "Last GPS fix {v:GPS_COORDINATE} before the collision.",
    "Third-party vehicle {v:CN_PLATE} fled the scene, dashcam footage attached.",
    "Repair order {o:ORDER} opened, part {o:PART} ordered, estimate CNY {o:AMOUNT}.",
    "Order number {o:MOBORDER} for the replacement mirror, delivered {o:TIME}.",
    "Invoice ref {o:LUHNORDER} settled in full, amount CNY {o:AMOUNT}.",
    "Frame number on the old form was {o:BADVIN}, corrected by the dealer.",
    "Previous ID on file {o:BADID} failed the check and was replaced.",
    "Card {o:BADCARD} was declined, a new payment link was sent.",
    "Routine service done: oil and filter changed, brake pads at 60 percent.",
    "Windscreen cracked by a stone on the expressway, replacement requested.",
    "Hail damage to roof and bonnet, photos uploaded at {o:TIME}.",
    "{v:VIN} - rear door dented in the car park.",
    "vin:{v:VIN}; owner tel.{v:CN_MOBILE}",
    "Plate ({v:CN_PLATE}) seen on CCTV; parcel tracking {o:TRACK}.",
    "Battery pack serial {o:BATTERY} replaced under warranty.",
    "Owner: {v:PERSON}\nMobile: {v:CN_MOBILE}\nEmail: {v:EMAIL_ADDRESS}",
    "Refund of CNY {o:AMOUNT} to {v:CREDIT_CARD}, ref {o:ORDER}.",
)  # fmt: skip
_ZH_TEMPLATES: Final = (
    "标的车车牌{v:CN_PLATE}在路口等红灯时被追尾，后保险杠受损。",
    "车架号{v:VIN}已与行驶证核对一致。",
    "报案人身份证号{v:PRC_ID}，请理赔前核实。",
    "车主电话{v:CN_MOBILE}，请下午回电。",
    "客户要求致电{v:CN_MOBILE}安排代步车。",
    "赔款请打入银行卡{v:CREDIT_CARD}。",
    "维修报价已发送至邮箱{v:EMAIL_ADDRESS}。",
    "联系{v:ZH_PERSON}先生确认定损时间。",
    "事故前最后定位坐标{v:GPS_COORDINATE}。",
    "三者车{v:CN_PLATE}逃逸，已提交行车记录仪视频。",
    "维修工单号{o:ORDER}，配件号{o:PART}，报价{o:AMOUNT}元。",
    "订单号{o:MOBORDER}的后视镜已于{o:TIME}送达。",
    "发票流水号{o:LUHNORDER}已结清。",
    "原登记车架号{o:BADVIN}有误，已由经销商更正。",
    "旧证件号{o:BADID}校验失败，已更换。",
    "常规保养：更换机油机滤，刹车片剩余约六成。",
    "高速上被飞石击中，前挡风玻璃开裂，申请更换。",
    "暴雨后车辆涉水，发动机无法启动，已拖至4S店。",
    "车牌{v:CN_PLATE}，车架号{v:VIN}，车主手机{v:CN_MOBILE}。",
    "车牌：{v:CN_PLATE}\n车架号：{v:VIN}\n手机：{v:CN_MOBILE}",
    "（{v:CN_PLATE}）与本车发生剐蹭，快递单号{o:TRACK}。",
    "电池包序列号{o:BATTERY}已在保修期内更换。",
    "{v:CN_MOBILE}是客户的备用号码。",
    "客户身份证{v:PRC_ID}与行驶证一致，订单{o:ORDER}已付款。",
)  # fmt: skip

_SLOT_RE: Final = re.compile(r"\{([vo]):([A-Z_]+)\}")


def _fill(rng: random.Random, template: str, language: Literal["en", "zh"]) -> LabelledText:
    out: list[str] = []
    gold: list[Gold] = []
    pos = 0
    length = 0
    for m in _SLOT_RE.finditer(template):
        literal = template[pos : m.start()]
        out.append(literal)
        length += len(literal)
        kind, name = m.group(1), m.group(2)
        value = (_POSITIVE if kind == "v" else _LOOKALIKE)[name](rng)
        if kind == "v":
            gold.append(Gold(_GOLD_ENTITY.get(name, name), length, length + len(value)))
        out.append(value)
        length += len(value)
        pos = m.end()
    out.append(template[pos:])
    return LabelledText("".join(out), language, tuple(gold))


def generate_corpus(seed: int = 11, size: int = 2_000) -> list[LabelledText]:
    """``size`` labelled sentences (about 55 % English, 45 % Chinese) from ``seed``."""
    rng = random.Random(seed)
    corpus: list[LabelledText] = []
    for _ in range(size):
        if rng.random() < 0.55:
            corpus.append(_fill(rng, rng.choice(_EN_TEMPLATES), "en"))
        else:
            corpus.append(_fill(rng, rng.choice(_ZH_TEMPLATES), "zh"))
    return corpus
