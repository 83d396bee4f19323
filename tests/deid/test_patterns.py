"""Validated finders: planted identifiers are found in any surrounding text; look-alikes are not."""

from __future__ import annotations

import string
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.deid.identifiers import (
    PLATE_PROVINCES,
    luhn_check_digit,
    prc_id_check_char,
    vin_check_digit,
)
from hub.deid.patterns import DEFAULT_THRESHOLD, Span, find_all, resolve_overlaps

_VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
# Surrounding text that never creates an ASCII letter/digit next to the identifier.
_filler = st.text(alphabet="车架号牌电话身份证，。：: 的了是在 call VIN plate\n", max_size=20).map(
    lambda s: s if not s or not s[-1].isalnum() else s + " "
)


def _found(text: str, entity: str, value: str) -> bool:
    start = text.index(value)
    return any(
        s.entity == entity and s.start == start and s.end == start + len(value)
        for s in find_all(text)
    )


@given(_filler, st.text(alphabet=_VIN_CHARS, min_size=17, max_size=17), _filler)
def test_vin_with_check_digit_found(before: str, draft: str, after: str) -> None:
    # A Chinese VIN (L...) numbers its last five characters (as North America's do), so it has
    # at least five digits whatever the rest and its check digit (``X`` is one) are; a
    # 17-character run with fewer is not taken for a VIN.
    draft = "L" + draft[1:12] + "00123"
    vin = draft[:8] + vin_check_digit(draft) + draft[9:]
    assert _found(f"{before}{vin}{' ' + after if after[:1].isalnum() else after}", "VIN", vin)


@given(
    _filler,
    st.sampled_from(["110105", "440305", "650102"]),
    st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)),
    _filler,
)
def test_prc_id_found(before: str, region: str, birth: date, after: str) -> None:
    body = f"{region}{birth:%Y%m%d}123"
    value = body + prc_id_check_char(body)
    text = f"{before}{value}{' ' + after if after[:1].isalnum() else after}"
    assert _found(text, "PRC_ID", value)


@given(
    _filler,
    st.sampled_from(sorted(PLATE_PROVINCES)),
    st.sampled_from("ABCDEFGHJKLMN"),
    st.sampled_from(["", "·"]),
    st.integers(min_value=0, max_value=99_999),
    _filler,
)
def test_plate_found(before: str, prov: str, auth: str, sep: str, n: int, after: str) -> None:
    plate = f"{prov}{auth}{sep}{n:05d}"
    assert _found(
        f"{before}{plate}{' ' + after if after[:1].isalnum() else after}", "CN_PLATE", plate
    )


@given(
    _filler,
    st.integers(min_value=3, max_value=9),
    st.integers(min_value=0, max_value=999_999_999),
    st.sampled_from(["{}", "+86{}", "+86 {}", "{a} {b} {c}", "{a}-{b}-{c}"]),
    _filler,
)
def test_cn_mobile_found(before: str, second: int, rest: int, fmt: str, after: str) -> None:
    n = f"1{second}{rest:09d}"
    value = fmt.format(n, a=n[:3], b=n[3:7], c=n[7:])
    text = f"{before}{value}{' ' + after if after[:1].isalnum() else after}"
    assert _found(text, "CN_MOBILE", value)


@given(
    _filler,
    st.sampled_from(["622202", "621700", "625807", "4", "51", "55"]),
    st.text(alphabet=string.digits, min_size=12, max_size=12),
    st.booleans(),
    _filler,
)
def test_card_found(before: str, prefix: str, middle: str, long: bool, after: str) -> None:
    body = (prefix + middle + ("000" if long and prefix.startswith("62") else ""))[:18]
    if prefix.startswith(("4", "5")):
        body = (prefix + middle + "000")[:15]
    card = body + luhn_check_digit(body)
    assert _found(
        f"{before}{card}{' ' + after if after[:1].isalnum() else after}", "CREDIT_CARD", card
    )


@given(st.text(alphabet=string.digits, min_size=13, max_size=19))
def test_luhn_invalid_digits_never_a_card(digits: str) -> None:
    fixed = digits[:-1] + str((int(luhn_check_digit(digits[:-1])) + 1) % 10)
    assert not [s for s in find_all(f"no. {fixed}") if s.entity == "CREDIT_CARD"]


@pytest.mark.parametrize(
    "text",
    [
        "车架号LGXC16DH0LA341430",  # wrong check digit (Chinese VIN)
        "VIN 1M8GDM9A1KP042788",  # wrong check digit (North American VIN)
        "身份证号11010519491231002",  # 17 digits
        "旧证件号110105194912310021",  # wrong check character
        "维修工单号202512068269596569",  # 18-digit order number
        "订单号13800138000",  # mobile-shaped order number
        "order number 13800138000",
        "Invoice ref 6222021234567890128 settled",  # Luhn-valid, after an invoice cue
        "part 5Q0-615-301-H and 04E 115 561 H",
        "京A1234 港A12345 京I12345",
        "at 2025-03-01 14:32, CNY 128,000",
        "IBAN DE89370400440532013001",
    ],
)
def test_look_alikes_not_found(text: str) -> None:
    assert find_all(text) == []


def test_context_words_lift_ambiguous_vins() -> None:
    bare = find_all("WVWZZZ1JZXW000001")
    with_context = find_all("chassis WVWZZZ1JZXW000001")
    assert bare[0].score < with_context[0].score


def test_zh_names_with_honorific_or_label() -> None:
    text = "联系王伟先生；车主：欧阳娜娜，客户李明。"
    names = [text[s.start : s.end] for s in find_all(text, zh_names=True)]
    assert names == ["王伟", "欧阳娜娜", "李明"]


def test_resolve_overlaps_prefers_score_then_length_then_specific() -> None:
    spans = [Span("PERSON", 0, 10, 0.85), Span("VIN", 2, 19, 1.0), Span("CREDIT_CARD", 30, 48, 1.0),
             Span("PRC_ID", 30, 48, 1.0), Span("PHONE_NUMBER", 50, 60, 0.4)]  # fmt: skip
    assert [s.entity for s in resolve_overlaps(spans)] == ["VIN", "PRC_ID", "PHONE_NUMBER"]
    assert DEFAULT_THRESHOLD == 0.5
