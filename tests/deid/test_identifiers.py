"""Validators and normalisation of identifiers: table-driven edge cases and property tests."""

from __future__ import annotations

import string
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.crypto.errors import NormalizationError
from hub.crypto.normalize import normalize_identifier
from hub.deid.errors import InvalidIdentifierError
from hub.deid.identifiers import (
    _VIN_VALUES,
    PLATE_PROVINCES,
    PRC_PROVINCE_CODES,
    iban_check_digits,
    is_valid_cn_mobile,
    is_valid_cn_plate,
    is_valid_iban,
    is_valid_prc_id,
    is_valid_vin,
    luhn_check_digit,
    luhn_valid,
    prc_id_birth_date,
    prc_id_check_char,
    vin_check_digit,
    vin_check_digit_applies,
)

VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"


@pytest.mark.parametrize(
    ("vin", "check_ok"),
    [
        ("1M8GDM9AXKP042788", True),  # the 49 CFR 565 worked example
        ("11111111111111111", True),
        ("1HGCM82633A004352", True),
        ("1HGCM82643A004352", False),
        ("WVWZZZ1JZXW000001", False),  # European VIN: no check digit, structurally valid
    ],
)
def test_vin_check_digit_table(vin: str, check_ok: bool) -> None:
    assert is_valid_vin(vin)
    assert is_valid_vin(vin, require_check_digit=True) is check_ok


@pytest.mark.parametrize(
    "bad",
    ["", "1M8GDM9AXKP04278", "1M8GDM9AXKP0427888", "1M8GDM9AXKP04278O", "IM8GDM9AXKP042788",
     "1M8GDM9AQKP042788", "1m8gdm9axkp042788", "1M8GDM9AXKP04278 "],
)  # fmt: skip
def test_vin_rejects_structure(bad: str) -> None:
    assert not is_valid_vin(bad)


def test_vin_check_digit_rejects_non_vin() -> None:
    with pytest.raises(InvalidIdentifierError):
        vin_check_digit("SHORT")


def test_vin_check_digit_applies() -> None:
    assert vin_check_digit_applies("1M8GDM9AXKP042788")
    assert vin_check_digit_applies("LGXC16DH9LA341430")
    assert not vin_check_digit_applies("WVWZZZ1JZXW000001")
    assert not vin_check_digit_applies("")


@given(st.text(alphabet=VIN_CHARS, min_size=17, max_size=17))
def test_vin_with_computed_check_digit_is_valid(draft: str) -> None:
    vin = draft[:8] + vin_check_digit(draft) + draft[9:]
    assert is_valid_vin(vin, require_check_digit=True)


@given(
    st.text(alphabet=VIN_CHARS, min_size=17, max_size=17),
    st.integers(min_value=0, max_value=16).filter(lambda i: i != 8),
    st.sampled_from(VIN_CHARS),
)
def test_vin_single_substitution_detected(draft: str, pos: int, ch: str) -> None:
    vin = draft[:8] + vin_check_digit(draft) + draft[9:]
    mutated = vin[:pos] + ch + vin[pos + 1 :]
    # weights 2..10 and value differences 1..9 are never 0 mod 11, so a substitution is caught
    # unless both characters transliterate to the same value (e.g. A, J and 1)
    if _VIN_VALUES[ch] != _VIN_VALUES[vin[pos]]:
        assert not is_valid_vin(mutated, require_check_digit=True)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("11010519491231002X", True),  # GB 11643 example
        ("11010519491231002x", True),
        ("110105194912310021", False),  # wrong check char
        ("99010519491231002X", False),  # no province 99
        ("110105194902300021", False),  # 30 February
        ("11010519491231002", False),
        ("1101051949123100211", False),
        ("11010518791231002X", False),  # before 1880
    ],
)
def test_prc_id_table(value: str, ok: bool) -> None:
    assert is_valid_prc_id(value) is ok


@given(
    st.sampled_from(sorted(PRC_PROVINCE_CODES)),
    st.integers(min_value=0, max_value=9999),
    st.dates(min_value=date(1800, 1, 1), max_value=date(2200, 12, 31)),
    st.integers(min_value=0, max_value=999),
)
def test_prc_id_generated_valid(province: str, county: int, birth: date, seq: int) -> None:
    body = f"{province}{county:04d}{birth:%Y%m%d}{seq:03d}"
    value = body + prc_id_check_char(body)
    assert is_valid_prc_id(value) is (1880 <= birth.year <= 2099)
    if 1880 <= birth.year <= 2099:
        assert prc_id_birth_date(value) == birth
        # any other check character is rejected
        for other in "0123456789X":
            if other != value[17]:
                assert not is_valid_prc_id(body + other)


def test_prc_check_char_rejects_bad_body() -> None:
    with pytest.raises(InvalidIdentifierError):
        prc_id_check_char("1234")


@pytest.mark.parametrize(
    ("digits", "ok"),
    [("4111111111111111", True), ("79927398713", True), ("79927398710", False), ("0", False),
     ("", False), ("4111 1111 1111 1111", False), ("６２２２", False)],
)  # fmt: skip
def test_luhn_table(digits: str, ok: bool) -> None:
    assert luhn_valid(digits) is ok


@given(st.text(alphabet=string.digits, min_size=1, max_size=25))
def test_luhn_check_digit_round_trip(body: str) -> None:
    full = body + luhn_check_digit(body)
    assert luhn_valid(full)
    wrong = str((int(full[-1]) + 1) % 10)
    assert not luhn_valid(full[:-1] + wrong)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("13800138000", True),
        ("+8613800138000", True),
        ("+86 138 0013 8000", True),
        ("138-0013-8000", True),
        ("008613800138000", True),
        ("8613800138000", True),
        ("12800138000", False),
        ("1380013800", False),
        ("138001380001", False),
        ("+85213800138000", False),
        (" 13800138000", False),
        ("138  0013 8000", False),
        ("", False),
    ],
)
def test_cn_mobile_table(value: str, ok: bool) -> None:
    assert is_valid_cn_mobile(value) is ok


@given(st.integers(min_value=3, max_value=9), st.integers(min_value=0, max_value=999_999_999))
def test_cn_mobile_property(second: int, rest: int) -> None:
    national = f"1{second}{rest:09d}"
    assert is_valid_cn_mobile(national)
    assert normalize_identifier("mobile", f"+86 {national[:3]} {national[3:7]} {national[7:]}") == (
        "+86" + national
    )


@pytest.mark.parametrize(
    ("plate", "ok"),
    [
        ("京A12345", True),
        ("粤B·D12345", True),
        ("粤BD12345", True),
        ("沪A12345D", True),
        ("浙A·F1A234", False),
        ("浙AF1234A", False),
        ("京A·AB123", True),
        ("京AABC12", False),  # three letters
        ("京I12345", False),
        ("京A1234O", False),
        ("港A12345", False),
        ("京A1234", False),
        ("京A123456", False),
        ("京a12345", False),
    ],
)
def test_cn_plate_table(plate: str, ok: bool) -> None:
    assert is_valid_cn_plate(plate) is ok


@given(
    st.sampled_from(sorted(PLATE_PROVINCES)),
    st.sampled_from("ABCDEFGHJKLMNPQRSTUVWXYZ"),
    st.sampled_from(["", "·"]),
    st.sampled_from(["D", "F"]),
    st.integers(min_value=0, max_value=99_999),
)
def test_cn_plate_new_energy_property(prov: str, auth: str, sep: str, kind: str, n: int) -> None:
    assert is_valid_cn_plate(f"{prov}{auth}{sep}{kind}{n % 10}{n // 10:04d}")
    assert is_valid_cn_plate(f"{prov}{auth}{sep}{n:05d}{kind}")
    assert (
        normalize_identifier("plate", f"{prov}{auth.lower()}{sep}{n:05d}") == f"{prov}{auth}{n:05d}"
    )


@pytest.mark.parametrize(
    ("iban", "ok"),
    [
        ("GB82 WEST 1234 5698 7654 32", True),
        ("GB82WEST12345698765432", True),
        ("gb82west12345698765432", True),
        ("DE89370400440532013000", True),
        ("DE89370400440532013001", False),
        ("DE8937040044053201300", False),  # wrong length for DE
        ("XX89370400440532013000", False),  # unknown country
        ("", False),
    ],
)
def test_iban_table(iban: str, ok: bool) -> None:
    assert is_valid_iban(iban) is ok


@given(st.text(alphabet=string.digits, min_size=18, max_size=18))
def test_iban_generated_valid(bban: str) -> None:
    iban = "DE" + iban_check_digits("DE", bban) + bban
    assert is_valid_iban(iban)
    assert is_valid_iban(" ".join(iban[i : i + 4] for i in range(0, 22, 4)))


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("vin", " 1m8gdm9axkp042788 ", "1M8GDM9AXKP042788"),
        ("id_number", "11010519491231002x", "11010519491231002X"),
        ("id_number", " c01x00t47 ", "C01X00T47"),
        ("plate", "粤b · d12345", "粤BD12345"),
        ("mobile", "138-0013-8000", "+8613800138000"),
        ("mobile", "+44 7700 900123", "+447700900123"),
        ("mobile", "0049 151 12345678", "+4915112345678"),
        ("email", "  Wang.Wei@QQ.com ", "wang.wei@qq.com"),
        ("vin", "１M8GDM9AXKP042788", "1M8GDM9AXKP042788"),
    ],
)
def test_normalize_table(kind: str, value: str, expected: str) -> None:
    assert normalize_identifier(kind, value) == expected


def test_normalize_errors_do_not_echo_value() -> None:
    with pytest.raises(NormalizationError):
        normalize_identifier("ssn", "123")
    with pytest.raises(NormalizationError) as info:
        normalize_identifier("mobile", "call me 5551234")
    assert "5551234" not in str(info.value)


@given(st.text(max_size=40))
def test_validators_never_raise(s: str) -> None:
    for fn in (is_valid_vin, is_valid_prc_id, is_valid_cn_mobile, is_valid_cn_plate, is_valid_iban):
        assert fn(s) in (True, False)
    assert luhn_valid(s) in (True, False)
