"""serde_json text rules the codec must match: string escaping, float formatting
(ryu), key order, ToolValue escapes, and value semantics of the hook classes (GEN-3)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lash_streams.errors import DecodeError
from lash_streams.model import (
    TOOL_VALUE_TAG,
    DedupeConst,
    LeaseAcquired,
    OutcomeSuccess,
    ProcessLease,
    ProcessValueSelector,
    SelConst,
    SelPointer,
    SelTemplate,
    ToolCallOutput,
    canonical_json,
    decode,
    encode,
    to_builtins,
    tool_value_from_json,
)
from tests.model._fixtures import LEASE

_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}


def serde_string(text: str) -> str:
    """serde_json's string escaping, written from its rules: the short escapes,
    other controls as lowercase ``\\u00XX``, everything else verbatim."""
    out = []
    for ch in text:
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def ryu(value: float) -> str:
    """serde_json 1.0.149's float text (zmij: ryu's layout, with a ``+`` in
    non-negative exponents, issue 11), from its layout rules over the shortest
    round-trip digits (which Python's ``repr`` also yields)."""
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    k = (int(exp_text) if exp_text else 0) - len(frac)
    stripped = digits.rstrip("0")
    k += len(digits) - len(stripped)
    digits, length = stripped, len(stripped)
    kk = length + k
    if k >= 0 and kk <= 16:
        return f"{sign}{digits}{'0' * k}.0"
    if 0 < kk <= 16:
        return f"{sign}{digits[:kk]}.{digits[kk:]}"
    if -5 < kk <= 0:
        return f"{sign}0.{'0' * -kk}{digits}"
    if length == 1:
        return f"{sign}{digits}e{kk - 1:+d}"
    return f"{sign}{digits[0]}.{digits[1:]}e{kk - 1:+d}"


def test_control_characters_escape_like_serde_json() -> None:
    """GEN-3: ``\\n \\t \\r \\b \\f`` short, other controls ``\\u00XX`` lowercase;
    ``/``, DEL, U+2028 and non-ASCII are not escaped."""
    text = "".join(chr(i) for i in range(0x80)) + "é\u2028\U0001f600"
    assert encode(text).decode() == serde_string(text)
    assert encode("\x1f\x7f/") == b'"\\u001f\x7f/"'
    assert encode("é") == '"é"'.encode()


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"])))
def test_any_string_escapes_like_serde_json(text: str) -> None:
    """GEN-3 for arbitrary text (lone surrogates cannot be UTF-8 in either)."""
    assert encode(text).decode() == serde_string(text)
    assert decode(encode(text), str) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e20, "1e+20"),
        (1.0, "1.0"),
        (0.1, "0.1"),
        (0.3, "0.3"),
        (1.5, "1.5"),
        (100.0, "100.0"),
        (123.456, "123.456"),
        (123456789.0, "123456789.0"),
        (1e15, "1000000000000000.0"),
        (1e16, "1e+16"),
        (1e21, "1e+21"),
        (1.2345678901234567e19, "1.2345678901234567e+19"),
        (1e-5, "0.00001"),
        (1e-6, "1e-6"),
        (1e-7, "1e-7"),
        (-1.25e-10, "-1.25e-10"),
        (-0.0, "-0.0"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
    ],
)
def test_float_text_matches_ryu(value: float, text: str) -> None:
    """GEN-3: floats as lash's serde_json writes them, e.g. ``1e+20``, ``1.0``, ``0.1``."""
    assert encode(value).decode() == text
    assert ryu(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_float_matches_ryu(value: float) -> None:
    """GEN-3: the layout rules hold for every finite float."""
    assert encode(value).decode() == ryu(value)


def test_integers_and_key_order() -> None:
    """GEN-3: u64 extremes are exact; object keys sort by code point (BTreeMap)."""
    assert (
        encode([0, -1, 2**63 - 1, 2**64 - 1]) == b"[0,-1,9223372036854775807,18446744073709551615]"
    )
    keys = {"\U00010000": 1, "\uffff": 2, "é": 3, "z": 4, "Z": 5, "": 6, "a\x00": 7, "a": 8}
    assert canonical_json(keys).decode() == (
        '{"":6,"Z":5,"a":8,"a\\u0000":7,"z":4,"é":3,"\uffff":2,"\U00010000":1}'
    )


# What serde_json 1.0.149 (lash's pin; no arbitrary_precision, no
# float_roundtrip) writes back for integer text it reads into a Value: an
# integer past u64 becomes f64 (its first digits that fit u64, times a power of
# ten for the rest), one below i64 becomes f64, and ``-0`` becomes -0.0. Each
# output was printed by serde_json itself (from_str::<Value>, then to_string).
SERDE_INTEGERS = [
    (b"18446744073709551615", b"18446744073709551615"),
    (b"18446744073709551616", b"1.8446744073709552e+19"),
    (b"18446744073709551617", b"1.8446744073709552e+19"),
    (b"36893488147419103232", b"3.6893488147419103e+19"),
    (b"99999999999999999999", b"1e+20"),
    (b"123456789012345678901234567890", b"1.2345678901234568e+29"),
    (b"-123456789012345678901234567890", b"-1.2345678901234568e+29"),
    (b"-9223372036854775808", b"-9223372036854775808"),
    (b"-9223372036854775809", b"-9.223372036854776e+18"),
    (b"-18446744073709551615", b"-1.8446744073709552e+19"),
    (b"-18446744073709551616", b"-1.8446744073709552e+19"),
    (b"-36893488147419103231", b"-3.6893488147419103e+19"),
    (b"12345678901234567891", b"12345678901234567891"),
    (b"-0", b"-0.0"),
    (b"[-0,0,-0.0,-0e0,0e0,-0E+0]", b"[-0.0,0,-0.0,-0.0,0.0,-0.0]"),
    (b"[ -0 , 18446744073709551616 ]", b"[-0.0,1.8446744073709552e+19]"),
    (b"1" + b"0" * 308, b"1e+308"),
    (
        b'{"a":"18446744073709551616 -0","b":-0,"c":[18446744073709551616],'
        b'"d":"\\"-0\\" 123456789012345678901"}',
        b'{"a":"18446744073709551616 -0","b":-0.0,"c":[1.8446744073709552e+19],'
        b'"d":"\\"-0\\" 123456789012345678901"}',
    ),
    (
        b'{"t":"2026-12-05T01:00:00-05:00","n":-0.5,"e":1e-0}',
        b'{"e":1.0,"n":-0.5,"t":"2026-12-05T01:00:00-05:00"}',
    ),
]


@pytest.mark.parametrize(("text", "serde"), SERDE_INTEGERS)
def test_integer_text_reads_as_serde_json_reads_it(text: bytes, serde: bytes) -> None:
    """GEN-3: JSON read into a value and written again gives serde_json's bytes,
    for integers outside u64/i64 and ``-0`` too (they become floats there)."""
    assert encode(decode(text, Any)) == serde
    assert encode(decode(text.decode(), Any)) == serde


@pytest.mark.parametrize(
    "text",
    [
        b"1" + b"0" * 309,
        b"17976931348623157" + b"0" * 292,
        b"-1" + b"0" * 320,
        b'{"n":[1' + b"0" * 400 + b"]}",
    ],
)
def test_integer_text_serde_json_cannot_read_is_refused(text: bytes) -> None:
    """serde_json refuses these (``number out of range``); so does decode."""
    with pytest.raises(DecodeError, match="number out of range"):
        decode(text, Any)


def test_integer_text_past_u64_in_a_typed_field_is_refused() -> None:
    """A u64 field given a longer integer or ``-0`` fails as serde's does
    (serde reads both as floats, then refuses a float for an integer)."""
    good = encode(LEASE)
    assert decode(good, ProcessLease) == LEASE
    for bad in (b"18446744073709551616", b"-0"):
        text = good.replace(b'"fencing_token":3', b'"fencing_token":' + bad)
        with pytest.raises(DecodeError, match="fencing_token"):
            decode(text, ProcessLease)


def test_tool_value_escape_and_normalize() -> None:
    """TO-1: ``ToolValue::from(Value)`` escapes objects holding the reserved key; decoding
    collapses a needless escape and rejects unknown reserved tags, like serde."""
    plain = {"a": {TOOL_VALUE_TAG: "attachment", "ref": {"id": "x"}}}
    escaped = {"a": {TOOL_VALUE_TAG: "object", "entries": plain["a"]}}
    assert tool_value_from_json(plain) == escaped
    assert tool_value_from_json([1, {"k": None}]) == [1, {"k": None}]
    needless = (
        b'{"outcome":{"status":"success",'
        b'"payload":{"$lash_tool_value":"object","entries":{"k":1}}}}'
    )
    assert (
        encode(decode(needless, ToolCallOutput))
        == b'{"outcome":{"status":"success","payload":{"k":1}}}'
    )
    kept = encode(ToolCallOutput(outcome=OutcomeSuccess(escaped)))
    assert encode(decode(kept, ToolCallOutput)) == kept
    with pytest.raises(
        DecodeError, match=r"at `\$\.outcome\.payload\.x`: unknown reserved tool value tag `zzz`"
    ):
        decode(
            b'{"outcome":{"status":"success","payload":{"x":{"$lash_tool_value":"zzz"}}}}',
            ToolCallOutput,
        )


def test_hook_values_compare_hash_and_freeze_by_serde_json() -> None:
    """SEL-1: selectors are values: equal and hashable by their serde JSON
    (serde_json ``Number``: 1 != 1.0, and true != 1)."""
    assert SelPointer("/x") == SelPointer("/x") and hash(SelPointer("/x")) == hash(SelPointer("/x"))
    assert SelConst(1) != SelConst(1.0)
    assert SelConst(True) != SelConst(1)
    assert SelConst({"a": [1]}) == SelConst({"a": [1]})
    assert len({SelPointer("/a"), SelPointer("/a"), DedupeConst("/a")}) == 2
    assert SelTemplate("t", {"b": SelPointer("/b")}) == SelTemplate("t", {"b": SelPointer("/b")})
    assert LeaseAcquired(LEASE) == LeaseAcquired(LEASE)
    assert SelPointer("/x") != "/x"
    with pytest.raises(AttributeError):
        SelPointer("/x").pointer = "/y"
    assert repr(SelPointer("/x")) == "SelPointer(pointer='/x')"


def test_to_builtins_and_canonical_json() -> None:
    """GEN-3: canonical JSON is compact with sorted keys; ``to_builtins`` is the decoded form."""
    sel = SelTemplate("t", {"z": SelPointer("/z"), "a": SelConst({"y": 1, "x": 2})})
    assert canonical_json(sel) == (
        b'{"template":{"template":"t","fields":{"a":{"const":{"x":2,"y":1}},"z":{"pointer":"/z"}}}}'
    )
    assert to_builtins(sel) == {
        "template": {
            "template": "t",
            "fields": {"a": {"const": {"x": 2, "y": 1}}, "z": {"pointer": "/z"}},
        }
    }
    assert decode(canonical_json(sel), ProcessValueSelector) == sel
