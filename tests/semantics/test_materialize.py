"""Terminal and wake materialization (TM-1..TM-4, WK-1..WK-4), through
``plan_append`` where a scenario appends."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lash_streams import errors
from lash_streams.model import (
    AbandonEvidence,
    AbandonWriter,
    AwaitAbandoned,
    AwaitCancelled,
    AwaitFailure,
    AwaitSuccess,
    DedupeConst,
    DedupeSelector,
    ProcessAwaitOutput,
    ProcessEventAppendRequest,
    ProcessTerminalSpec,
    ProcessTerminalState,
    SelConst,
    SelPayload,
    SelPointer,
    SelPresent,
    SelTemplate,
    SessionScope,
    StatusFailed,
    ToolFailureClass,
    decode,
    encode,
    to_builtins,
)
from lash_streams.semantics import (
    await_output_to_tool_output,
    materialize_terminal,
    parse_await_output,
    plan_append,
)
from tests.semantics._fixtures import record, terminal_type, wake_type

FAILED = ProcessTerminalState.FAILED


def _terminal_plan(state: ProcessTerminalState, pointer: str, payload: Any) -> Any:
    rec = record("p1", terminal_type("job.end", state, SelPointer(pointer)))
    request = ProcessEventAppendRequest.new("job.end", payload).with_replay_key("k")
    return plan_append(rec, request, sequence=1, occurred_at_ms=5)


def test_s_tm_01_terminal_output_mapping_from_raw_values() -> None:
    """S-TM-01, TM-2, EV-12: raw values map by the declared state."""
    plan = _terminal_plan(FAILED, "/error", {"error": "disk full"})
    assert to_builtins(plan.status_update) == {
        "state": "failed",
        "await_output": {
            "type": "failure",
            "class": "execution",
            "code": "process_failed",
            "message": "disk full",
            "raw": "disk full",
        },
    }
    plan = _terminal_plan(FAILED, "/error", {"error": {"code": 7}})
    assert plan.status_update.await_output.message == '{"code":7}'
    assert plan.status_update.await_output.raw == {"code": 7}
    plan = _terminal_plan(ProcessTerminalState.CANCELLED, "/why", {"why": "user"})
    assert to_builtins(plan.status_update.await_output) == {
        "type": "cancelled",
        "message": "user",
        "raw": "user",
    }


def test_s_tm_01_tm_4_declared_state_wins_over_the_parsed_variant() -> None:
    """S-TM-01, TM-4 quirk: a failed-state type carrying a serialized success
    records status failed whose await output is that success."""
    plan = _terminal_plan(FAILED, "/error", {"error": {"type": "success", "value": 1}})
    assert plan.status_update == StatusFailed(await_output=AwaitSuccess(value=1))
    assert plan.event.semantics.terminal.state is FAILED


def test_tm_2_completed_and_abandoned_raw_values() -> None:
    """TM-2: completed wraps the raw value; abandoned synthesizes owner-drain
    evidence at epoch 0 (quirk)."""
    spec = ProcessTerminalSpec(state=ProcessTerminalState.COMPLETED, await_output=SelPointer("/v"))
    assert materialize_terminal({"v": [1]}, spec).await_output == AwaitSuccess(value=[1])
    spec = ProcessTerminalSpec(state=ProcessTerminalState.ABANDONED, await_output=SelPayload())
    assert materialize_terminal("gone", spec).await_output == AwaitAbandoned(
        evidence=AbandonEvidence(writer=AbandonWriter.OWNER_DRAIN, epoch_ms=0)
    )


def test_tm_3_no_selector() -> None:
    """TM-3: completed without a selector succeeds with the whole payload;
    other states are refused defensively at append."""
    spec = ProcessTerminalSpec(state=ProcessTerminalState.COMPLETED)
    assert materialize_terminal({"a": 1}, spec).await_output == AwaitSuccess(value={"a": 1})
    with pytest.raises(errors.SelectorError, match="must declare await output"):
        materialize_terminal({}, ProcessTerminalSpec(state=FAILED))


def test_tm_2_selector_error_fails_the_append() -> None:
    """TM-2, EV-2 step 7: a terminal pointer that misses is a selector error."""
    with pytest.raises(errors.SelectorError, match="`/error` did not match"):
        _terminal_plan(FAILED, "/error", {"other": 1})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"type": "success", "value": None}, AwaitSuccess(value=None)),
        ({"type": "success", "value": 1, "extra": "ignored"}, AwaitSuccess(value=1)),
        (["success", 2], AwaitSuccess(value=2)),
        (
            ["failure", "timeout", "c", "m"],
            AwaitFailure(class_=ToolFailureClass.TIMEOUT, code="c", message="m"),
        ),
        (["cancelled", "m", {"r": 1}], AwaitCancelled(message="m", raw={"r": 1})),
        (
            {"type": "abandoned", "evidence": {"writer": "sweep", "epoch_ms": 3}},
            AwaitAbandoned(evidence=AbandonEvidence(writer=AbandonWriter.SWEEP, epoch_ms=3)),
        ),
        ({"type": "success"}, None),  # `value` is required
        ({"type": "failure", "class": "nope", "code": "c", "message": "m"}, None),
        ({"type": "abandoned", "evidence": {"writer": "sweep", "epoch_ms": 1.0}}, None),
        ({"type": "other", "value": 1}, None),
        ({"value": 1}, None),
        (["success"], None),
        (["success", 1, None, "extra"], None),
        ("success", None),
        (1, None),
    ],
)
def test_tm_2_well_formed_await_output(value: Any, expected: Any) -> None:
    """TM-2, AO-1: what serde's ``from_value::<ProcessAwaitOutput>`` accepts:
    unknown fields ignored, the top-level array form accepted, strict types."""
    assert parse_await_output(value) == expected


def _append_all(rec: Any, appends: list[tuple[str, Any]], target: SessionScope) -> list[Any]:
    plans = []
    for sequence, (event_type, payload) in enumerate(appends, start=1):
        request = ProcessEventAppendRequest.new(event_type, payload).with_wake_target_scope(target)
        plans.append(plan_append(rec, request, sequence=sequence, occurred_at_ms=100 + sequence))
    return plans


def test_s_wk_01_wake_semantics_matrix() -> None:
    """S-WK-01: WK-1..WK-3, WK-6, WK-9 (no suppression: equal dedupe keys give
    equal wake ids on distinct deliveries)."""
    pid = "proc-wake-matrix"
    rec = record(
        pid,
        wake_type("matrix.when_false", when=SelConst(False), input=SelConst("must not wake")),
        wake_type("matrix.payload", input=SelPayload()),
        wake_type("matrix.const_input", input=SelConst("constant wake input")),
        wake_type(
            "matrix.template",
            input=SelTemplate(
                "line {line} #{n}", {"line": SelPointer("/line"), "n": SelPointer("/n")}
            ),
        ),
        wake_type(
            "matrix.selector_dedupe",
            input=SelPointer("/wake_input"),
            dedupe_key=DedupeSelector(SelPointer("/dedupe")),
        ),
        wake_type(
            "matrix.const_dedupe",
            input=SelPointer("/wake_input"),
            dedupe_key=DedupeConst("constant-dedupe"),
        ),
    )
    plans = _append_all(
        rec,
        [
            ("matrix.when_false", {}),
            ("matrix.payload", "payload wake"),
            ("matrix.const_input", {}),
            ("matrix.template", {"line": "done", "n": 7}),
            ("matrix.selector_dedupe", {"wake_input": "selector one", "dedupe": "group-a"}),
            ("matrix.selector_dedupe", {"wake_input": "selector two", "dedupe": "group-a"}),
            ("matrix.const_dedupe", {"wake_input": "const one"}),
            ("matrix.const_dedupe", {"wake_input": "const two"}),
        ],
        SessionScope(session_id="root"),
    )
    assert plans[0].wake_delivery is None and plans[0].event.semantics.wake is None
    rows = [
        (p.wake_delivery.input, p.wake_delivery.dedupe_key, p.wake_delivery.wake_id)
        for p in plans[1:]
    ]
    assert [(i, d) for i, d, _ in rows] == [
        ("payload wake", f"{pid}:2"),
        ("constant wake input", f"{pid}:3"),
        ("line done #7", f"{pid}:4"),
        ("selector one", "group-a"),
        ("selector two", "group-a"),
        ("const one", "constant-dedupe"),
        ("const two", "constant-dedupe"),
    ]
    ids = [w for _, _, w in rows]
    assert ids[0].startswith("wake:30b52463") and ids[0].endswith("f2be")
    assert ids[1].startswith("wake:2858e3a6") and ids[1].endswith("5cd4")
    assert ids[2].startswith("wake:35dd4910") and ids[2].endswith("42af9")
    assert ids[3] == ids[4] and ids[3].startswith("wake:47638cea")
    assert ids[5] == ids[6] and ids[5].startswith("wake:51dc335f")
    assert len(set(ids)) == 5


def test_s_sel_02_wake_when_edge_cases() -> None:
    """S-SEL-02 (pure parts), WK-2, SEL-8: `when` pointer must resolve; 0 is
    truthy; "" and null are not (no wake stored, no delivery)."""
    rec = record(
        "p",
        wake_type("w1", when=SelPointer("/flag"), input=SelConst("x")),
        wake_type(
            "w2",
            when=SelPresent("/flag"),
            input=SelTemplate("a {x} {y}", {"x": SelPointer("/x")}),
        ),
    )
    target = SessionScope(session_id="t")

    def plan(event_type: str, payload: Any) -> Any:
        request = ProcessEventAppendRequest.new(event_type, payload).with_wake_target_scope(target)
        return plan_append(rec, request, sequence=1, occurred_at_ms=1)

    with pytest.raises(errors.SelectorError, match="`/flag` did not match"):
        plan("w1", {})
    assert plan("w1", {"flag": 0}).wake_delivery is not None
    for falsy in ("", None):
        falsy_plan = plan("w1", {"flag": falsy})
        assert falsy_plan.wake_delivery is None and falsy_plan.event.semantics.wake is None
    assert plan("w2", {"flag": None, "x": 1}).wake_delivery.input == "a 1 {y}"
    with pytest.raises(errors.SelectorError, match="`/x` did not match"):
        plan("w2", {"flag": True})
    assert plan("w2", {"flag": True, "x": {"k": [1]}}).wake_delivery.input == 'a {"k":[1]} {y}'


def test_wk_4_wake_is_stored_without_a_target() -> None:
    """WK-4, WK-5: the wake is materialized on the event even when no target
    resolves; the append then has no delivery."""
    rec = record("p", wake_type("w", input=SelConst("in")))
    plan = plan_append(rec, ProcessEventAppendRequest.new("w", {}), sequence=3, occurred_at_ms=1)
    assert plan.event.semantics.wake is not None
    assert plan.event.semantics.wake.dedupe_key == "p:3"
    assert plan.wake_delivery is None


def test_tm_2_a_null_raw_value_is_written_as_lash_writes_it() -> None:
    """TM-2 with a selected JSON null: lash builds ``raw: Some(Value::Null)``,
    which serde writes as ``"raw":null`` (only ``None`` is skipped); an await
    output built without ``raw`` leaves it out, and both read back as written.
    Checked against lash's materialization compiled from cc4a0e3b."""
    plan = _terminal_plan(FAILED, "/error", {"error": None})
    assert encode(plan.status_update.await_output) == (
        b'{"type":"failure","class":"execution","code":"process_failed",'
        b'"message":"null","raw":null}'
    )
    cancelled = ProcessTerminalSpec(state=ProcessTerminalState.CANCELLED, await_output=SelPayload())
    assert encode(materialize_terminal(None, cancelled).await_output) == (
        b'{"type":"cancelled","message":"null","raw":null}'
    )
    bare = AwaitFailure(class_=ToolFailureClass.EXECUTION, code="c", message="m")
    assert b"raw" not in encode(bare)
    for text in (encode(plan.status_update.await_output), encode(bare)):
        assert encode(decode(text, ProcessAwaitOutput)) == text
    # TO-1 carries the null on to the tool failure, as lash's mapping does.
    tool = await_output_to_tool_output(plan.status_update.await_output)
    assert encode(tool).endswith(b'"retry":{"type":"never"},"raw":null}}}')
    assert encode(await_output_to_tool_output(bare)).endswith(b'"retry":{"type":"never"}}}}')


# serde_json::from_value::<ProcessAwaitOutput> on each value, as lash's TM-2 runs it
# (its output printed by lash's materialization compiled from cc4a0e3b; None: serde
# failed, so lash mapped the value by the declared state).
SERDE_AWAIT_OUTPUTS = [
    ('{"type":1,"class":"execution","code":"c","message":"m"}', None),
    ('{"type":"failure","class":4,"code":"c","message":"m"}', None),
    (
        '{"type":"failure","class":{"execution":null},"code":"c","message":"m"}',
        '{"type":"failure","class":"execution","code":"c","message":"m"}',
    ),
    ('{"type":"failure","class":{"execution":1},"code":"c","message":"m"}', None),
    ('{"type":"failure","class":["execution"],"code":"c","message":"m"}', None),
    (
        '{"type":"abandoned","evidence":["sweep",null,3]}',
        '{"type":"abandoned","evidence":{"writer":"sweep","epoch_ms":3}}',
    ),
    (
        '{"type":"abandoned","evidence":["sweep",["a","b"],3]}',
        '{"type":"abandoned","evidence":{"writer":"sweep","owner":{"owner_id":"a","incarnation_id":"b","liveness":{"kind":"opaque"}},"epoch_ms":3}}',
    ),
    (
        '{"type":"abandoned","evidence":["sweep",["a","b",{"kind":1}],3]}',
        '{"type":"abandoned","evidence":{"writer":"sweep","owner":{"owner_id":"a","incarnation_id":"b","liveness":{"kind":"opaque"}},"epoch_ms":3}}',
    ),
    (
        '{"type":"abandoned","evidence":["sweep",["a","b",{"kind":0,"host_id":"h","boot_id":"b","pid":1,"process_start":"s"}],3]}',
        '{"type":"abandoned","evidence":{"writer":"sweep","owner":{"owner_id":"a","incarnation_id":"b","liveness":{"kind":"local_process","host_id":"h","boot_id":"b","pid":1,"process_start":"s"}},"epoch_ms":3}}',
    ),
    (
        '{"type":"abandoned","evidence":["sweep",["a","b",["local_process","h","b",1,"s"]],3]}',
        '{"type":"abandoned","evidence":{"writer":"sweep","owner":{"owner_id":"a","incarnation_id":"b","liveness":{"kind":"local_process","host_id":"h","boot_id":"b","pid":1,"process_start":"s"}},"epoch_ms":3}}',
    ),
    ('{"type":"abandoned","evidence":["sweep",3]}', None),
    ('{"type":"abandoned","evidence":["sweep",null,3,4]}', None),
    ('{"type":"abandoned","evidence":{"writer":"sweep","epoch_ms":3.0}}', None),
    ('{"type":"abandoned","evidence":{"writer":"sweep","epoch_ms":-3}}', None),
    ('{"type":"abandoned","evidence":{"writer":"sweep","epoch_ms":"3"}}', None),
    (
        '{"type":"abandoned","evidence":{"writer":"sweep","epoch_ms":3,"owner":null}}',
        '{"type":"abandoned","evidence":{"writer":"sweep","epoch_ms":3}}',
    ),
    ('{"type":"abandoned","evidence":{"writer":1,"epoch_ms":3}}', None),
    ('{"type":true,"value":1}', None),
    ('{"type":"success","value":1,"control":null}', '{"type":"success","value":1}'),
    (
        '{"type":"success","value":1,"control":{"type":2,"failure":["internal","c","m","tool",{"type":0}]}}',
        '{"type":"success","value":1,"control":{"type":"fail","failure":{"class":"internal","code":"c","message":"m","source":"tool","retry":{"type":"never"}}}}',
    ),
    (
        '{"type":"success","value":1,"control":{"type":"fail","failure":["internal","c","m","tool",["safe"]]}}',
        '{"type":"success","value":1,"control":{"type":"fail","failure":{"class":"internal","code":"c","message":"m","source":"tool","retry":{"type":"safe"}}}}',
    ),
    (
        '{"type":"success","value":1,"control":{"type":"fail","failure":["internal","c","m","tool",["safe",5]]}}',
        '{"type":"success","value":1,"control":{"type":"fail","failure":{"class":"internal","code":"c","message":"m","source":"tool","retry":{"type":"safe","after_ms":5}}}}',
    ),
    (
        '{"type":"success","value":1,"control":{"type":"fail","failure":["internal","c","m","tool",["exhausted",4294967296]]}}',
        None,
    ),
    (
        '{"type":"success","value":1,"control":{"type":"fail","failure":["internal","c","m","tool",{"type":"never"},null]}}',
        '{"type":"success","value":1,"control":{"type":"fail","failure":{"class":"internal","code":"c","message":"m","source":"tool","retry":{"type":"never"}}}}',
    ),
    (
        '{"type":"success","value":1,"control":{"type":"fail","failure":["internal","c","m","tool",{"type":"never"},{"$lash_tool_value":"zzz"}]}}',
        None,
    ),
    (
        '{"type":"success","value":1,"control":{"type":"finish","value":{"$lash_tool_value":"object","entries":{"a":1}}}}',
        '{"type":"success","value":1,"control":{"type":"finish","value":{"a":1}}}',
    ),
    (
        '{"type":"success","value":{"$lash_tool_value":"object","entries":{"a":1}}}',
        '{"type":"success","value":{"$lash_tool_value":"object","entries":{"a":1}}}',
    ),
    (
        '{"type":"success","value":1,"control":{"type":"switch_agent_frame","frame_id":"f","initial_nodes":null}}',
        None,
    ),
    (
        '{"type":"success","value":1,"control":["switch_agent_frame","f"]}',
        '{"type":"success","value":1,"control":{"type":"switch_agent_frame","frame_id":"f"}}',
    ),
    (
        '{"type":"success","value":1,"control":["switch_agent_frame","f",[1],null]}',
        '{"type":"success","value":1,"control":{"type":"switch_agent_frame","frame_id":"f","initial_nodes":[1]}}',
    ),
    (
        '{"type":"success","value":1,"control":{"type":"switch_agent_frame","frame_id":"f","task":null}}',
        '{"type":"success","value":1,"control":{"type":"switch_agent_frame","frame_id":"f"}}',
    ),
    ('{"type":"success"}', None),
    ('{"type":"success","value":null}', '{"type":"success","value":null}'),
    ('["success"]', None),
    ("[1,5]", None),
    (
        '{"type":"failure","class":"execution","code":"c","message":"m","raw":null}',
        '{"type":"failure","class":"execution","code":"c","message":"m"}',
    ),
    ('{"type":"success","value":1,"extra":2,"type2":1}', '{"type":"success","value":1}'),
    ('{"type":"cancelled","message":"m","control":{"type":"finish"}}', None),
    (
        '{"type":"success","value":1,"control":{"type":"finish","value":null}}',
        '{"type":"success","value":1,"control":{"type":"finish","value":null}}',
    ),
    ('{"type":"success","value":1,"control":{"kind":"finish","value":1}}', None),
    ('{"type":4,"value":1}', None),
    ('{"type":1.0,"value":1}', None),
    ('{"type":-1,"value":1}', None),
]


@pytest.mark.parametrize(("text", "serde"), SERDE_AWAIT_OUTPUTS)
def test_tm_2_reads_a_serialized_await_output_as_serde_reads_it(
    text: str, serde: str | None
) -> None:
    """TM-2: what counts as a serialized await output is what serde's derive
    reads: arrays for structs, variant indexes for nested tags, ``{"name":
    null}`` for unit enums, ``null`` for an absent option; in range integers
    only. Anything else maps by the declared state."""
    parsed = parse_await_output(json.loads(text))
    assert (None if parsed is None else encode(parsed).decode()) == serde
