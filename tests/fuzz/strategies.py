"""What the fuzz targets feed the bus: hostile ids, payloads, numbers, scopes.

Every strategy mixes values the bus must accept (and store exactly) with
values it must refuse: ids with braces, colons, glob characters, whitespace,
NUL, lone surrogates (not encodable as UTF-8), bytes where text is expected,
lengths around and far beyond ``ids.MAX_ID_BYTES``; payloads nested deeper
than serde's limit, huge strings, NaN/Infinity, integers beyond 64 bits and
non-JSON objects; durations that are negative, NaN, infinite or huge.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from lash_streams.ids import MAX_ID_BYTES
from lash_streams.model import SessionScope

NASTY = ["{", "}", ":", "*", "?", "[", "]", "\\", " ", "\t", "\n", "\x00", "%", "é", "🚀"]
SURROGATES = ["\ud800", "\udfff", "a\udc80b"]

_nasty_text = st.text(alphabet=st.sampled_from(NASTY) | st.characters(), max_size=12)
_hostile_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=12)

#: Text ids: valid ones (with special characters) and unstorable ones.
id_text = st.one_of(
    _nasty_text,
    _hostile_text,
    st.sampled_from(["", " ", "{}", "a:b", "*", "[x]", "\x00", *SURROGATES]),
    st.integers(MAX_ID_BYTES - 2, MAX_ID_BYTES + 2).map(lambda n: "i" * n),
    st.sampled_from([MAX_ID_BYTES // 2 + 1, 10_000]).map(lambda n: "é" * n),
)
#: Anything where an id is expected: text ids, bytes, and other types.
ids = st.one_of(
    id_text,
    st.binary(max_size=6),
    st.sampled_from([None, 0, 7, 1.5, True, ["a"], ("a",), {"a": 1}, b"\xff\xfe", object()]),
)

hostile_ints = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([-1, 0, 1, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64]),
)
#: Durations, timeouts, counts, cursors.
numbers = st.one_of(
    hostile_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([None, True, False, "10", b"1", 1j, float("nan"), float("-inf")]),
)


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for index in range(depth):
        value = [value] if index % 2 else {"k": value}
    return value


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    hostile_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    _hostile_text,
    st.binary(max_size=4),
    st.sets(st.integers(), max_size=2),
    st.sampled_from([object(), 1j, Ellipsis]),
)
#: Payloads: hostile JSON-ish trees, deep nesting (up to 10k levels), big strings.
payloads = st.one_of(
    st.recursive(
        _scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.tuples(inner),
            st.dictionaries(st.one_of(_hostile_text, st.integers(), st.none()), inner, max_size=3),
        ),
        max_leaves=8,
    ),
    st.sampled_from([100, 127, 128, 129, 1_000, 10_000]).map(_nested),
    st.sampled_from([1024 * 1024, 4 * 1024 * 1024 + 1]).map(lambda n: {"blob": "z" * n}),
)

#: Scopes: SessionScope with hostile parts, scope strings, and other types.
scopes = st.one_of(
    st.builds(SessionScope, session_id=ids, agent_frame_id=st.none() | ids),
    id_text,
    st.sampled_from([None, 5, b"session", ["s"]]),
)
