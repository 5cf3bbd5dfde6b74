"""Fuzz targets: appends, completion and the event reads."""

from __future__ import annotations

from hypothesis import strategies as st

from lash_streams.bus import Bus
from lash_streams.model import (
    AwaitFailure,
    AwaitSuccess,
    ProcessEventAppendRequest,
    RuntimeReplay,
    ToolFailureClass,
)
from lash_streams.model._codec import encode

from ..conformance.fixtures import S
from .harness import call, is_text_id, target, unique
from .strategies import id_text, ids, numbers, payloads, scopes
from .targets_processes import registered

event_types = st.one_of(st.sampled_from(["x", "w", "signal.x", "cancel_requested"]), id_text, ids)
replay_keys = st.one_of(st.none(), id_text, st.binary(max_size=3), st.just(5))


def request(data: st.DataObject) -> ProcessEventAppendRequest:
    key = data.draw(replay_keys, "replay key")
    return ProcessEventAppendRequest(
        event_type=data.draw(event_types, "event type"),
        payload=data.draw(payloads, "payload"),
        replay=None if key is None else RuntimeReplay(key=key),
        wake_target_scope=data.draw(st.none() | scopes, "wake target"),
    )


@target("append_event")
async def fuzz_append_event(bus: Bus, data: st.DataObject) -> None:
    pid = await registered(bus) if data.draw(st.booleans()) else unique(data.draw(ids))
    item = request(data)
    result, err = await call(bus, lambda: bus.append_event(pid, item))
    if err is None:
        (stored,) = await bus.events_after(pid, 0)
        assert stored == result.event


@target("append_events")
async def fuzz_append_events(bus: Bus, data: st.DataObject) -> None:
    pid = await registered(bus)
    items = [(pid, request(data)) for _ in range(data.draw(st.integers(0, 3)))]
    if data.draw(st.booleans(), "a hostile process id item"):
        items.append((unique(data.draw(ids)), request(data)))
    results, err = await call(bus, lambda: bus.append_events(items))
    if err is None:
        assert len(results) == len(items)


@target("send_signal", "request_cancel")
async def fuzz_signal_and_cancel(bus: Bus, data: st.DataObject) -> None:
    pid = await registered(bus) if data.draw(st.booleans()) else unique(data.draw(ids))
    name, signal_id = data.draw(ids, "signal name"), data.draw(ids, "signal id")
    payload = data.draw(payloads, "payload")
    await call(bus, lambda: bus.send_signal(pid, name, signal_id, payload))
    reason = data.draw(st.none() | ids, "reason")
    await call(bus, lambda: bus.request_cancel(pid, reason))


@target("complete_process")
async def fuzz_complete(bus: Bus, data: st.DataObject) -> None:
    pid = await registered(bus)
    value = data.draw(payloads, "value")
    output = data.draw(
        st.sampled_from(
            [
                S(value),
                AwaitFailure(class_=ToolFailureClass.EXECUTION, code="c", message=value),
                {"type": "success", "value": value},
                None,
            ]
        )
    )
    record, err = await call(bus, lambda: bus.complete_process(pid, output))
    if err is None:
        assert record.is_terminal()
        stored = await bus.await_terminal(pid, timeout=0)
        assert encode(stored) == encode(output)  # a tuple reads back as a list


@target("events_after", "recent_events", "count_events_through", "wake_events_after")
async def fuzz_event_reads(bus: Bus, data: st.DataObject) -> None:
    pid = await registered(bus) if data.draw(st.booleans()) else unique(data.draw(ids))
    n = data.draw(numbers, "cursor")
    kind = data.draw(event_types)
    for make in (
        lambda: bus.events_after(pid, n),
        lambda: bus.recent_events(pid, n),
        lambda: bus.count_events_through(pid, kind, n),
        lambda: bus.wake_events_after(pid, n),
    ):
        result, err = await call(bus, make, write=False)
        if err is None:
            assert isinstance(result, list | int)


@target("await_terminal", "await_event", "tail_events")
async def fuzz_awaits(bus: Bus, data: st.DataObject) -> None:
    """Timeouts and cursors; a timeout that may wait for ever only on a
    process that is already terminal (or refused before waiting)."""
    pid = await registered(bus)
    await bus.append_event(pid, ProcessEventAppendRequest(event_type="x", payload={}))
    timeout = data.draw(numbers, "timeout")
    cursor = data.draw(numbers, "cursor")
    kind = data.draw(event_types, "event type")
    await bus.complete_process(pid, AwaitSuccess(value=1))
    output, err = await call(bus, lambda: bus.await_terminal(pid, timeout=timeout), write=False)
    if err is None:
        assert output == AwaitSuccess(value=1)
    short = data.draw(st.sampled_from([0, 0.01, 0.0]))

    async def tail() -> list[int]:
        seen = []
        async for event in bus.tail_events(pid, cursor, _deadline=0.0):
            seen.append(event.sequence)
        return seen

    for make in (lambda: bus.await_event(pid, kind, cursor, timeout=short), tail):
        try:
            await call(bus, make, write=False)
        except AssertionError as err:
            if not isinstance(err.__cause__, TimeoutError):  # await_event's documented timeout
                raise
    other = unique(data.draw(ids))
    if not is_text_id(other):
        await call(bus, lambda: bus.await_terminal(other, timeout=timeout), write=False)
