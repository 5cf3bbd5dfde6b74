"""Pipelined appends keep full semantics (EV-2, EV-3)."""

from __future__ import annotations

import json

import pytest

from lash_streams import errors
from lash_streams.model._codec import encode

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


# -- one script call per batch (append_batch-4n) -------------------------------------


async def _prune_and_register_again(other, pid: str, *extra) -> None:
    """Another client finishes ``pid``, prunes it and registers it again."""
    await other.complete_process(pid, S(0))
    await other.prune_terminal_processes(await other.server_time_ms() + 1)
    await other.register_process(reg(pid, *extra))


async def test_a_process_re_registered_under_a_batch_is_appended_to_afresh(bus, reopen):
    """STALE for one process of the call: its items take the ordinary path
    against the new registration; the other processes' items land once."""
    await bus.register_process(reg("p", plain("x")))
    await bus.register_process(reg("q", plain("x")))
    await bus.append_events([("p", req("x", {})), ("q", req("x", {}))])  # caches both
    other = await reopen()
    await _prune_and_register_again(other, "p", plain("x"))
    results = await bus.append_events(
        [("p", req("x", {"n": 1})), ("q", req("x", {"n": 2})), ("p", req("x", {"n": 3}))]
    )
    assert [(r.event.process_id, r.event.sequence) for r in results] == [
        ("p", 1),
        ("q", 2),
        ("p", 2),
    ]
    assert [e.payload for e in await bus.events_after("p", 0)] == [{"n": 1}, {"n": 3}]
    assert len(await bus.events_after("q", 0)) == 2


async def test_a_process_pruned_under_a_batch_refuses_only_its_items(bus, reopen):
    await bus.register_process(reg("p", plain("x")))
    await bus.register_process(reg("q", plain("x")))
    await bus.append_events([("p", req("x", {})), ("q", req("x", {}))])
    other = await reopen()
    await other.complete_process("p", S(0))
    await other.prune_terminal_processes(await other.server_time_ms() + 1)
    with pytest.raises(errors.BatchPartlyApplied) as caught:
        await bus.append_events(
            [("p", req("x", {"n": 1})), ("q", req("x", {"n": 2})), ("p", req("x", {"n": 3}))]
        )
    first, landed, skipped = caught.value.outcomes
    assert isinstance(first, errors.UnknownProcess)
    assert landed.event.sequence == 2
    assert isinstance(skipped, errors.BatchItemSkipped)


async def test_a_batch_stores_what_single_appends_store(bus):
    """Both scripts share the per-item step: a batch and one-at-a-time
    appends of the same requests read back as the same events (time aside),
    with the same type counts."""
    extra = (plain("x"), wake("w"))
    await bus.register_process(reg("solo", *extra, wake_target=scope("s")))
    await bus.register_process(reg("bulk", *extra, wake_target=scope("s")))
    requests = [
        req("x", {"n": 1}),
        req("x", {"n": 2}, key="k2"),
        req("w", {"wake_input": 3}),
        req("w", {"wake_input": 4}, target=scope("t")),
        req("process.completed", {"await_output": {"type": "success", "value": 5}}, key="done"),
        req("x", {"n": 6}),
    ]
    singles = [await bus.append_event("solo", r) for r in requests]
    batch = await bus.append_events([("bulk", r) for r in requests])

    def shape(event, pid: str) -> dict:
        """The event's JSON with its process id and time taken out."""
        as_json = json.loads(encode(event).replace(pid.encode(), b"?"))
        del as_json["occurred_at"]
        return as_json

    stored_one = await bus.events_after("solo", 0)
    stored_many = await bus.events_after("bulk", 0)
    assert len(stored_one) == len(stored_many) == len(requests)
    assert [shape(e, "solo") for e in stored_one] == [shape(e, "bulk") for e in stored_many]
    assert [shape(r.event, "solo") for r in singles] == [shape(r.event, "bulk") for r in batch]
    assert [shape(e, "solo") for e in stored_one] == [shape(r.event, "solo") for r in singles]

    def target(result):
        delivery = result.wake_delivery
        return None if delivery is None else (delivery.target_scope_id, delivery.sequence)

    assert [target(r) for r in singles] == [target(r) for r in batch]
    assert [t for t in map(target, batch) if t] == [("session:s", 3), ("session:t", 4)]
    for seq in range(1, 7):
        assert await bus.count_events_through("solo", "x", seq) == await bus.count_events_through(
            "bulk", "x", seq
        )
    assert (await bus.get_process("bulk")).is_terminal()


async def test_type_counts_stay_exact_across_chunks_in_one_batch(bus):
    """The type index packs 12 sequences to a field; one call writes many
    of them at once and must leave the same index as appends one by one."""
    await bus.register_process(reg("p", plain("x"), plain("y")))
    await bus.append_event("p", req("x", {}))
    items = [("p", req("x" if i % 3 else "y", {"i": i})) for i in range(40)]
    await bus.append_events(items)
    await bus.append_event("p", req("x", {}))
    events = await bus.events_after("p", 0)
    for event in events:
        for kind in ("x", "y"):
            expected = sum(
                1 for e in events if e.event_type == kind and e.sequence <= event.sequence
            )
            assert await bus.count_events_through("p", kind, event.sequence) == expected
