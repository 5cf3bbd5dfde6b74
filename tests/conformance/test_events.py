"""Section B: event append, replay, validation (EV-*, RD-*)."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from lash_streams import errors
from lash_streams.model import (
    AwaitCancelled,
    CausalProcess,
    CausalSessionNode,
    LashSchema,
    OriginatorSession,
    ProcessEventAppendRequest,
    ProcessEventSemanticsSpec,
    ProcessEventType,
    ProcessProvenance,
    ProcessTerminalSpec,
    ProcessTerminalState,
    ProcessWakeSpec,
    RuntimeInvocation,
    RuntimeReplay,
    RuntimeScope,
    SelPointer,
    SelPresent,
    StatusCancelled,
    StatusCompleted,
    SubjectProcessEvent,
)

from .fixtures import S, frame, plain, reg, req, scope, wake

CANCEL_STOP = "85a6238fa9840bc3105d1a06ca03df61803080fefa838ab687d36662275be019"


def cancel(pid: str, reason: str | None) -> ProcessEventAppendRequest:
    return ProcessEventAppendRequest.cancel_requested(pid, reason)


async def test_s_ev_01_validates_custom_events_and_materializes_wakes(bus):
    """S-EV-01 · ET-4, EV-2, EV-3, WK-2, WK-4, WA-1, WA-2."""
    line = ProcessEventType(
        name="producer.line",
        payload_schema=LashSchema(
            schema={
                "type": "object",
                "properties": {"line": {"type": "string"}, "wake_input": {"type": "string"}},
                "required": ["line"],
                "additionalProperties": True,
            }
        ),
        semantics=ProcessEventSemanticsSpec(
            wake=ProcessWakeSpec(when=SelPresent("/wake_input"), input=SelPointer("/wake_input"))
        ),
    )
    await bus.register_process(reg("proc-1", line))
    result = await bus.append_event(
        "proc-1",
        req(
            "producer.line",
            {"line": "deploy failed", "wake_input": "Process event: deploy failed"},
            target=scope("s1"),
        ),
    )
    assert result.event.sequence == 1
    assert result.event.semantics.wake.input == "Process event: deploy failed"
    delivery = result.wake_delivery
    assert delivery.dedupe_key == "proc-1:1"
    assert delivery.target_scope_id == "session:s1"
    assert delivery.target_session_id == "s1"
    assert delivery.wake_id == (
        "wake:c802f969650a1dc287fadd49ea2a5fbbf697a1ecf020e75191cbf0172a2acd58"
    )
    assert len(await bus.wake_events_after("proc-1", 0)) == 1
    await bus.ack_wake("proc-1", 1)
    assert await bus.wake_events_after("proc-1", 0) == []
    with pytest.raises(errors.InvalidPayload):
        await bus.append_event(
            "proc-1", req("producer.line", {"wake_input": "missing required line"})
        )
    assert len(await bus.events_after("proc-1", 0)) == 1
    nxt = await bus.append_event("proc-1", req("producer.line", {"line": "ok"}))
    assert nxt.event.sequence == 2


async def test_s_ev_02_custom_wake_events_preserve_typed_provenance_and_replay(bus):
    """S-EV-02 · EV-4..EV-6, WK-6..WK-8, ID-2, ID-3."""
    caused_by = CausalSessionNode(session_id="target-session", node_id="trigger:button")
    registration = msgspec.structs.replace(
        reg("proc-provenance", wake("producer.custom_wake")),
        provenance=ProcessProvenance(
            originator=OriginatorSession(scope=scope("owner-session")), caused_by=caused_by
        ),
    )
    await bus.register_process(registration)
    request = req(
        "producer.custom_wake",
        {"line": "build failed", "wake_input": "custom wake: build failed"},
        key="custom-wake:build-failed",
        target=frame("target-session", "target-frame"),
    )
    first = await bus.append_event("proc-provenance", request)
    second = await bus.append_event("proc-provenance", request)
    assert first.event.sequence == second.event.sequence == 1
    assert len(await bus.events_after("proc-provenance", 0)) == 1
    invocation = RuntimeInvocation(
        scope=RuntimeScope(session_id="runtime"),
        subject=SubjectProcessEvent(
            process_id="proc-provenance", sequence=1, event_type="producer.custom_wake"
        ),
        caused_by=CausalProcess(process_id="proc-provenance"),
        replay=RuntimeReplay(key="custom-wake:build-failed"),
    )
    assert first.event.invocation == invocation
    d = first.wake_delivery
    assert d.event_type == "producer.custom_wake"
    assert d.event_invocation == invocation
    assert d.process_caused_by == caused_by
    assert d.target_session_id == "target-session"
    assert d.target_scope_id == "session:target-session/frame:target-frame"
    assert (d.process_id, d.sequence, d.dedupe_key) == ("proc-provenance", 1, "proc-provenance:1")
    assert d.input == "custom wake: build failed"
    assert d.wake_id == "wake:46cb109adef9ba0513a94be3a54c1a0adf5e05fcbbe38b46ba57e14f546b1e00"
    assert second.wake_delivery.wake_id == d.wake_id
    assert second.wake_delivery == d


async def test_s_ev_03_event_streams_filter_order_and_wait_without_leaking_old_events(bus):
    """S-EV-03 · EV-3, RD-1, WA-1, AW-4, AW-2."""
    await bus.register_process(
        reg("proc-stream", plain("producer.line"), wake("producer.wake"), plain("producer.future"))
    )
    a = await bus.append_event("proc-stream", req("producer.line", {"line": "one"}))
    b = await bus.append_event(
        "proc-stream", req("producer.wake", {"wake_input": "wake two"}, target=scope("root"))
    )
    c = await bus.append_event("proc-stream", req("producer.line", {"line": "three"}))
    assert [a.event.sequence, b.event.sequence, c.event.sequence] == [1, 2, 3]
    after1 = await bus.events_after("proc-stream", 1)
    assert [(e.sequence, e.event_type) for e in after1] == [
        (2, "producer.wake"),
        (3, "producer.line"),
    ]
    assert await bus.events_after("proc-stream", 3) == []
    wakes = await bus.wake_events_after("proc-stream", 1)
    assert [(e.sequence, e.event_type) for e in wakes] == [(2, "producer.wake")]
    assert await bus.wake_events_after("proc-stream", 2) == []
    found = await bus.await_event("proc-stream", "producer.line", 1, timeout=1)
    assert found.sequence == 3

    waiter = asyncio.create_task(bus.await_event("proc-stream", "producer.future", 3, timeout=5))
    await asyncio.sleep(0.02)
    await bus.append_event("proc-stream", req("producer.future", {"line": "four"}))
    got = await asyncio.wait_for(waiter, 1)
    assert got.sequence == 4


async def test_s_ev_04_terminal_and_cancel_events_require_keys(bus):
    """S-EV-04 · EV-2, CN-1..CN-3, CP-1."""
    await bus.register_process(reg("proc-terminal"))
    with pytest.raises(errors.ReplayKeyRequired):
        await bus.append_event("proc-terminal", req("process.cancel_requested", {"reason": "stop"}))
    request = cancel("proc-terminal", "stop")
    assert request.replay.key == f"process:proc-terminal:cancel_requested:{CANCEL_STOP}"
    result = await bus.append_event("proc-terminal", request)
    assert result.event.sequence == 1
    assert (await bus.get_process("proc-terminal")).status.__class__.__name__ == "StatusRunning"
    record = await bus.complete_process("proc-terminal", AwaitCancelled(message="stopped"))
    assert record.status == StatusCancelled(await_output=AwaitCancelled(message="stopped"))
    events = await bus.events_after("proc-terminal", 0)
    assert [(e.sequence, e.event_type) for e in events] == [
        (1, "process.cancel_requested"),
        (2, "process.cancelled"),
    ]
    assert events[1].invocation.replay.key == "process:proc-terminal:terminal:process.cancelled"
    assert events[1].payload == {"await_output": {"type": "cancelled", "message": "stopped"}}


async def test_s_ev_05_non_terminal_appends_continue_after_a_terminal(bus):
    """S-EV-05 · EV-9, EV-10, EV-11, RG-8, CN-5."""
    await bus.register_process(reg("p", plain("x")))
    done = await bus.complete_process("p", S(1))
    later = await bus.append_event("p", req("x", {}))
    assert later.event.sequence == 2
    assert (await bus.get_process("p")).updated_at_ms >= done.updated_at_ms
    assert (await bus.append_event("p", cancel("p", "late"))).event.sequence == 3
    record = await bus.get_process("p")
    assert record.status == StatusCompleted(await_output=S(1))
    terminals = [e.sequence for e in await bus.events_after("p", 0) if e.semantics.terminal]
    assert terminals == [1]


async def test_s_ev_06_terminal_type_appends_after_a_terminal_are_rejected(bus):
    """S-EV-06 · EV-2 (5, 8), EV-9, EV-10."""
    done = ProcessEventType(
        name="job.done",
        payload_schema=LashSchema(schema={}),
        semantics=ProcessEventSemanticsSpec(
            terminal=ProcessTerminalSpec(state=ProcessTerminalState.COMPLETED)
        ),
    )
    await bus.register_process(reg("p", done))
    with pytest.raises(errors.ReplayKeyRequired):
        await bus.append_event("p", req("job.done", {}))
    first = await bus.append_event("p", req("job.done", {"r": 1}, key="k1"))
    assert first.event.sequence == 1
    assert (await bus.get_process("p")).status == StatusCompleted(await_output=S({"r": 1}))
    with pytest.raises(errors.AlreadyTerminal):
        await bus.append_event("p", req("job.done", {"r": 2}, key="k2"))
    assert (await bus.append_event("p", req("job.done", {"r": 1}, key="k1"))).event.sequence == 1
    with pytest.raises(errors.ReplayConflict):
        await bus.append_event("p", req("job.done", {"r": 3}, key="k1"))
    assert len(await bus.events_after("p", 0)) == 1


async def test_s_ev_07_undeclared_types_and_invalid_payloads_consume_no_sequence(bus):
    """S-EV-07 · ET-1, ET-3, ET-4, EV-1..EV-3, GEN-5."""
    typed = plain(
        "typed", {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    )
    await bus.register_process(reg("p", typed))
    with pytest.raises(errors.UndeclaredEventType):
        await bus.append_event("p", req("nope", {}))
    with pytest.raises(errors.InvalidPayload):
        await bus.append_event("p", req("typed", {"n": "x"}))
    with pytest.raises(errors.InvalidPayload):
        await bus.append_event("p", req("typed", {"n": 1, "extra": True}))
    assert (await bus.append_event("p", req("typed", {"n": 1}))).event.sequence == 1
    with pytest.raises(errors.UnknownProcess):
        await bus.append_event("missing", req("typed", {"n": 1}))


async def test_s_ev_08_replay_check_precedes_every_other_validation(bus):
    """S-EV-08 · EV-2 (3), EV-6, EV-7."""
    await bus.register_process(reg("p", plain("x")))
    assert (await bus.append_event("p", req("x", {"a": 1}, key="k"))).event.sequence == 1
    await bus.complete_process("p", S(0))
    assert (await bus.append_event("p", req("x", {"a": 1}, key="k"))).event.sequence == 1
    with pytest.raises(errors.ReplayConflict):
        await bus.append_event(
            "p",
            req("process.completed", {"await_output": {"type": "success", "value": 0}}, key="k"),
        )
    assert len(await bus.events_after("p", 0)) == 2


async def test_s_ev_09_concurrent_appends_produce_a_dense_sequence(bus, reopen):
    """S-EV-09 · EV-3, EV-8: 50 appends from three independent clients."""
    await bus.register_process(reg("p", plain("x")))
    clients = [bus, await reopen(), await reopen()]
    results = await asyncio.gather(
        *(clients[i % 3].append_event("p", req("x", {"i": i})) for i in range(50))
    )
    assert sorted(r.event.sequence for r in results) == list(range(1, 51))
    events = await bus.events_after("p", 0)
    assert [e.sequence for e in events] == list(range(1, 51))


async def test_s_rd_01_count_and_recent_events_match_the_log(bus):
    """S-RD-01 · RD-2, RD-3, SG-5."""
    with pytest.raises(errors.UnknownProcess):
        await bus.count_events_through("missing-process", "signal.ready", 10)
    with pytest.raises(errors.UnknownProcess):
        await bus.recent_events("missing-process", 4)
    await bus.register_process(
        msgspec.structs.replace(
            reg("proc-event-queries"), event_types=[plain("signal.a"), plain("b")]
        )
    )
    for i, event_type in enumerate(["signal.a", "b", "signal.a", "signal.a", "b"]):
        result = await bus.append_event(
            "proc-event-queries", req(event_type, {"n": i}, key=f"proc-event-queries:{i}")
        )
        assert result.event.sequence == i + 1
    assert await bus.count_events_through("proc-event-queries", "signal.a", 5) == 3
    assert await bus.count_events_through("proc-event-queries", "signal.a", 3) == 2
    assert await bus.count_events_through("proc-event-queries", "signal.missing", 2**64 - 1) == 0
    recent = await bus.recent_events("proc-event-queries", 2)
    assert [e.sequence for e in recent] == [4, 5]
    assert [e.sequence for e in await bus.recent_events("proc-event-queries", 100)] == [
        1,
        2,
        3,
        4,
        5,
    ]
