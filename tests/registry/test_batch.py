"""Pipelined appends keep full semantics (EV-2, EV-3)."""

from __future__ import annotations

import pytest

from lash_streams import errors

from ..conformance.fixtures import S, plain, reg, req, scope, wake


async def test_batch_appends_to_many_processes_in_order(bus):
    for pid in ("a", "b", "c"):
        await bus.register_process(reg(pid, plain("x"), wake("w")))
    items = []
    for i in range(30):
        pid = "abc"[i % 3]
        if i % 5 == 0:
            items.append((pid, req("w", {"wake_input": f"w{i}"}, target=scope("s"))))
        else:
            items.append((pid, req("x", {"i": i}, key=f"k{i}" if i % 2 else None)))
    results = await bus.append_events(items)
    assert len(results) == 30
    for pid in ("a", "b", "c"):
        seqs = [r.event.sequence for (p, _), r in zip(items, results, strict=True) if p == pid]
        assert seqs == list(range(1, 11))
        assert [e.sequence for e in await bus.events_after(pid, 0)] == list(range(1, 11))
    wakes = [r for r in results if r.event.event_type == "w"]
    assert all(r.wake_delivery is not None for r in wakes)
    # Replaying the keyed part of the batch appends nothing.
    keyed = [item for item in items if item[1].replay is not None]
    again = await bus.append_events(keyed)
    assert [r.event.sequence for r in again] == [
        r.event.sequence for (_, q), r in zip(items, results, strict=True) if q.replay is not None
    ]
    assert len(await bus.events_after("a", 0)) == 10


async def test_batch_with_terminal_and_stale_cache(bus, reopen):
    await bus.register_process(reg("p", plain("x")))
    other = await reopen()
    await bus.append_event("p", req("x", {}))  # warms this client's cache
    await other.append_event("p", req("x", {}))  # ...which is now stale
    results = await bus.append_events(
        [
            ("p", req("x", {"n": 1})),
            (
                "p",
                req(
                    "process.completed", {"await_output": {"type": "success", "value": 1}}, key="t"
                ),
            ),
        ]
    )
    assert [r.event.sequence for r in results] == [3, 4]
    record = await bus.get_process("p")
    assert record.is_terminal() and record.status.await_output == S(1)
    assert [r.id for r in await bus.list_non_terminal()] == []


async def test_batch_raises_the_first_validation_error(bus):
    """The first invalid item's typed error, and (issue 11: validate, then
    write) nothing of the batch is written."""
    await bus.register_process(reg("p", plain("x")))
    with pytest.raises(errors.UndeclaredEventType):
        await bus.append_events([("p", req("x", {})), ("p", req("nope", {}))])
    assert await bus.events_after("p", 0) == []
