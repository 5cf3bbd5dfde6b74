"""A payload schema relying on what lash ignores (``pattern``, ``format``,
``$ref``, ...) or on its closed objects is accepted, with one warning per
distinct schema when it is compiled (docs/schemas.md)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from lash_streams import errors
from lash_streams.model import LashSchema
from lash_streams.semantics import schema as schema_module
from lash_streams.semantics.schema import check_schema, validate_payload
from lash_streams.semantics.schema_warnings import SHOWN, findings

LOGGER = "lash_streams.schema"


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    """Compiled validators are process-wide: a schema another test compiled
    first would not warn again here."""
    schema_module._validator.cache_clear()
    schema_module._by_schema.clear()
    yield


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def _validate(schema: Any, payload: Any, caplog: pytest.LogCaptureFixture) -> list[str]:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        validate_payload(LashSchema(schema=schema), payload, event_type="t")
    return _warnings(caplog)


@pytest.mark.parametrize(
    ("keyword", "value", "payload"),
    [
        ("pattern", "^[a-z]+$", "NOT LOWER"),
        ("format", "email", "not an email"),
        ("$ref", "#/definitions/name", 42),
        ("const", "x", "y"),
        ("multipleOf", 2, 3),
        ("not", {"type": "string"}, "a string"),
        ("allOf", [{"type": "string"}], 42),
    ],
)
def test_an_ignored_keyword_warns_once_per_schema(
    keyword: str, value: Any, payload: Any, caplog: pytest.LogCaptureFixture
) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {keyword: value}},
        "additionalProperties": False,
    }
    for _ in range(3):  # the payload breaks the keyword, yet passes: it is not validated
        _validate(schema, {"name": payload}, caplog)
    # An equal schema in another object is the same distinct schema.
    warned = _validate(dict(schema), {"name": payload}, caplog)
    assert len(warned) == 1, warned
    assert f"`{keyword}` at #/properties/name" in warned[0]
    assert "docs/schemas.md" in warned[0] and "\n" not in warned[0]
    assert "rejects unknown properties" not in warned[0]


def test_each_distinct_schema_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    first = {"type": "string", "pattern": "a"}
    second = {"type": "string", "pattern": "b"}
    for schema in (first, second, first, second):
        _validate(schema, "x", caplog)
    assert len(_validate(first, "x", caplog)) == 2


def test_every_ignored_keyword_of_a_schema_is_named_in_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "id": {"$ref": "#/definitions/id"},
            "tags": {"type": "array", "items": {"type": "string", "format": "uuid"}},
        },
        "patternProperties": {"^x-": {}},
        "additionalProperties": False,
        "definitions": {"id": {"type": "string", "pattern": "^[0-9]+$"}},
    }
    (warned,) = _validate(schema, {"id": 1, "tags": ["no uuid"]}, caplog)
    assert "`$ref` at #/properties/id" in warned
    assert "`format` at #/properties/tags/items" in warned
    assert "`patternProperties` at #" in warned
    # `definitions` is never read, so what is inside it is not reported either.
    assert "#/definitions" not in warned


def test_a_schema_of_the_subset_alone_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "order",
        "description": "annotations validate nothing anywhere, so they are not reported",
        "type": "object",
        "properties": {
            "id": {"type": "integer", "minimum": 1, "maximum": 10},
            "name": {"type": "string", "minLength": 1, "maxLength": 20, "default": "x"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 0, "maxItems": 3},
            "kind": {"enum": ["a", "b"]},
            "either": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "extra": {"type": "object", "properties": {}, "additionalProperties": True},
            "map": {"type": "object", "properties": {}, "additionalProperties": {"type": "number"}},
        },
        "required": ["id"],
        "additionalProperties": False,
    }
    assert _validate(schema, {"id": 1, "name": "n"}, caplog) == []
    assert not findings(schema)


def test_a_closed_object_says_so(caplog: pytest.LogCaptureFixture) -> None:
    schema = {
        "type": "object",
        "properties": {
            "step": {"type": "integer"},
            "where": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    for _ in range(2):
        with pytest.raises(errors.InvalidPayload, match="unexpected property"):
            _validate(schema, {"step": 1, "note": "unknown"}, caplog)
    (warned,) = _warnings(caplog)
    assert "rejects unknown properties at #, #/properties/where" in warned
    assert "ignores" not in warned


def test_a_required_name_outside_a_closed_object_rejects_everything() -> None:
    found = findings({"properties": {"a": {}}, "required": ["a", "b"]})
    assert found.rejects_every_object == ["required `b` at #"]
    assert not findings({"properties": {}, "required": ["__session_id__"]}).rejects_every_object


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "array", "items": [{"type": "string"}]}, "`items` (not a single schema) at #"),
        ({"type": "string", "minLength": 2.0}, "`minLength` (not a whole number >= 0) at #"),
        ({"type": "object", "additionalProperties": False}, "`additionalProperties` (without"),
        ({"anyOf": [{"type": "string"}], "type": "number"}, "`type` (beside `anyOf`) at #"),
        ({"anyOf": {"type": "string"}, "oneOf": []}, "`oneOf` (hidden by `anyOf`) at #"),
    ],
)
def test_a_keyword_lash_skips_for_its_value_or_place_is_named(
    schema: dict[str, Any], expected: str
) -> None:
    assert any(entry.startswith(expected) for entry in findings(schema).ignored)


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"properties": {"a": False}, "additionalProperties": True}, "the schema `false` at"),
        ({"type": "int"}, "unknown type `int` at #"),
        ({"anyOf": [{"type": "string"}, "number"]}, 'the schema `"number"` at #/anyOf/1'),
    ],
)
def test_a_schema_that_accepts_anything_is_named(schema: dict[str, Any], expected: str) -> None:
    assert any(entry.startswith(expected) for entry in findings(schema).accepts_anything)


def test_pointers_escape_property_names() -> None:
    schema = {"properties": {"a/b~c": {"format": "x"}}, "additionalProperties": True}
    assert findings(schema).ignored == ["`format` at #/properties/a~1b~0c"]


def test_a_long_list_is_cut_short(caplog: pytest.LogCaptureFixture) -> None:
    schema = {
        "type": "object",
        "properties": {f"p{i:02}": {"format": "x"} for i in range(SHOWN + 3)},
        "additionalProperties": True,
    }
    (warned,) = _validate(schema, {}, caplog)
    assert warned.count("`format`") == SHOWN and "and 3 more" in warned


def test_a_deep_schema_is_walked_without_recursion() -> None:
    schema: dict[str, Any] = {"format": "x"}
    for _ in range(5_000):
        schema = {"items": schema}
    assert len(findings(schema).ignored) == 1


def test_registration_warns_and_still_accepts(caplog: pytest.LogCaptureFixture) -> None:
    schema = LashSchema(schema={"type": "string", "format": "date-time"})
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        check_schema(schema, "t", "p")
        validate_payload(schema, "not a date", event_type="t")
    assert len(_warnings(caplog)) == 1
