"""Value <-> bytes for sealed fields, and unpadded base64url. Internal."""

from __future__ import annotations

import binascii
import json
import math
from typing import Any

import orjson

from hub.crypto.errors import FieldEncodeError

_ORJSON_OPTS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_STDLIB_MARK = (
    b"\x00"  # JSON text never starts with NUL: marks values orjson cannot hold (big ints)
)


def encode_value(value: Any) -> bytes:
    """JSON bytes of ``value``; ``FieldEncodeError`` if it is not JSON (NaN/inf included)."""
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise FieldEncodeError("NaN and infinite floats are not JSON")
    elif kind is dict or kind is list or kind is tuple:
        _check_finite(value)
    try:
        return orjson.dumps(value, option=_ORJSON_OPTS)
    except TypeError:
        pass
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return _STDLIB_MARK + text.encode("utf-8")
    except (TypeError, ValueError):
        raise FieldEncodeError(
            f"a value of type {kind.__name__} is not JSON-serialisable"
        ) from None


def decode_value(data: bytes) -> Any:
    if data[:1] == _STDLIB_MARK:
        return json.loads(data[1:])
    return orjson.loads(data)


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON (sorted keys) for keyed hashing of values."""
    encoded = encode_value(value)
    if encoded[:1] == _STDLIB_MARK:
        return json.dumps(
            value, ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=True
        ).encode("utf-8")
    return orjson.dumps(value, option=_ORJSON_OPTS | orjson.OPT_SORT_KEYS)


def _check_finite(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is float:
            if not math.isfinite(item):
                raise FieldEncodeError("NaN and infinite floats are not JSON")
        elif kind is dict:
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)


_B64_ENC = bytes.maketrans(b"+/", b"-_")
# decoding: url-safe -> standard alphabet; a stray "+", "/" or "=" becomes "!", which strict mode
# rejects (the padding is ours to add)
_B64_DEC = bytes.maketrans(b"-_+/=", b"+/!!!")
_B64_PAD = (b"", b"!", b"==", b"=")  # a length of 1 mod 4 is never valid base64
# the last character of unpadded base64 may not carry stray bits (one spelling per byte string)
_B64_LAST: tuple[frozenset[int], ...] = (
    frozenset(),
    frozenset(),
    frozenset(b"AQgw"),
    frozenset(b"AEIMQUYcgkosw048"),
)


def b64u_encode(data: bytes) -> str:
    """Unpadded base64url."""
    return binascii.b2a_base64(data, newline=False).translate(_B64_ENC).rstrip(b"=").decode("ascii")


def b64u_decode_strict(text: str) -> bytes:
    """Decode unpadded base64url, accepting only the one canonical spelling of the bytes."""
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("not base64url") from None
    rem = len(raw) & 3
    if rem and raw[-1] not in _B64_LAST[rem]:
        raise ValueError("not canonical base64url")
    try:
        return binascii.a2b_base64(raw.translate(_B64_DEC) + _B64_PAD[rem], strict_mode=True)
    except binascii.Error:
        raise ValueError("not base64url") from None
