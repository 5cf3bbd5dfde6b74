"""Pure semantics: selectors, schemas, terminals, tool outputs, signals, ids."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lash_streams import errors
from lash_streams.model import (
    AbandonEvidence,
    AbandonWriter,
    AwaitAbandoned,
    AwaitCancelled,
    AwaitFailure,
    AwaitSuccess,
    ControlFinish,
    LashSchema,
    OutcomeCancelled,
    OutcomeFailure,
    OutcomeSuccess,
    ProcessTerminalSpec,
    ProcessTerminalState,
    SelConst,
    SelPayload,
    SelPointer,
    SelPresent,
    SelTemplate,
    ToolCallOutput,
    ToolCancellation,
    ToolFailureClass,
    ToolFailureSource,
    to_builtins,
)
from lash_streams.semantics.materialize import materialize_terminal
from lash_streams.semantics.schema import validate_payload
from lash_streams.semantics.selectors import is_truthy, resolve_pointer, select_value, stringify
from lash_streams.semantics.signals import signal_event_type, signal_name_from_event_type
from lash_streams.semantics.tool_output import (
    await_output_from_tool_output,
    await_output_to_tool_output,
    observed_error,
)
from lash_streams.semantics.wake import wake_turn_text

P = {"line": "done", "wake_input": "wake me"}


def test_s_sel_01_selector_kinds():
    """S-SEL-01 · SEL-1..SEL-6."""
    assert select_value(P, SelPayload()) == P
    assert select_value(P, SelPointer("/line")) == "done"
    assert select_value(P, SelConst({"ok": True})) == {"ok": True}
    assert select_value(P, SelTemplate("event: {line}", {"line": SelPointer("/line")})) == (
        "event: done"
    )
    assert select_value(P, SelPresent("/wake_input")) is True


def test_s_sel_02_selector_edge_cases_pure():
    """S-SEL-02 · SEL-3, SEL-5..SEL-8 (the bus-level half is in tests/conformance)."""
    with pytest.raises(errors.SelectorError, match="payload pointer `/flag` did not match"):
        select_value({}, SelPointer("/flag"))
    assert is_truthy(0) and is_truthy(0.0) and not is_truthy("") and not is_truthy(None)
    assert not is_truthy([]) and not is_truthy({}) and is_truthy([0]) and not is_truthy(False)
    template = SelTemplate("a {x} {y}", {"x": SelPointer("/x")})
    assert select_value({"x": 1}, template) == "a 1 {y}"
    assert select_value({"x": {"k": [1]}}, template) == 'a {"k":[1]} {y}'
    with pytest.raises(errors.SelectorError):
        select_value({"flag": True}, template)
    assert select_value({"flag": None}, SelPresent("/flag")) is True


@pytest.mark.parametrize(
    ("pointer", "found", "value"),
    [
        ("", True, {"a": [10, 20], "m~n": 1, "s/t": 2}),
        ("/a/1", True, 20),
        ("/a/01", False, None),
        ("/a/2", False, None),
        ("/a/-", False, None),
        ("/m~0n", True, 1),
        ("/s~1t", True, 2),
        ("a", False, None),
        ("/missing", False, None),
    ],
)
def test_rfc6901_pointers(pointer: str, found: bool, value: Any):
    doc = {"a": [10, 20], "m~n": 1, "s/t": 2}
    assert resolve_pointer(doc, pointer) == (found, value)


def test_stringify_is_raw_text_or_compact_sorted_json():
    assert stringify("x") == "x"
    assert stringify({"b": 1, "a": None}) == '{"a":null,"b":1}'
    assert stringify(1.5) == "1.5"


def test_s_tm_01_terminal_output_mapping_from_raw_values():
    """S-TM-01 · TM-1..TM-4."""
    failed = ProcessTerminalSpec(state=ProcessTerminalState.FAILED, await_output=SelPointer("/e"))
    out = materialize_terminal({"e": "disk full"}, failed).await_output
    assert to_builtins(out) == {
        "type": "failure",
        "class": "execution",
        "code": "process_failed",
        "message": "disk full",
        "raw": "disk full",
    }
    out = materialize_terminal({"e": {"code": 7}}, failed).await_output
    assert isinstance(out, AwaitFailure) and out.message == '{"code":7}' and out.raw == {"code": 7}
    cancelled = ProcessTerminalSpec(
        state=ProcessTerminalState.CANCELLED, await_output=SelPointer("/why")
    )
    assert materialize_terminal({"why": "user"}, cancelled).await_output == AwaitCancelled(
        message="user", raw="user"
    )
    quirk = materialize_terminal({"e": {"type": "success", "value": 1}}, failed)
    assert quirk.state is ProcessTerminalState.FAILED and quirk.await_output == AwaitSuccess(
        value=1
    )
    abandoned = ProcessTerminalSpec(
        state=ProcessTerminalState.ABANDONED, await_output=SelPointer("/e")
    )
    marker = materialize_terminal({"e": "gone"}, abandoned).await_output
    assert marker == AwaitAbandoned(
        evidence=AbandonEvidence(writer=AbandonWriter.OWNER_DRAIN, epoch_ms=0)
    )
    completed = ProcessTerminalSpec(state=ProcessTerminalState.COMPLETED)
    assert materialize_terminal({"r": 1}, completed).await_output == AwaitSuccess(value={"r": 1})


def test_s_ao_01_await_output_to_tool_output_mapping():
    """S-AO-01 · TO-1..TO-4."""
    control = ControlFinish(value=1)
    ok = await_output_to_tool_output(AwaitSuccess(value={"v": 1}, control=control))
    assert ok.outcome == OutcomeSuccess({"v": 1}) and ok.control == control
    failure = AwaitFailure(class_=ToolFailureClass.TIMEOUT, code="slow", message="m", raw=[1])
    mapped = await_output_to_tool_output(failure)
    assert isinstance(mapped.outcome, OutcomeFailure)
    assert mapped.outcome.failure.source is ToolFailureSource.TOOL
    assert (mapped.outcome.failure.code, mapped.outcome.failure.raw) == ("slow", [1])
    cancelled = await_output_to_tool_output(AwaitCancelled(message="stop"))
    assert cancelled.outcome == OutcomeCancelled(ToolCancellation.runtime("stop"))
    for writer, message in [
        (AbandonWriter.OWNER_DRAIN, "owner drained without recording an outcome"),
        (AbandonWriter.SWEEP, "recovery observed the owner provably dead"),
        (AbandonWriter.RECONCILED_REQUEST, "reconciled abandon request after the lease lapsed"),
    ]:
        evidence = AbandonEvidence(writer=writer, epoch_ms=9)
        tool = await_output_to_tool_output(AwaitAbandoned(evidence=evidence))
        assert isinstance(tool.outcome, OutcomeFailure)
        f = tool.outcome.failure
        assert (f.class_, f.code) == (ToolFailureClass.EXTERNAL, "process_abandoned")
        assert f.message == f"process abandoned: {message}"
        assert f.raw == to_builtins(evidence)
        back = await_output_from_tool_output(tool)
        assert isinstance(back, AwaitFailure)  # TO-3: never abandoned again
    assert observed_error(failure) == "m" and observed_error(AwaitCancelled(message="c")) == "c"
    assert observed_error(AwaitSuccess(value=1)) is None
    round_trip = await_output_from_tool_output(ToolCallOutput(outcome=OutcomeSuccess(2)))
    assert round_trip == AwaitSuccess(value=2)


def _invalid(schema: Any, payload: Any) -> bool:
    try:
        validate_payload(LashSchema(schema=schema), payload, event_type="t")
    except errors.InvalidPayload as err:
        assert str(err).startswith("invalid `t` payload: ")
        return True
    return False


def test_schema_subset_quirks():
    """ET-4, including the quirks lash's validator has."""
    obj = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert not _invalid(obj, {"n": 1})
    assert _invalid(obj, {"n": 1.0})  # 1.0 is not an integer
    assert _invalid(obj, {"n": 1, "extra": True})  # properties without additionalProperties
    assert not _invalid(obj, {"n": 1, "__session_id__": "s"})  # internal argument exempt
    assert not _invalid({**obj, "additionalProperties": True}, {"n": 1, "extra": True})
    assert _invalid({**obj, "additionalProperties": {"type": "string"}}, {"n": 1, "x": 2})
    assert not _invalid({"additionalProperties": False}, {"anything": 1})  # no properties
    assert _invalid({"enum": [1]}, 1.0) and _invalid({"enum": [1]}, True)
    assert not _invalid({"enum": [1, "a"]}, 1)
    assert not _invalid({"oneOf": [{"type": "string"}, {"type": "string"}]}, "x")  # anyOf-like
    assert not _invalid({"anyOf": [{"type": "string"}], "type": "integer"}, "x")
    assert not _invalid({"type": "whatever"}, 1)  # unknown type names match
    assert not _invalid({"type": "string", "pattern": "^a$", "format": "email"}, "zzz")
    assert _invalid({"type": "string", "maxLength": 2}, "abc")
    assert not _invalid({"type": "string", "maxLength": 3}, "ééé")  # code points, not bytes
    assert _invalid({"type": "array", "items": {"type": "integer"}, "maxItems": 1}, [1, 2])
    assert _invalid({"minimum": 2}, 1) and not _invalid({"minimum": 2}, "1")
    assert not _invalid({}, {"a": [1, None]})


def _reference(schema: Any, value: Any) -> bool:
    """A direct reading of lash's validate_schema, for the property below."""
    if not isinstance(schema, dict):
        return True
    branches = schema.get("anyOf", schema.get("oneOf"))
    if isinstance(branches, list):
        return any(_reference(b, value) for b in branches)
    if "enum" in schema and isinstance(schema["enum"], list):
        same = [e for e in schema["enum"] if type(e) is type(value) and e == value]
        if not same:
            return False
    kind = schema.get("type")
    names = {
        "null": lambda v: v is None,
        "boolean": lambda v: isinstance(v, bool),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    if isinstance(kind, str) and kind in names and not names[kind](value):
        return False
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        props = schema["properties"]
        for name, sub in props.items():
            if name in value and not _reference(sub, value[name]):
                return False
        extra = any(k not in props and k != "__session_id__" for k in value)
        if schema.get("additionalProperties") is not True and extra:
            return False
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                return False
    return True


leaf_schema = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["null", "boolean", "string", "integer", "number", "object"]),
        "enum": st.lists(
            st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from([1.0, "a"]), max_size=3
        ),
    },
)
object_schema = st.fixed_dictionaries(
    {
        "type": st.just("object"),
        "properties": st.dictionaries(st.sampled_from("abc"), leaf_schema, max_size=3),
    },
    optional={
        "required": st.lists(st.sampled_from("abc"), max_size=2, unique=True),
        "additionalProperties": st.just(True),
    },
)
values = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d", "__session_id__"]),
    st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from([1.0, 0.5, "a", "b"]),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(
    object_schema | st.builds(lambda b: {"anyOf": b}, st.lists(object_schema, max_size=2)), values
)
def test_validator_agrees_with_a_reference_reading_of_lash(schema: Any, value: Any):
    assert (not _invalid(schema, value)) == _reference(schema, value)


def test_sg_1_signal_names():
    """SG-1, SG-2."""
    for bad in ["", "a.b", "a b", "é", "line\n"]:
        with pytest.raises(errors.InvalidSignalName):
            signal_event_type(bad)
    assert signal_event_type("ready-1_x") == "signal.ready-1_x"
    assert signal_name_from_event_type("signal.go") == "go"
    assert signal_name_from_event_type("process.waiting") is None


def test_wk_10_wake_turn_text():
    from lash_streams.model import ProcessWakeDelivery

    d = ProcessWakeDelivery(
        wake_id="w",
        target_session_id="s",
        target_scope_id="session:s",
        process_id="p",
        sequence=3,
        event_type="e",
        dedupe_key="k",
        input="hello",
        created_at_ms=0,
    )
    assert (
        wake_turn_text(d) == "Background process wake\nProcess: p\nEvent: e #3\nWake input:\nhello"
    )


def test_ids_that_cannot_be_stored():
    from lash_streams.ids import id_bytes

    with pytest.raises(errors.InvalidId, match="UTF-8"):
        id_bytes("process id", "\udcff")
    with pytest.raises(errors.InvalidId, match="513 bytes"):
        id_bytes("process id", "x" * 513)
    assert id_bytes("process id", "ok") == b"ok"
