"""Section C at the bus: selector edge cases and terminal mapping (SEL-*, TM-*)."""

from __future__ import annotations

import pytest

from lash_streams import errors
from lash_streams.model import (
    AwaitCancelled,
    AwaitFailure,
    LashSchema,
    ProcessEventSemanticsSpec,
    ProcessEventType,
    ProcessTerminalSpec,
    ProcessTerminalState,
    ProcessWakeSpec,
    SelConst,
    SelPointer,
    SelPresent,
    SelTemplate,
    StatusCancelled,
    StatusFailed,
    ToolFailureClass,
)

from .fixtures import S, reg, req, scope


def typed(name: str, **semantics: object) -> ProcessEventType:
    return ProcessEventType(
        name=name,
        payload_schema=LashSchema(schema={}),
        semantics=ProcessEventSemanticsSpec(**semantics),  # type: ignore[arg-type]
    )


async def test_s_sel_02_selector_edge_cases(bus):
    """S-SEL-02 · SEL-3, SEL-5..SEL-8, WK-2."""
    w1 = typed("w1", wake=ProcessWakeSpec(when=SelPointer("/flag"), input=SelConst("x")))
    w2 = typed(
        "w2",
        wake=ProcessWakeSpec(
            when=SelPresent("/flag"), input=SelTemplate("a {x} {y}", {"x": SelPointer("/x")})
        ),
    )
    await bus.register_process(reg("p", w1, w2))
    t = scope("t")
    with pytest.raises(errors.SelectorError, match="did not match"):
        await bus.append_event("p", req("w1", {}, target=t))
    assert await bus.events_after("p", 0) == []
    assert (await bus.append_event("p", req("w1", {"flag": 0}, target=t))).wake_delivery
    empty = await bus.append_event("p", req("w1", {"flag": ""}, target=t))
    assert empty.wake_delivery is None and empty.event.semantics.wake is None
    assert (await bus.append_event("p", req("w1", {"flag": None}, target=t))).wake_delivery is None
    got = await bus.append_event("p", req("w2", {"flag": None, "x": 1}, target=t))
    assert got.wake_delivery.input == "a 1 {y}"
    with pytest.raises(errors.SelectorError):
        await bus.append_event("p", req("w2", {"flag": True}, target=t))
    nested = await bus.append_event("p", req("w2", {"flag": True, "x": {"k": [1]}}, target=t))
    assert nested.wake_delivery.input == 'a {"k":[1]} {y}'
    assert [e.sequence for e in await bus.events_after("p", 0)] == [1, 2, 3, 4, 5]


def terminal(name: str, state: ProcessTerminalState, pointer: str) -> ProcessEventType:
    return typed(name, terminal=ProcessTerminalSpec(state=state, await_output=SelPointer(pointer)))


async def test_s_tm_01_terminal_output_mapping_from_raw_selected_values(bus):
    """S-TM-01 · TM-1..TM-4, AO-1, EV-12."""
    failed = terminal("job.failed", ProcessTerminalState.FAILED, "/error")
    cancelled = terminal("job.cancelled", ProcessTerminalState.CANCELLED, "/why")
    for pid in ("p1", "p2", "p4"):
        await bus.register_process(reg(pid, failed))
    await bus.register_process(reg("p3", cancelled))
    await bus.append_event("p1", req("job.failed", {"error": "disk full"}, key="k"))
    assert (await bus.get_process("p1")).status == StatusFailed(
        await_output=AwaitFailure(
            class_=ToolFailureClass.EXECUTION,
            code="process_failed",
            message="disk full",
            raw="disk full",
        )
    )
    await bus.append_event("p2", req("job.failed", {"error": {"code": 7}}, key="k"))
    out = (await bus.get_process("p2")).status.await_output
    assert out.message == '{"code":7}' and out.raw == {"code": 7}
    await bus.append_event("p3", req("job.cancelled", {"why": "user"}, key="k"))
    assert (await bus.get_process("p3")).status == StatusCancelled(
        await_output=AwaitCancelled(message="user", raw="user")
    )
    await bus.append_event(
        "p4", req("job.failed", {"error": {"type": "success", "value": 1}}, key="k")
    )
    assert (await bus.get_process("p4")).status == StatusFailed(await_output=S(1))
