from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwe
from joserfc.jwk import ECKey, OKPKey, RSAKey

from hub.crypto import (
    FieldEncodeError,
    RecipientKeyError,
    encrypt_for_recipient,
    recipient_encryption_key,
)

Decrypt = Callable[[str, ECKey | OKPKey], Any]
P256 = ECKey.generate_key("P-256")
X25519 = OKPKey.generate_key("X25519")
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=8,
)


@settings(max_examples=40, deadline=None)
@given(value=json_values, key=st.sampled_from([P256, X25519]))
def test_round_trip(value: Any, key: ECKey | OKPKey) -> None:
    from tests.crypto.conftest import _decrypt_jwe

    token = encrypt_for_recipient(key.as_dict(private=False), value)
    assert token.count(".") == 4
    assert _decrypt_jwe(token, key) == value


@pytest.mark.parametrize("crv", ["P-256", "P-384", "P-521"])
def test_ec_curves_and_header(crv: str, decrypt_jwe: Decrypt) -> None:
    key = ECKey.generate_key(crv)
    public = key.as_dict(private=False) | {"kid": "partner-enc-1"}
    token = encrypt_for_recipient(public, {"income": 12000})
    header = jwe.decrypt_compact(token, key, algorithms=["ECDH-ES", "A256GCM"]).protected
    assert header["alg"] == "ECDH-ES" and header["enc"] == "A256GCM"
    assert header["kid"] == "partner-enc-1"
    assert decrypt_jwe(token, key) == {"income": 12000}
    with pytest.raises(Exception):  # noqa: B017 - anyone else's key cannot decrypt
        decrypt_jwe(token, ECKey.generate_key(crv))


@pytest.mark.parametrize(
    "jwk",
    [
        P256.as_dict(private=True),
        RSAKey.generate_key(2048).as_dict(private=False),
        OKPKey.generate_key("Ed25519").as_dict(private=False),
        {"kty": "oct", "k": "AAAA"},
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        {"kty": "EC", "crv": "secp256k1", "x": "AAAA", "y": "AAAA"},
        "not a dict",
    ],
)
def test_unusable_keys_refused(jwk: Any) -> None:
    with pytest.raises(RecipientKeyError):
        encrypt_for_recipient(jwk, "x")


def test_non_json_value_refused() -> None:
    with pytest.raises(FieldEncodeError):
        encrypt_for_recipient(P256.as_dict(private=False), float("nan"))


def test_recipient_encryption_key_selection() -> None:
    sig = P256.as_dict(private=False) | {"use": "sig", "kid": "sig"}
    plain_ec = ECKey.generate_key("P-256").as_dict(private=False) | {"kid": "ec"}
    x = X25519.as_dict(private=False) | {"kid": "x"}
    enc = ECKey.generate_key("P-256").as_dict(private=False) | {"use": "enc", "kid": "enc"}
    ed = OKPKey.generate_key("Ed25519").as_dict(private=False)
    pick = recipient_encryption_key
    assert pick(None) is None and pick({}) is None and pick({"keys": []}) is None
    assert pick({"keys": [sig, ed]}) is None
    assert pick({"keys": [sig, plain_ec]}) == plain_ec
    assert pick({"keys": [plain_ec, x]}) == x
    assert pick({"keys": [plain_ec, x, enc, sig]}) == enc
    assert pick(plain_ec) == plain_ec  # a single JWK
    assert pick({"keys": [P256.as_dict(private=True)]}) is None
