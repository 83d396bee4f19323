"""Transforms: table-driven rules per data type, and properties (format kept, nothing leaks)."""

from __future__ import annotations

import string
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.deid.errors import TransformInputError, UnknownTransformError
from hub.deid.identifiers import luhn_check_digit, prc_id_check_char, vin_check_digit
from hub.deid.transforms import (
    age_band,
    amount_band,
    apply_transform,
    city_from_address,
    coarse_grid,
    date_to_month,
    geohash,
    mask_keep_last,
    mask_name,
)

AS_OF = date(2026, 11, 1)


@pytest.mark.parametrize(
    ("category", "field", "value", "expected"),
    [
        ("contact", "mobile", "+8613800138000", "+86138****8000"),
        ("contact", "mobile", "+86 138 0013 8000", "+86 138 **** 8000"),
        ("contact", "mobile", "13800138000", "138****8000"),
        ("contact", "mobile", "+447700900123", "+44******0123"),
        ("identity_document", "id_number", "11010519491231002X", "**************002X"),
        ("identity_document", "id_number", "C01X00T47", "*****0T47"),
        ("vehicle_identifier", "vin", "1M8GDM9AXKP042788", "*************2788"),
        ("vehicle_identifier", "plate", "粤B·D12345", "粤B·****45"),
        ("vehicle_identifier", "plate", "京A12345", "京A***45"),
        ("financial_account", "card", "6222021234567890128", "***************0128"),
        ("financial_account", "card", "4111 1111 1111 1111", "**** **** **** 1111"),
        ("financial_account", "iban", "GB82WEST12345698765432", "GB****************5432"),
        ("contact", "email", "wang.wei@qq.com", "w*******@qq.com"),
        ("identity", "applicant_name", "王伟", "王*"),
        ("identity", "applicant_name", "欧阳娜娜", "欧阳**"),
        ("identity", "applicant_name", "James Smith", "J**** S****"),
        ("contact", "address", "上海市静安区朝阳路126号春江花月4栋4单元3104室", "上海市静安区****"),
        ("contact", "address", "江苏省苏州市吴中区复兴路804号", "江苏省苏州市吴中区****"),
        ("contact", "address", "97 Camden Road, London NW1 9HA", "** ****** ****, London *** ***"),
        ("sales", "dealer_ref", "dealer-huadong", "******-***dong"),
        ("sales", "code", "AB12", "****"),
    ],
)
def test_mask_table(category: str, field: str, value: str, expected: str) -> None:
    assert apply_transform("mask", category, value, field=field) == expected


def test_mask_free_text_masks_identifiers_in_place() -> None:
    text = "车牌粤B·D12345，车架号1M8GDM9AXKP042788，电话138 0013 8000，身份证11010519491231002X。"
    masked = apply_transform("mask", "free_text", text, field="description")
    assert masked == (
        "车牌粤B·****45，车架号*************2788，电话138 **** 8000，身份证**************002X。"
    )


def test_mask_non_string_is_suppressed() -> None:
    assert apply_transform("mask", "income", 12_000, field="monthly_income_cny") is None
    assert apply_transform("mask", "contact", None, field="mobile") is None


@pytest.mark.parametrize(
    ("category", "field", "value", "expected"),
    [
        ("identity", "birth_date", "1980-10-12", "45-54"),
        ("identity", "birth_date", "2001-11-02", "18-24"),  # 24 the day before the birthday
        ("identity", "birth_date", "2010-01-01", "<18"),
        ("identity", "birth_date", "1950-01-01", "65+"),
        ("identity", "birth_date", date(1996, 11, 1), "25-34"),
        ("identity_document", "id_number", "11010519491231002X", "65+"),
        ("identity_document", "id_number", "C01X00T47", None),  # a passport has no birth date
        ("contact", "address", "上海市静安区朝阳路126号", "上海市"),
        ("contact", "address", "广西壮族自治区南宁市青秀区民族大道1号", "南宁市"),
        ("contact", "address", "Schönhauser Allee 169, 10437 Berlin", "Berlin"),
        ("contact", "address", "97 Camden Road, London NW1 9HA", "London"),
        ("contact", "address", "somewhere", None),
        ("location_precise", "last_lat", 31.181321, 31.1),
        ("location_precise", "last_lon", 121.468796, 121.4),
        ("location_precise", "last_lat", -0.05, -0.1),
        ("income", "monthly_income_cny", 8800, "5000-10000"),
        ("loan", "amount_cny", 119_000, "100000-150000"),
        ("insurance", "annual_premium_cny", 6430, "6000-8000"),
        ("vehicle", "odometer_km", 44_307, "40000-50000"),
        ("sales", "deal_date", "2024-05-12", "2024-05"),
        ("sales", "deal_date", date(2024, 5, 12), "2024-05"),
        ("claim", "reported_at", "2024-05-31T23:30:00-02:00", "2024-06"),
        ("identity", "applicant_name", "王伟", None),
        ("sales", "trade_in", True, None),
        ("loan", "amount_cny", float("nan"), None),
    ],
)
def test_generalize_table(category: str, field: str, value: Any, expected: Any) -> None:
    assert apply_transform("generalize", category, value, field=field, as_of=AS_OF) == expected


def test_suppress_and_unknown_action() -> None:
    assert apply_transform("suppress", "contact", "13800138000", field="mobile") is None
    with pytest.raises(UnknownTransformError) as info:
        apply_transform("shuffle", "contact", "13800138000", field="mobile")
    assert "13800138000" not in str(info.value)


def test_helpers_edge_cases() -> None:
    assert city_from_address("北京市朝阳区建国路88号") == "北京市"
    assert date_to_month(datetime(2024, 1, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))) == (
        "2024-02"
    )
    assert date_to_month("not a date") is None
    assert age_band("not a date", as_of=AS_OF) is None
    assert age_band("2030-01-01", as_of=AS_OF) is None
    assert geohash(57.64911, 10.40744, 11) == "u4pruydqqvj"  # the geohash.org example
    with pytest.raises(TransformInputError):
        amount_band(10, 0)
    with pytest.raises(TransformInputError):
        geohash(91, 0)
    with pytest.raises(TransformInputError):
        coarse_grid(float("inf"))
    assert mask_name(" Anna ") == "A***"


# ---------------------------------------------------------------------------------- properties

_VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"


@given(st.text(min_size=0, max_size=40), st.integers(min_value=0, max_value=8))
def test_mask_keep_last_preserves_format(value: str, n: int) -> None:
    masked = mask_keep_last(value, n)
    assert len(masked) == len(value)
    alnum = [i for i, c in enumerate(value) if c.isalnum()]
    kept = set(alnum[len(alnum) - n :]) if n else set()
    for i, (a, b) in enumerate(zip(value, masked, strict=True)):
        if not a.isalnum() or i in kept:
            assert a == b
        else:
            assert b == "*"


@given(st.text(alphabet=_VIN_CHARS, min_size=17, max_size=17))
def test_masked_vin_reveals_only_last_four(draft: str) -> None:
    vin = draft[:8] + vin_check_digit(draft) + draft[9:]
    masked = apply_transform("mask", "vehicle_identifier", vin, field="vin")
    assert masked == "*" * 13 + vin[-4:]


@given(
    st.dates(min_value=date(1930, 1, 1), max_value=date(2008, 12, 31)),
    st.integers(min_value=0, max_value=999),
)
def test_prc_id_age_band_matches_birth_date(birth: date, seq: int) -> None:
    body = f"310115{birth:%Y%m%d}{seq:03d}"
    prc = body + prc_id_check_char(body)
    by_id = apply_transform("generalize", "identity_document", prc, field="id_number", as_of=AS_OF)
    by_date = apply_transform(
        "generalize", "identity", birth.isoformat(), field="birth_date", as_of=AS_OF
    )
    assert by_id == by_date == age_band(birth, as_of=AS_OF)
    masked = apply_transform("mask", "identity_document", prc, field="id_number")
    assert masked[:14] == "*" * 14 and masked[14:] == prc[14:]


@given(
    st.floats(min_value=18, max_value=54, allow_nan=False),
    st.floats(min_value=73, max_value=135, allow_nan=False),
)
def test_grid_cell_contains_point(lat: float, lon: float) -> None:
    glat = apply_transform("generalize", "location_precise", lat, field="last_lat")
    glon = apply_transform("generalize", "location_precise", lon, field="last_lon")
    assert glat <= lat + 1e-9 and lat - glat < 0.1 + 1e-9
    assert glon <= lon + 1e-9 and lon - glon < 0.1 + 1e-9
    assert round(glat * 10) == pytest.approx(glat * 10)


@given(st.integers(min_value=0, max_value=10**9), st.sampled_from(["income", "loan", "claim"]))
def test_amount_band_contains_value(value: int, category: str) -> None:
    band = apply_transform("generalize", category, value, field="amount_cny")
    lo, hi = (int(x) for x in band.split("-"))
    assert lo <= value < hi


@given(st.text(alphabet=string.digits, min_size=15, max_size=18))
def test_masked_card_keeps_only_last_four(body: str) -> None:
    card = body + luhn_check_digit(body)
    masked = apply_transform("mask", "financial_account", card, field="repayment_card")
    assert masked.endswith(card[-4:]) and set(masked[:-4]) == {"*"}


@given(st.text(max_size=60), st.sampled_from(["contact", "free_text", "identity", "vehicle"]))
def test_transforms_never_raise_on_strings(value: str, category: str) -> None:
    for action in ("mask", "generalize"):
        apply_transform(action, category, value, field="x", as_of=AS_OF)


def test_population_fields_never_survive_mask_or_generalize() -> None:
    """Every identifying field of the demo population, through both actions: nothing survives."""
    from hub.demo.population import generate_population

    pop = generate_population(seed=3, consumers=80)
    vehicles = {v.subject_ref: v for v in pop.vehicles}
    accounts = {a.subject_ref: a for a in pop.loan_accounts}
    rows: list[tuple[str, str, Any]] = []
    for c in pop.consumers:
        v = vehicles[c.subject_ref]
        rows += [
            ("identity", "applicant_name", c.full_name),
            ("identity_document", "id_number", c.id_number),
            ("contact", "mobile", c.mobile),
            ("contact", "email", c.email),
            ("contact", "address", c.address),
            ("vehicle_identifier", "vin", v.vin),
            ("vehicle_identifier", "plate", v.plate),
        ]
        if c.subject_ref in accounts:
            rows.append(
                ("financial_account", "repayment_card", accounts[c.subject_ref].repayment_card)
            )
    for category, field, value in rows:
        for action in ("mask", "generalize"):
            out = apply_transform(action, category, value, field=field, as_of=AS_OF)
            assert out != value, (action, field)
            assert out is None or value not in str(out)
