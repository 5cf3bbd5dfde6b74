"""lash's float text on the wire (GEN-3, issue 11 item 9).

lash pins serde_json 1.0.149, which formats floats with zmij (since 1.0.147; it
used ryu before): the same shortest round-trip digits and the same layout as
ryu, fixed notation for 1e-5 <= |x| < 1e16 and exponent notation outside it, but
a non-negative exponent carries a ``+``: ``1e+16``, ``1.7976931348623157e+308``;
a negative one does not: ``1e-7``, ``5e-324``. The texts below are the ones
serde_json 1.0.149 writes (serde_json's and zmij's own tests pin ``f64::MAX`` as
``1.7976931348623157e+308``, ``f64::EPSILON`` as ``2.220446049250313e-16``,
``3.439070283483335e+35``, ``544431068535091.6``). Every encode, and so every
hash, must carry that text; string contents are never rewritten."""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lash_streams.model import (
    JsonValue,
    ProcessEvent,
    ProcessEventAppendRequest,
    ProcessEventSemantics,
    SelConst,
    _codec,
    canonical_json,
    decode,
    encode,
    to_builtins,
)
from lash_streams.semantics import payload_hash, stable_sha256_hex
from tests.model._fixtures import S_EV_02_INVOCATION, S_EV_02_INVOCATION_JSON
from tests.model.test_codec import ryu as _serde_float  # one reference of the layout

#: (value, serde_json 1.0.149 text).
FLOAT_TEXT = [
    # exponent form from 1e16 up, with "+"
    (1e16, "1e+16"),
    (-1e16, "-1e+16"),
    (1e17, "1e+17"),
    (1.5e17, "1.5e+17"),
    (1.2345678901234567e19, "1.2345678901234567e+19"),
    (123456789012345680000.0, "1.2345678901234568e+20"),
    (2.0**64, "1.8446744073709552e+19"),
    (1e21, "1e+21"),
    (1e100, "1e+100"),
    (1.5e300, "1.5e+300"),
    (3.439070283483335e35, "3.439070283483335e+35"),
    (6.079537928711555e61, "6.079537928711555e+61"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
    (-1.7976931348623157e308, "-1.7976931348623157e+308"),
    # fixed form just below 1e16 and down to 1e-5
    (9999999999999998.0, "9999999999999998.0"),
    (1e15, "1000000000000000.0"),
    (-5942736479622170.0, "-5942736479622170.0"),
    (544431068535091.6, "544431068535091.6"),
    (1.0, "1.0"),
    (0.1, "0.1"),
    (-0.0, "-0.0"),
    (0.00001, "0.00001"),
    # exponent form below 1e-5: negative exponents, no "+"
    (1e-6, "1e-6"),
    (1e-7, "1e-7"),
    (-1.25e-10, "-1.25e-10"),
    (2.220446049250313e-16, "2.220446049250313e-16"),
    (6.62607015e-34, "6.62607015e-34"),
    (5e-324, "5e-324"),
]


@pytest.mark.parametrize(("value", "text"), FLOAT_TEXT)
def test_float_text_is_serde_json_1_0_149(value: float, text: str) -> None:
    """GEN-3: a float alone, in a list and as an object value prints as lash's."""
    assert encode(value).decode() == text
    assert encode([value, value]).decode() == f"[{text},{text}]"
    assert encode({"k": value}).decode() == f'{{"k":{text}}}'
    assert canonical_json({"a": [{"b": value}]}).decode() == f'{{"a":[{{"b":{text}}}]}}'


@pytest.mark.parametrize(("value", "text"), FLOAT_TEXT)
def test_float_text_decodes_and_round_trips(value: float, text: str) -> None:
    """The ``e+`` text reads back as the same float, and re-encodes byte-equal."""
    back = decode(text.encode(), float)
    assert back == value and math.copysign(1.0, back) == math.copysign(1.0, value)
    assert encode(decode(text.encode(), JsonValue)).decode() == text
    wrapped = f'{{"x":[{text},"{text}"]}}'.encode()
    assert encode(decode(wrapped, JsonValue)) == wrapped


def test_event_payload_floats_in_structs() -> None:
    """GEN-3: floats nested in an append request's and an event's payload."""
    payload = {
        "big": 1e16,
        "list": [1.5e300, -1e16, 1e-7, 0.00001, 1e15, 1.7976931348623157e308, 5e-324],
        "nested": {"x": [123456789012345680000.0, {"y": 1e17}]},
        "text": "1e16",
    }
    payload_json = (
        '{"big":1e+16,'
        '"list":[1.5e+300,-1e+16,1e-7,0.00001,1000000000000000.0,'
        "1.7976931348623157e+308,5e-324],"
        '"nested":{"x":[1.2345678901234568e+20,{"y":1e+17}]},'
        '"text":"1e16"}'
    )
    request = ProcessEventAppendRequest.new("producer.measured", payload)
    request_json = f'{{"event_type":"producer.measured","payload":{payload_json}}}'
    assert encode(request).decode() == request_json
    assert decode(request_json.encode(), ProcessEventAppendRequest) == request
    assert encode(decode(request_json.encode(), ProcessEventAppendRequest)).decode() == (
        request_json
    )

    event = ProcessEvent.new(
        process_id="proc-provenance",
        sequence=1,
        event_type="producer.custom_wake",
        payload=payload,
        invocation=S_EV_02_INVOCATION,
        semantics=ProcessEventSemantics(),
        occurred_at_ms=1_700_000_000_123,
    )
    event_json = (
        '{"process_id":"proc-provenance","sequence":1,"event_type":"producer.custom_wake",'
        f'"payload":{payload_json},'
        f'"invocation":{S_EV_02_INVOCATION_JSON},'
        '"semantics":{},'
        '"occurred_at":{"secs_since_epoch":1700000000,"nanos_since_epoch":123000000}}'
    )
    assert encode(event).decode() == event_json
    assert encode(decode(event_json.encode(), ProcessEvent)).decode() == event_json
    assert to_builtins(event)["payload"] == payload


def test_hook_values_print_lash_float_text() -> None:
    """Hook-encoded values go through the same text, and stay equal by it."""
    assert encode(SelConst(1e16)) == b'{"const":1e+16}'
    assert SelConst(1e16) == SelConst(1e16)
    assert hash(SelConst(1e16)) == hash(SelConst(1e16))
    assert SelConst(1e16) != SelConst(1e17)
    assert SelConst(1.0) != SelConst(1)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1e16", '"1e16"'),
        ('a"1e5', '"a\\"1e5"'),
        ("a\\", '"a\\\\"'),
        (["a\\", 1e16, "b\\\\", "2e5"], '["a\\\\",1e+16,"b\\\\\\\\","2e5"]'),
        (['\\"1e5', 1e16, '1e5"'], '["\\\\\\"1e5",1e+16,"1e5\\""]'),
        ({"k1e5": "x\\1e5", "1e16": 1e16}, '{"1e16":1e+16,"k1e5":"x\\\\1e5"}'),
        ({"9e9": {"8e8": ["7e7", 7e17]}}, '{"9e9":{"8e8":["7e7",7e+17]}}'),
        (
            "wake:46cb109adef9ba0513a94be3a54c1a0adf5e05fcbbe38b46ba57e14f546b1e00",
            '"wake:46cb109adef9ba0513a94be3a54c1a0adf5e05fcbbe38b46ba57e14f546b1e00"',
        ),
        (["é1e5", ",1e5]", ":2e7}", 1e-7], '["é1e5",",1e5]",":2e7}",1e-7]'),
        ("\n1e5\u0001", '"\\n1e5\\u0001"'),
    ],
)
def test_strings_and_keys_are_never_rewritten(value: Any, text: str) -> None:
    """Text that looks like an exponent inside a string or a key is left alone."""
    assert encode(value).decode() == text
    assert encode(decode(text.encode(), JsonValue)).decode() == text


def test_payload_hash_digests_the_lash_text() -> None:
    """GEN-3 / EV-2: hashes are over the ``e+`` text, as a Rust host computes them."""
    assert payload_hash("t", {"x": 1e16}) == hashlib.sha256(b'["t",{"x":1e+16}]').hexdigest()
    assert stable_sha256_hex([1.5e300, "1e16"]) == (
        hashlib.sha256(b'[1.5e+300,"1e16"]').hexdigest()
    )
    assert stable_sha256_hex(1e-7) == hashlib.sha256(b"1e-7").hexdigest()


_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}


def _serde_string(text: str) -> str:
    return (
        '"'
        + "".join(_SHORT.get(ch, f"\\u{ord(ch):04x}" if ord(ch) < 0x20 else ch) for ch in text)
        + '"'
    )


def _serde_text(value: Any) -> str:
    """serde_json's text of plain JSON, written from its rules."""
    if isinstance(value, float):
        return _serde_float(value)
    if isinstance(value, str):
        return _serde_string(value)
    if isinstance(value, list):
        return "[" + ",".join(_serde_text(item) for item in value) + "]"
    items = sorted(value.items())
    return "{" + ",".join(f"{_serde_string(k)}:{_serde_text(v)}" for k, v in items) + "}"


_TRICKY = st.text(alphabet='0123456789e.+-",:[]{}\\\n x', max_size=12)
_JSON = st.recursive(
    st.floats(allow_nan=False, allow_infinity=False) | _TRICKY,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TRICKY, inner, max_size=4),
    max_leaves=12,
)


@pytest.mark.parametrize(("value", "text"), FLOAT_TEXT)
def test_reference_layout(value: float, text: str) -> None:
    assert _serde_float(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_float_prints_as_serde_json(value: float) -> None:
    """GEN-3 for every finite float."""
    assert encode(value).decode() == _serde_float(value)


@given(_JSON)
def test_any_json_with_tricky_strings_prints_as_serde_json(value: Any) -> None:
    """Floats get lash's text wherever they sit; strings and keys made of digits,
    ``e``, quotes, backslashes and JSON punctuation come out as serde escapes them."""
    text = encode(value).decode()
    assert text == _serde_text(value)
    assert encode(decode(text.encode(), JsonValue)).decode() == text


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [
        ("t", {"x": 1e16}),
        ("1e5", 1e16),  # an exponent-looking type name stays text
        ("t", [1e-7, 2.5e-6, "1e16", {"k": 1.7976931348623157e308}]),
        ("t", None),
        ("é✓", {"nested": [{"deep": 1e300}]}),
    ],
)
def test_the_append_path_hashes_the_payload_as_payload_hash_does(
    event_type: str, payload: object
) -> None:
    # The append encodes the payload once and digests `[type, payload]` from
    # the two encodings (semantics/append.py): the same digest, to the byte.
    from lash_streams.model import ProcessEventAppendRequest
    from lash_streams.semantics.append import _encoded, request_payload_hash

    request = ProcessEventAppendRequest(event_type=event_type, payload=payload)
    _, payload_json = _encoded(request, "p")
    assert request_payload_hash(request, "p") == payload_hash(event_type, payload)
    assert payload_json == canonical_json(payload)


_MAYBE_EXPONENT = re.compile(rb"[0-9]e[0-9]")
_ONE_PATTERN = re.compile(rb"(?:^|[\[:,])-?[0-9]+(?:\.[0-9]+)?e[0-9]")


def _lash_text_by_one_pattern(out: bytes) -> bytes:
    """The rewrite with its pre-tests as patterns (how it was written first;
    the byte tests are several times faster on wake ids)."""
    if _MAYBE_EXPONENT.search(out) is None or _ONE_PATTERN.search(out) is None:
        return out
    return _codec._STRING_OR_EXPONENT.sub(_codec._plus, out)


@pytest.mark.parametrize(
    "text",
    [b"1e16", b"-1e16", b"1.5e300", b"[1e16]", b'{"a":1e16}', b'"3e5"', b'{"h":"a3e5b"}',
     b"[1,2e22]", b'{"a":"x","b":-2.5e17}', b"12", b'"1e16"', b"e16", b"1e-7", b'["a:1e5"]'],
)  # fmt: skip
def test_the_fast_pre_tests_rewrite_what_the_patterns_did(text):
    assert _codec._lash_text(text) == _lash_text_by_one_pattern(text)


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(alphabet="0123456789abcdef-e.:,[]", max_size=12),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_the_fast_pre_tests_agree_with_the_patterns(value):
    out = _codec._ENCODER.encode(value)
    assert _codec._lash_text(out) == _lash_text_by_one_pattern(out)


_CORPUS = Path(__file__).parent / "data" / "serde_json_1_0_149.tsv"


def test_json_read_and_written_again_equals_serde_json_byte_for_byte() -> None:
    """GEN-3 over 400 generated JSON texts (escapes, controls, U+2028, astral
    characters, unsorted keys, u64/i64 extremes, floats of every exponent),
    each beside what serde_json 1.0.149 wrote after reading it into a
    ``Value``: string escaping, key order and float text all as serde's. The
    outputs came from serde_json built with ``float_roundtrip``, which reads a
    float's text exactly as msgspec does; lash's default build reads some
    17-digit text one unit in the last place away (docs/guarantees.md)."""
    lines = _CORPUS.read_bytes().splitlines()
    assert len(lines) == 400
    for line in lines:
        text, serde = line.split(b"\t")
        assert encode(decode(text, JsonValue)) == serde, text
