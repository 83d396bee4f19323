"""The demo population: deterministic, internally consistent, and every identifier valid."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from hub.crypto.normalize import normalize_identifier
from hub.deid.identifiers import (
    PLATE_PROVINCES,
    PRC_PROVINCE_CODES,
    is_valid_cn_mobile,
    is_valid_cn_plate,
    is_valid_iban,
    is_valid_prc_id,
    is_valid_vin,
    luhn_valid,
    prc_id_birth_date,
)
from hub.demo.population import AS_OF, Population, generate_population

_HAN = re.compile(r"[\u4e00-\u9fff]{2,4}")
_LATIN_NAME = re.compile(r"[A-Z][a-zü]+ [A-Z][a-zäöü]+")


@pytest.fixture(scope="module")
def population() -> Population:
    return generate_population()


def test_same_seed_same_population(population: Population) -> None:
    assert generate_population(seed=7, consumers=200) == population
    assert generate_population(seed=8, consumers=200) != population


def test_sizes(population: Population) -> None:
    assert len(population.consumers) == 200
    assert len(population.vehicles) == 200
    assert len(population.sales_deals) == len(population.loan_applications) == 200
    assert len(population.loan_decisions) == 200
    assert 0 < len(population.loan_accounts) < 200  # some loans are declined
    assert len(population.insurance_policies) == 200
    assert len(population.telematics) == 600
    assert population.claims and population.service_records
    assert {p.role for p in population.partners} == {
        "oem", "dealer", "lender", "insurer", "regulator"
    }  # fmt: skip
    assert generate_population(seed=1, consumers=0).consumers == ()


def test_mix_of_names_and_jurisdictions(population: Population) -> None:
    scripts = Counter(c.name_script for c in population.consumers)
    assert scripts["han"] > 150 and scripts["latin"] >= 10
    jurisdictions = Counter(c.jurisdiction for c in population.consumers)
    assert jurisdictions["CN"] > 170 and jurisdictions["DE"] >= 2 and jurisdictions["GB"] >= 2
    for c in population.consumers:
        if c.name_script == "han":
            assert _HAN.fullmatch(c.full_name), c.subject_ref
        else:
            assert _LATIN_NAME.fullmatch(c.full_name), c.subject_ref


def test_consumer_identifiers_valid(population: Population) -> None:
    refs = [c.subject_ref for c in population.consumers]
    assert len(set(refs)) == len(refs)
    assert len({c.email for c in population.consumers}) == len(refs)
    for c in population.consumers:
        assert c.birth_date <= AS_OF
        assert "@" in c.email and normalize_identifier("email", c.email) == c.email
        if c.id_type == "prc_id":
            assert is_valid_prc_id(c.id_number), c.subject_ref
            assert prc_id_birth_date(c.id_number) == c.birth_date
            assert int(c.id_number[16]) % 2 == (1 if c.gender == "M" else 0)
            assert PRC_PROVINCE_CODES[c.id_number[:2]] == c.province
        else:
            assert c.name_script == "latin" and re.fullmatch(r"[0-9A-Z]{9}", c.id_number)
        assert is_valid_cn_mobile(c.mobile) and c.mobile.startswith("+86")
        assert normalize_identifier("mobile", c.mobile) == c.mobile
        if c.jurisdiction == "CN":
            assert c.address.startswith(("北京市", "上海市", "天津市", "重庆市", c.province))
        else:
            assert c.address.isascii() or "ö" in c.address or "ü" in c.address
        assert c.city in c.address


def test_vehicles_valid(population: Population) -> None:
    consumers = {c.subject_ref: c for c in population.consumers}
    assert len({v.vin for v in population.vehicles}) == len(population.vehicles)
    powertrains = Counter(v.powertrain for v in population.vehicles)
    assert powertrains["bev"] and powertrains["phev"] and powertrains["ice"]
    for v in population.vehicles:
        assert is_valid_vin(v.vin, require_check_digit=True), v.vin
        assert is_valid_cn_plate(v.plate), v.plate
        assert PRC_PROVINCE_CODES[PLATE_PROVINCES[v.plate[0]]] == v.registered_province
        owner = consumers[v.subject_ref]
        if owner.jurisdiction == "CN":
            assert v.registered_province == owner.province
        if v.powertrain != "ice":
            assert len(normalize_identifier("plate", v.plate)) == 8
        assert v.build_date <= AS_OF and v.msrp_cny > 50_000
    wmis = {v.vin[:3] for v in population.vehicles}
    assert {"LGX", "LRW", "LSV"} <= wmis


def test_contracts_consistent(population: Population) -> None:
    vins = {v.subject_ref: v.vin for v in population.vehicles}
    decisions = {d.application_id: d for d in population.loan_decisions}
    for app in population.loan_applications:
        assert app.vin == vins[app.subject_ref]
        assert app.amount_cny + app.down_payment_cny > 0 and app.term_months in (12, 24, 36, 48, 60)
    outcomes = Counter(d.outcome for d in population.loan_decisions)
    assert outcomes["approved"] and outcomes["declined"]
    for acct in population.loan_accounts:
        assert decisions[acct.application_id].outcome == "approved"
        assert luhn_valid(acct.repayment_card) and len(acct.repayment_card) in (16, 19)
        assert acct.lien.registered_on >= acct.opened_on
    for pol in population.insurance_policies:
        assert pol.start_date < pol.end_date
        if pol.payout_iban is not None:
            assert is_valid_iban(pol.payout_iban)
    for t in population.telematics:
        assert 18.0 < t.last_lat < 54.0 and 73.0 < t.last_lon < 135.0  # inside China's bounds
        assert 0 <= t.harsh_braking_score <= 100


def test_free_text_plants_are_present_and_labelled(population: Population) -> None:
    texts = [(c.description, c.planted, c.language) for c in population.claims]
    texts += [(s.remarks, s.planted, s.language) for s in population.service_records]
    kinds: Counter[str] = Counter()
    for text, planted, _ in texts:
        for kind, value in planted:
            assert value in text
            kinds[kind] += 1
    assert {"CN_PLATE", "VIN", "CN_MOBILE"} <= set(kinds)
    assert {lang for _, _, lang in texts} == {"en", "zh"}
    assert any(not planted for _, planted, _ in texts)
