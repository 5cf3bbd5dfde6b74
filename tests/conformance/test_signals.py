"""Section L: signals, cancel, wake acks (SG-*, CN-*, WA-*)."""

from __future__ import annotations

import pytest

from lash_streams import errors

from .fixtures import plain, reg, req, wake

STOP = "85a6238fa9840bc3105d1a06ca03df61803080fefa838ab687d36662275be019"
NULL = "5532b5f3befaa3efc27b125b501ee870e6405e058b099410f23165e543d2a782"


async def test_s_sg_01_signal_names_event_types_and_idempotent_sends(bus):
    """S-SG-01 · SG-1..SG-3, SG-5, RD-2."""
    ready = plain(
        "signal.ready",
        {"type": "object", "properties": {"v": {"type": "integer"}}, "required": ["v"]},
    )
    await bus.register_process(reg("p", ready))
    for bad in ("", "a.b", "a b", "é"):
        with pytest.raises(errors.InvalidSignalName):
            await bus.send_signal("p", bad, "s1", {"v": 1})
    first = await bus.send_signal("p", "ready", "s1", {"v": 1})
    second = await bus.send_signal("p", "ready", "s1", {"v": 1})
    assert first.event.sequence == second.event.sequence == 1
    assert first.event.invocation.replay.key == "process:p:signal.ready:s1"
    with pytest.raises(errors.ReplayConflict):
        await bus.send_signal("p", "ready", "s1", {"v": 2})
    with pytest.raises(errors.InvalidPayload):
        await bus.send_signal("p", "ready", "s2", {"v": "x"})
    assert (await bus.send_signal("p", "ready", "s2", {"v": 2})).event.sequence == 2
    assert await bus.count_events_through("p", "signal.ready", 2) == 2
    with pytest.raises(errors.UndeclaredEventType):
        await bus.send_signal("p", "go", "s1", {})


async def test_s_cn_01_cancel_requests_are_durable_keyed_by_reason_and_non_terminal(bus):
    """S-CN-01 · CN-1, CN-3..CN-5."""
    await bus.register_process(reg("p"))
    a = await bus.request_cancel("p", "stop")
    b = await bus.request_cancel("p", "stop")
    assert a.event.sequence == b.event.sequence == 1
    assert a.event.invocation.replay.key.endswith(STOP)
    assert (await bus.request_cancel("p", "halt")).event.sequence == 2
    none = await bus.request_cancel("p", None)
    assert none.event.sequence == 3 and none.event.payload == {"reason": None}
    assert none.event.invocation.replay.key.endswith(NULL)
    assert not (await bus.get_process("p")).is_terminal()
    assert (await bus.await_event("p", "process.cancel_requested", 0, timeout=1)).sequence == 1


async def test_s_wa_01_ack_wake_bookkeeping(bus):
    """S-WA-01 · WA-1, WA-2."""
    with pytest.raises(errors.UnknownProcess):
        await bus.ack_wake("missing", 1)
    await bus.register_process(reg("p", wake("w")))
    await bus.append_event("p", req("w", {"wake_input": "one"}))
    await bus.append_event("p", req("w", {"wake_input": "two"}))
    await bus.ack_wake("p", 99)
    await bus.ack_wake("p", 1)
    await bus.ack_wake("p", 1)
    assert [e.sequence for e in await bus.wake_events_after("p", 0)] == [2]
