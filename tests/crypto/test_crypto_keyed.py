"""Blind indexes, pseudonyms, content digests and deterministic AES-SIV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.crypto import (
    FieldDecryptError,
    FieldProtector,
    LocalKeyring,
    NormalizationError,
    normalize_identifier,
)
from tests.crypto.conftest import PropertyEnv

PROP = settings(max_examples=80, deadline=None)


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("vin", " lsvaa4182e2 184-755 ", "LSVAA4182E2184755"),
        ("vin", "ＬＳＶＡＡ４１８２Ｅ２１８４７５５", "LSVAA4182E2184755"),
        ("plate", "粤B·D12345", "粤BD12345"),
        ("plate", "粤b d1234５", "粤BD12345"),
        ("plate", "京A-12345", "京A12345"),
        ("plate", "京A・12345", "京A12345"),
        ("id_number", "11010519491231002x", "11010519491231002X"),
        ("id_number", "110105 19491231 002X", "11010519491231002X"),
        ("mobile", "138 1234 5678", "+8613812345678"),
        ("mobile", "138-1234-5678", "+8613812345678"),
        ("mobile", "+86 138 1234 5678", "+8613812345678"),
        ("mobile", "008613812345678", "+8613812345678"),
        ("mobile", "8613812345678", "+8613812345678"),
        ("mobile", "(010) 1234-5678", "+861012345678"),
        ("mobile", "+44 20 7946 0958", "+442079460958"),
        ("email", " Li.Lei-1@Example.COM ", "li.lei-1@example.com"),
    ],
)
def test_normalisation(kind: str, raw: str, expected: str) -> None:
    assert normalize_identifier(kind, raw) == expected


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("passport", "E12345678"),
        ("vin", " - · "),
        ("mobile", "call me"),
        ("mobile", "+1 23"),
        ("mobile", "+86 138 1234 5678 9999 12"),
        ("email", "no-at-sign"),
        ("email", "a@b@c"),
    ],
)
def test_normalisation_refuses(kind: str, raw: str) -> None:
    with pytest.raises(NormalizationError):
        normalize_identifier(kind, raw)


def test_blind_index_matches_variants_and_separates_scopes(protector: FieldProtector) -> None:
    a = protector.blind_index("mobile", "138 1234 5678")
    assert a == protector.blind_index("mobile", "+86-138-1234-5678")
    assert len(a) == 43 and "=" not in a
    assert len(protector.blind_index("mobile", "13812345678", encoding="hex")) == 64
    assert a != protector.blind_index("mobile", "13812345678", scope="ds_loans/mobile")
    assert protector.blind_index("vin", "ABC") != protector.blind_index("plate", "ABC")
    assert protector.blind_index("plate", "粤B·D12345") == protector.blind_index(
        "plate", "粤BD12345"
    )
    with pytest.raises(NormalizationError):
        protector.blind_index("name", "Li Lei")


def test_keyed_values_stable_across_restart_and_keyrings(data_dir: Path, tmp_path: Path) -> None:
    first, again = FieldProtector(LocalKeyring(data_dir)), FieldProtector(LocalKeyring(data_dir))
    other_hub = FieldProtector(LocalKeyring(tmp_path / "other"))
    for fp in (again, other_hub):
        same = fp is again
        assert (fp.blind_index("vin", "LSV123") == first.blind_index("vin", "LSV123")) is same
        assert (fp.pseudonym("lender", "s1") == first.pseudonym("lender", "s1")) is same
        assert (fp.content_digest("ds", "{}") == first.content_digest("ds", "{}")) is same
        assert (
            fp.seal_deterministic("x", scope="vin") == first.seal_deterministic("x", scope="vin")
        ) is same


@PROP
@given(
    recipients=st.lists(st.text(max_size=20), min_size=2, max_size=4, unique=True),
    subject=st.text(max_size=64),
)
def test_pseudonyms_stable_per_recipient_unlinkable_across(
    prop_env: PropertyEnv, recipients: list[str], subject: str
) -> None:
    fp = prop_env.protector
    names = [fp.pseudonym(r, subject) for r in recipients]
    assert names == [fp.pseudonym(r, subject) for r in recipients]  # stable
    assert len(set(names)) == len(names)  # differ across recipients
    for n in names:
        assert n.startswith("psn_") and len(n) == 26


@PROP
@given(
    recipient=st.text(max_size=20),
    subjects=st.lists(st.text(), min_size=2, max_size=5, unique=True),
)
def test_pseudonyms_distinct_subjects(
    prop_env: PropertyEnv, recipient: str, subjects: list[str]
) -> None:
    names = {prop_env.protector.pseudonym(recipient, s) for s in subjects}
    assert len(names) == len(subjects)


def test_pseudonymize_value(protector: FieldProtector) -> None:
    p = protector.pseudonymize_value
    assert p("lender", "vin", "LSV1") == p("lender", "vin", "LSV1")
    assert p("lender", "vin", "LSV1") != p("insurer", "vin", "LSV1")
    assert p("lender", "vin", "LSV1") != p("lender", "plate", "LSV1")
    assert p("lender", "n", 1) != p("lender", "n", "1")
    assert p("lender", "d", {"a": 1, "b": 2}) == p("lender", "d", {"b": 2, "a": 1})
    assert p("lender", "vin", "LSV1").startswith("psv_")
    assert p("r", "vin", "x") != protector.pseudonym("r", "x")


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False)
)


@PROP
@given(value=json_scalars, scope=st.text(max_size=20))
def test_deterministic_round_trip_and_equality(
    prop_env: PropertyEnv, value: Any, scope: str
) -> None:
    fp = prop_env.protector
    token = fp.seal_deterministic(value, scope=scope)
    assert token == fp.seal_deterministic(value, scope=scope)
    assert token.startswith("td1.")
    assert fp.open_deterministic(token, scope=scope) == value
    with pytest.raises(FieldDecryptError):
        fp.open_deterministic(token, scope=scope + "x")
    with pytest.raises(FieldDecryptError):
        fp.open_deterministic(token[:-1], scope=scope)
    assert fp.seal_deterministic(value, scope=scope + "x") != token


@pytest.mark.parametrize("token", ["", "td1.", "td1.AAAA", "tf1.1.AAAA", "td1.!!"])
def test_deterministic_garbage(protector: FieldProtector, token: str) -> None:
    with pytest.raises(FieldDecryptError):
        protector.open_deterministic(token, scope="vin")


def test_content_digest(protector: FieldProtector) -> None:
    d = protector.content_digest
    assert d("ds_a", '{"a":1}') == d("ds_a", b'{"a":1}')
    assert d("ds_a", '{"a":1}') != d("ds_b", '{"a":1}')
    assert d("ds_a", '{"a":1}') != d("ds_a", '{"a":2}')
    assert len(d("ds_a", "")) == 43
    assert d("vin", "X") != protector.blind_index("vin", "X")


def test_public_surface() -> None:
    import hub.crypto

    assert sorted(hub.crypto.__all__) == sorted(
        name
        for name in dir(hub.crypto)
        if not name.startswith("_")
        and name[0].isupper()
        or name in {"encrypt_for_recipient", "normalize_identifier", "recipient_encryption_key"}
    )
