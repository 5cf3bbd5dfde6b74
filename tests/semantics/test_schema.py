"""Payload schemas (ET-4): lash's JSON-Schema subset and its quirks, checked
case by case, against lash's own unit tests, and by property against a direct
reading of lash's ``validate_schema``."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lash_streams import errors
from lash_streams.model import LashSchema
from lash_streams.semantics import validate_payload
from lash_streams.semantics.schema import explain


def _error(schema: Any, value: Any) -> str | None:
    try:
        validate_payload(LashSchema(schema=schema), value, event_type="t", process_id="p")
    except errors.InvalidPayload as err:
        assert err.process_id == "p"
        prefix = "invalid `t` payload: "
        assert str(err).startswith(prefix)
        return str(err)[len(prefix) :]
    return None


def _ok(schema: Any, value: Any) -> bool:
    return _error(schema, value) is None


# --- lash's schema_validation.rs unit tests -----------------------------------------------

OBJECT = {
    "type": "object",
    "properties": {"access_token": {"type": "string"}},
    "required": ["access_token"],
    "additionalProperties": False,
}


def test_et_4_missing_required_property_by_path() -> None:
    """ET-4 (validation_reports_missing_required_property_by_path)."""
    assert _error(OBJECT, {}) == "access_token: required property missing"


def test_et_4_numeric_limits_by_path() -> None:
    """ET-4 (validation_reports_numeric_limits_by_path)."""
    schema = {
        "type": "object",
        "properties": {"page_limit": {"type": "integer", "maximum": 20}},
        "required": ["page_limit"],
        "additionalProperties": False,
    }
    assert _error(schema, {"page_limit": 100}) == "page_limit: expected integer <= 20, got 100"


def test_et_4_quirk_unknown_property_rejected_when_additional_properties_omitted() -> None:
    """ET-4 quirk (validation_rejects_unknown_property_when_additional_properties_is_omitted)."""
    schema = {
        "type": "object",
        "properties": {
            "min_created_at": {"type": "string"},
            "max_created_at": {"type": "string"},
            "limit": {"type": "integer", "maximum": 100},
        },
        "required": ["limit"],
    }
    value = {"min_datetime": "2024-01-01T00:00:00Z", "limit": 20}
    assert _error(schema, value) == "min_datetime: unexpected property"


def test_et_4_additional_properties_true_and_internal_argument() -> None:
    """ET-4 (validation_allows_unknown_property_when_additional_properties_is_true,
    validation_preserves_internal_session_id_argument)."""
    open_schema = {
        "type": "object",
        "properties": {"path": {"type": "string"}},
        "additionalProperties": True,
    }
    assert _ok(open_schema, {"path": "README.md", "unknown": "preserved"})
    closed = {"type": "object", "properties": {"query": {"type": "string"}}}
    assert _ok(closed, {"query": "hello", "__session_id__": "session"})
    assert not _ok(closed, {"query": "hello", "__session_id__\n": "session"})


# --- quirks, one by one ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "value", "detail"),
    [
        ({"type": "integer"}, 1.0, "arguments: expected integer, got 1.0"),
        ({"type": "integer"}, True, "arguments: expected integer, got true"),
        ({"type": "integer"}, 2**64, "arguments: expected integer, got 18446744073709551616"),
        ({"type": ["string", "null"]}, 1, "arguments: expected string or null, got 1"),
        ({"type": []}, None, "arguments: expected , got null"),
        ({"type": [5]}, "x", 'arguments: expected , got "x"'),
        ({"enum": [1, "a"]}, 1.0, 'arguments: expected one of 1, "a", got 1.0'),
        ({"enum": [1]}, True, "arguments: expected one of 1, got true"),
        ({"enum": [[1]]}, [True], "arguments: expected one of [1], got [true]"),
        ({"enum": [{"a": 1}]}, {"a": 1.0}, 'arguments: expected one of {"a":1}, got {"a":1.0}'),
        ({"enum": []}, None, "arguments: expected one of , got null"),
        ({"minimum": 2}, 1, "arguments: expected >= 2, got 1"),
        ({"maximum": 0}, 0.5, "arguments: expected <= 0, got 0.5"),
        ({"maximum": 2**53}, 2**53 + 2, f"arguments: expected <= {2**53}, got {2**53 + 2}"),
        ({"maxLength": 2}, "abc", 'arguments: expected length <= 2, got "abc"'),
        ({"minLength": 2}, "\n", 'arguments: expected length >= 2, got "\\n"'),
        ({"maxItems": 1}, [1, 2], "arguments: expected items <= 1, got 2 items"),
        ({"items": {"type": "string"}}, ["a", 1], "[1]: expected string, got 1"),
        (
            {"properties": {"a": {"items": {"properties": {"b": {"type": "null"}}}}}},
            {"a": [{"b": 1}]},
            "a[0].b: expected null, got 1",
        ),
        ({"anyOf": [{"type": "string"}]}, 1, "arguments: expected matching schema, got 1"),
        ({"oneOf": [], "type": "string"}, "x", 'arguments: expected string, got "x"'),
        ({"anyOf": []}, 1, "arguments: expected matching schema, got 1"),
        (
            {"properties": {}, "additionalProperties": {"type": "string"}},
            {"x": 2},
            "x: expected string, got 2",
        ),
        (
            {"properties": {}, "additionalProperties": None},
            {"x": 2},
            "x: unexpected property",
        ),
        (
            {"properties": {}, "required": ["x"]},
            {"x": 1},
            "x: unexpected property",
        ),
    ],
)
def test_et_4_rejections(schema: Any, value: Any, detail: str) -> None:
    """ET-4: integer literals only (within i64/u64), type lists, serde_json
    equality for enum (1 != 1.0, true != 1, also nested), f64 bounds, u64
    lengths in code points, lash's path and message wording."""
    assert _error(schema, value) == detail


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({}, {"a": [1, None]}),
        (True, 1),
        (False, 1),  # lash reads no keyword from a non-object schema
        ({"type": "whatever"}, 1),
        ({"type": ["string", "whatever"]}, 1),
        ({"type": None}, 1),
        ({"type": "string", "pattern": "^a$", "format": "email", "$ref": "#/x"}, "zzz"),
        ({"type": "number"}, 1),
        ({"type": "integer"}, 2**64 - 1),
        ({"type": "integer"}, -(2**63)),
        ({"enum": [1, "a", None]}, None),
        ({"enum": [1, "a"]}, 1),
        ({"enum": [0.0]}, -0.0),
        ({"enum": [{"a": [1, {"b": True}]}]}, {"a": [1, {"b": True}]}),
        ({"enum": "not a list"}, 5),
        ({"minimum": 2}, "1"),
        ({"minimum": 2}, True),  # bounds apply to numbers only
        ({"maximum": 0}, True),
        ({"maximum": "0"}, 5),
        ({"maximum": 2**53}, 2**53 + 1),  # rounds to 2**53 as an f64
        ({"minimum": -(2**53)}, -(2**53) - 1),
        ({"maxLength": 3}, "ééé"),  # code points, not bytes
        ({"maxLength": 2.0}, "abc"),  # not a u64: ignored
        ({"maxLength": -1}, "abc"),
        ({"maxItems": True}, [1, 2]),
        ({"items": [{"type": "string"}]}, [1]),  # tuple form: not a schema object
        ({"oneOf": [{"type": "string"}, {"type": "string"}]}, "x"),  # not exactly-one
        ({"anyOf": [{"type": "string"}], "type": "integer"}, "x"),  # short-circuit
        ({"anyOf": 5, "oneOf": [{"type": "string"}]}, 1),  # non-array anyOf hides oneOf
        ({"additionalProperties": False}, {"anything": 1}),  # no properties: ignored
        ({"properties": [], "additionalProperties": False}, {"x": 1}),
        ({"properties": {}, "additionalProperties": {}}, {"x": 1}),
        ({"required": ["a"]}, "not an object"),
        ({"required": [1, "a"]}, {"a": 1}),
        ({"properties": {"a": {"type": "string"}}}, {"__session_id__": 5}),
    ],
)
def test_et_4_acceptances(schema: Any, value: Any) -> None:
    """ET-4: keywords outside the subset are ignored, as are malformed ones."""
    assert _ok(schema, value)


def test_et_4_internal_argument_is_validated_when_declared() -> None:
    """ET-4: ``__session_id__`` is only exempt from the unknown-property rule."""
    schema = {"properties": {"__session_id__": {"type": "string"}}}
    assert _error(schema, {"__session_id__": 5}) == "__session_id__: expected string, got 5"
    assert (
        _error({"required": ["__session_id__"]}, {}) == "__session_id__: required property missing"
    )


def test_et_4_message_escapes_strings_like_rust_debug() -> None:
    """ET-4 wording: strings display as Rust's ``{:?}`` (escapes, \\u{..})."""
    detail = _error({"type": "integer"}, 'q"\\\t\x1b\u0301é')
    assert detail == 'arguments: expected integer, got "q\\"\\\\\\t\\u{1b}\\u{301}é"'


def test_et_4_validators_are_cached_by_canonical_schema() -> None:
    """Compiled once per canonical schema JSON (key order does not matter)."""
    from lash_streams.semantics.schema import _validator

    _validator.cache_clear()
    _ok({"type": "object", "required": ["a"]}, {"a": 1})
    _ok({"required": ["a"], "type": "object"}, {"a": 2})
    assert _validator.cache_info().misses == 1


# --- property: agreement with a direct reading of lash's validate_schema --------------------------

I64_MIN, I64_MAX, U64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


def serde(value: Any) -> Any:
    """A Python JSON value as serde_json holds it: numbers tagged PosInt /
    NegInt / Float (an integer literal outside i64/u64 is an f64)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        if 0 <= value <= U64_MAX:
            return ("PosInt", value)
        if I64_MIN <= value < 0:
            return ("NegInt", value)
        return ("Float", float(value))
    if isinstance(value, float):
        return ("Float", value)
    if isinstance(value, list):
        return [serde(v) for v in value]
    return {k: serde(v) for k, v in value.items()}


def is_number(v: Any) -> bool:
    return isinstance(v, tuple)


def as_f64(v: Any) -> float | None:
    return float(v[1]) if is_number(v) else None


def as_u64(v: Any) -> int | None:
    return v[1] if is_number(v) and v[0] == "PosInt" else None


def get(schema: Any, key: str) -> Any:
    """``Value::get``: only objects have keys."""
    return schema.get(key) if isinstance(schema, dict) else None


def lash_validate(schema: Any, value: Any) -> bool:
    """lash's validate_schema, read line by line over serde values."""
    any_of = get(schema, "anyOf")
    if any_of is None:
        any_of = get(schema, "oneOf")
    if isinstance(any_of, list):
        return any(lash_validate(sub, value) for sub in any_of)
    enum = get(schema, "enum")
    if isinstance(enum, list) and not any(candidate == value for candidate in enum):
        return False
    # `schema.get("type")` is Some even for a JSON null.
    has_type = isinstance(schema, dict) and "type" in schema
    if has_type and not matches_type(get(schema, "type"), value):
        return False
    actual = as_f64(value)
    maximum = as_f64(get(schema, "maximum"))
    if maximum is not None and actual is not None and actual > maximum:
        return False
    minimum = as_f64(get(schema, "minimum"))
    if minimum is not None and actual is not None and actual < minimum:
        return False
    if isinstance(value, str):
        limit = as_u64(get(schema, "maxLength"))
        if limit is not None and len(value) > limit:
            return False
        limit = as_u64(get(schema, "minLength"))
        if limit is not None and len(value) < limit:
            return False
    if isinstance(value, list):
        limit = as_u64(get(schema, "maxItems"))
        if limit is not None and len(value) > limit:
            return False
        limit = as_u64(get(schema, "minItems"))
        if limit is not None and len(value) < limit:
            return False
        items = get(schema, "items")
        if items is not None and not all(lash_validate(items, item) for item in value):
            return False
    if isinstance(value, dict):
        required = get(schema, "required")
        for name in required if isinstance(required, list) else []:
            if isinstance(name, str) and name not in value:
                return False
        properties = get(schema, "properties")
        if isinstance(properties, dict):
            for name, sub in properties.items():
                if name in value and not lash_validate(sub, value[name]):
                    return False
            additional = get(schema, "additionalProperties")
            if additional is True:
                pass
            elif isinstance(additional, dict):
                extra = [
                    v for k, v in value.items() if k != "__session_id__" and k not in properties
                ]
                if not all(lash_validate(additional, item) for item in extra):
                    return False
            elif any(name != "__session_id__" and name not in properties for name in value):
                return False
    return True


def matches_type(type_value: Any, value: Any) -> bool:
    if isinstance(type_value, str):
        return matches_single(type_value, value)
    if isinstance(type_value, list):
        return any(matches_single(t, value) for t in type_value if isinstance(t, str))
    return True


def matches_single(name: str, value: Any) -> bool:
    return {
        "null": value is None,
        "boolean": isinstance(value, bool),
        "string": isinstance(value, str),
        "integer": is_number(value) and value[0] in ("PosInt", "NegInt"),
        "number": is_number(value),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }.get(name, True)


KEYS = st.sampled_from(["a", "b", "__session_id__", "__session_id__\n", "é\n"])
NUMBERS = st.one_of(
    st.integers(-3, 3),
    st.sampled_from(
        [
            0.0,
            -0.0,
            1.0,
            2.5,
            -1.5,
            2**53,
            2**53 + 1,
            2.0**53,
            2**63,
            U64_MAX,
            2**64,
            -(2**63),
            -(2**63) - 1,
        ]
    ),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.sampled_from(["", "a", "ab", "é", "1"]))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
)
TYPE_NAMES = ["null", "boolean", "string", "integer", "number", "array", "object", "other"]
TYPES = st.one_of(
    st.sampled_from(TYPE_NAMES),
    st.lists(st.sampled_from([*TYPE_NAMES, 5]), max_size=3),
    st.sampled_from([None, 7]),
)
LEAF = st.fixed_dictionaries(
    {},
    optional={
        "type": TYPES,
        "enum": st.lists(VALUES, max_size=3) | st.just("x"),
        "minimum": NUMBERS | st.sampled_from([True, "1"]),
        "maximum": NUMBERS | st.sampled_from([True, "1"]),
        "minLength": st.integers(-1, 3) | st.sampled_from([1.0, True]),
        "maxLength": st.integers(-1, 3) | st.sampled_from([1.0, True]),
        "minItems": st.integers(-1, 3) | st.sampled_from([1.0, 2**64]),
        "maxItems": st.integers(-1, 3) | st.sampled_from([1.0, True]),
        "required": st.lists(KEYS | st.just(1), max_size=3) | st.just("a"),
        "additionalProperties": st.sampled_from([True, False, None, 1, {}]),
        "pattern": st.just("^zzz$"),
    },
)


def _merge(parts: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    return {**parts[0], **parts[1]}


SCHEMAS: st.SearchStrategy[Any] = st.recursive(
    LEAF | st.sampled_from([True, False, 3, None, []]),
    lambda inner: st.tuples(
        LEAF,
        st.fixed_dictionaries(
            {},
            optional={
                "anyOf": st.lists(inner, max_size=3) | st.just(5),
                "oneOf": st.lists(inner, max_size=2),
                "items": inner,
                "properties": st.dictionaries(KEYS, inner, max_size=3) | st.just([]),
                "additionalProperties": inner,
            },
        ),
    ).map(_merge),
    max_leaves=6,
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SCHEMAS, VALUES)
@example({"maximum": 2**53}, 2**53 + 1)
@example({"minimum": 2**63}, 2**63 - 1)
@example({"enum": [2**64]}, 2**64)
@example({"type": ["integer", "null"]}, 2**64)
@example({"properties": {"a": {}}, "required": ["b"]}, {"b": 1})
def test_et_4_validator_agrees_with_lash(schema: Any, value: Any) -> None:
    """ET-4: the fastjsonschema translation accepts exactly what lash's
    validate_schema accepts, and the wording helper finds a violation exactly
    when there is one."""
    expected = lash_validate(serde(schema), serde(value))
    assert _ok(schema, value) is expected
    assert (explain(schema, value) is None) is expected
