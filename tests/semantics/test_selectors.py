"""Value selectors (SEL-1..SEL-8), ported from lash's process/tests.rs and
the S-SEL scenarios."""

from __future__ import annotations

from typing import Any

import pytest

from lash_streams import errors
from lash_streams.model import (
    ProcessValueSelector,
    SelConst,
    SelPayload,
    SelPointer,
    SelPresent,
    SelTemplate,
)
from lash_streams.semantics import is_truthy, resolve_pointer, select_value, stringify


def test_s_sel_01_selector_kinds() -> None:
    """S-SEL-01 (tests.rs selector_extracts_payload_pointer_const_template_and_present):
    SEL-2 payload, SEL-3 pointer, SEL-4 const, SEL-5 template, SEL-6 present."""
    payload = {"line": "done", "wake_input": "wake me"}
    assert select_value(payload, SelPayload()) == payload
    assert select_value(payload, SelPointer("/line")) == "done"
    assert select_value(payload, SelConst({"ok": True})) == {"ok": True}
    template = SelTemplate("event: {line}", {"line": SelPointer("/line")})
    assert select_value(payload, template) == "event: done"
    assert select_value(payload, SelPresent("/wake_input")) is True


def test_s_sel_02_pointer_that_does_not_match_is_a_selector_error() -> None:
    """S-SEL-02, SEL-3: message "payload pointer `<p>` did not match"."""
    with pytest.raises(errors.SelectorError, match=r"^payload pointer `/flag` did not match$"):
        select_value({}, SelPointer("/flag"))


def test_s_sel_02_template_keeps_placeholders_without_a_field() -> None:
    """S-SEL-02, SEL-5, SEL-7: `{y}` has no field and stays; non-strings render
    as compact JSON; a field whose pointer misses fails the whole template."""
    template = SelTemplate("a {x} {y}", {"x": SelPointer("/x")})
    assert select_value({"flag": None, "x": 1}, template) == "a 1 {y}"
    assert select_value({"x": {"k": [1]}}, template) == 'a {"k":[1]} {y}'
    with pytest.raises(errors.SelectorError, match="`/x` did not match"):
        select_value({"flag": True}, template)


def test_sel_5_template_fields_apply_in_ascending_name_order() -> None:
    """SEL-5: fields replace in ascending name order over the text rendered so
    far, so an earlier field's value can feed a later placeholder, never the
    reverse; every occurrence is replaced."""
    fields: dict[str, ProcessValueSelector] = {"b": SelConst("B"), "a": SelConst("{b}")}
    assert select_value(None, SelTemplate("{a}|{b}|{a}", fields)) == "B|B|B"
    reverse: dict[str, ProcessValueSelector] = {"a": SelConst("A"), "b": SelConst("{a}")}
    assert select_value(None, SelTemplate("{b}", reverse)) == "{a}"


def test_sel_6_present_counts_null_and_never_errors() -> None:
    """SEL-6: a present null counts; a bad pointer is just false."""
    assert select_value({"a": None}, SelPresent("/a")) is True
    assert select_value({"a": None}, SelPresent("/b")) is False
    assert select_value({"a": 1}, SelPresent("a")) is False


@pytest.mark.parametrize(
    ("pointer", "found", "value"),
    [
        ("", True, {"a/b": 1, "m~n": 2, "": 3, "list": [10, 20], "0": "zero"}),
        ("/a~1b", True, 1),
        ("/m~0n", True, 2),
        ("/", True, 3),
        ("/list/0", True, 10),
        ("/list/1", True, 20),
        ("/list/2", False, None),
        ("/list/01", False, None),  # leading zero
        ("/list/+1", False, None),
        ("/list/-1", False, None),
        ("/list/", False, None),
        ("/list/-", False, None),  # RFC 6901 "-" (past the end) never resolves
        ("/list/１", False, None),  # non-ASCII digit
        ("/0", True, "zero"),  # objects take digits as keys
        ("a~1b", False, None),  # must start with "/"
        ("/missing", False, None),
        ("/list/0/deeper", False, None),
    ],
)
def test_sel_3_rfc_6901_pointers(pointer: str, found: bool, value: Any) -> None:
    """SEL-3: serde_json's Value::pointer, including ~0/~1 and index rules."""
    document = {"a/b": 1, "m~n": 2, "": 3, "list": [10, 20], "0": "zero"}
    assert resolve_pointer(document, pointer) == (found, value)


def test_sel_3_escape_order_is_tilde_one_first() -> None:
    """SEL-3: ``~01`` unescapes to ``~1`` (``~1`` is replaced before ``~0``)."""
    assert resolve_pointer({"~1": "x", "/": "y"}, "/~01") == (True, "x")
    assert resolve_pointer({"~2": "kept"}, "/~2") == (True, "kept")


def test_sel_7_stringify() -> None:
    """SEL-7: raw string text, else compact serde JSON with sorted keys."""
    assert stringify("line\n") == "line\n"
    assert stringify({"b": 1, "a": [1.5, None, True]}) == '{"a":[1.5,null,true],"b":1}'
    assert stringify(7) == "7"
    assert stringify(1.0) == "1.0"
    assert stringify(1.5) == "1.5"
    assert stringify(None) == "null"
    assert stringify("é") == "é"


@pytest.mark.parametrize(
    ("value", "truthy"),
    [
        (None, False),
        (False, False),
        (True, True),
        (0, True),  # SEL-8 quirk
        (0.0, True),  # SEL-8 quirk
        (-1, True),
        ("", False),
        ("x", True),
        ([], False),
        ([0], True),
        ({}, False),
        ({"a": None}, True),
    ],
)
def test_sel_8_truthiness(value: Any, truthy: bool) -> None:
    """SEL-8: every number is truthy, 0 included."""
    assert is_truthy(value) is truthy
