"""``append_events`` on a single server delivers its wakes in the append's own
step (store/inline_wakes.py): no intent is left for the relay, and a wrong
guess of the sequence or the target falls back to the intent path."""

from __future__ import annotations

import msgspec

from lash_streams.store import delivery
from lash_streams.store.keys import encode_id

from ..conformance.fixtures import reg, req, scope, wake
from .test_wakes_v2 import const_dedupe


async def entries(bus, scope_id: str) -> list:
    return await bus.redis.xrange(bus.keys.wake_stream(scope_id))


async def intents_left(bus, pid: str) -> int:
    return int(await bus.redis.xlen(bus.keys.process(pid).outbox))


async def test_a_batch_delivers_its_wakes_and_leaves_no_intent(bus, monkeypatch):
    calls: list[int] = []
    real = delivery.deliver_wakes

    async def counting(core, items):
        calls.append(len(items))
        return await real(core, items)

    monkeypatch.setattr(delivery, "deliver_wakes", counting)
    await bus.register_process(reg("p", wake("w")))
    items = [("p", req("w", {"wake_input": str(i)}, target=scope("b"))) for i in range(5)]
    results = await bus.append_events(items)
    stored = await entries(bus, "session:b")
    assert [msgspec.json.decode(f[b"d"])["input"] for _, f in stored] == [str(i) for i in range(5)]
    for result, (_, fields) in zip(results, stored, strict=True):
        assert fields[b"d"] == msgspec.json.encode(result.wake_delivery)
    assert await intents_left(bus, "p") == 0
    if bus.cluster:
        assert calls == [5]  # the keys live on other nodes: the appender delivers
    else:
        assert calls == []
        index = bus.keys.index_of("ob", "p")
        assert await bus.redis.zscore(index, encode_id("p")) is None


async def test_a_stale_sequence_guess_falls_back_to_the_intent(bus, reopen):
    """Another writer appended since this client last saw the process: the
    sequence it built the deliveries for is wrong, so the script writes the
    intents instead and the appender delivers them, each once."""
    await bus.register_process(reg("p", wake("w")))
    s = scope("stale")
    await bus.append_events([("p", req("w", {"wake_input": "a"}, target=s))])
    other = await reopen()
    await other.append_event("p", req("w", {"wake_input": "b"}, target=s))
    results = await bus.append_events(
        [("p", req("w", {"wake_input": x}, target=s)) for x in ("c", "d")]
    )
    assert [r.event.sequence for r in results] == [3, 4]
    stored = await entries(bus, "session:stale")
    delivered = [msgspec.json.decode(f[b"d"]) for _, f in stored]
    assert [(d["input"], d["sequence"]) for d in delivered] == [
        ("a", 1),
        ("b", 2),
        ("c", 3),
        ("d", 4),
    ]
    assert [d["wake_id"] for d in delivered[2:]] == [r.wake_delivery.wake_id for r in results]
    assert await intents_left(bus, "p") == 0


async def test_a_cleared_wake_target_is_not_delivered_to(bus, reopen):
    """The record's wake target was cleared (its session deleted) behind this
    client's cache: the script reads the record, not the cached target, so
    the wake goes nowhere (WK-8) and no intent is left."""
    registration = msgspec.structs.replace(reg("p", wake("w")), wake_target=scope("old"))
    await bus.register_process(registration)
    await bus.append_events([("p", req("w", {"wake_input": "a"}))])
    other = await reopen()
    await other.delete_session_process_state("old")
    result = (await bus.append_events([("p", req("w", {"wake_input": "b"}))]))[0]
    assert result.event.sequence == 2
    assert result.wake_delivery is None
    assert await entries(bus, "session:old") == []
    assert await intents_left(bus, "p") == 0


async def test_one_wake_id_twice_in_a_batch_is_delivered_once(bus):
    """Coalescing holds inside one batch: the second wake with the wake id of
    an unacknowledged entry lands nowhere (counted as deduped)."""
    await bus.register_process(reg("p", const_dedupe("d")))
    s = scope("twice")
    results = await bus.append_events(
        [("p", req("d", {"wake_input": x}, target=s)) for x in ("one", "two")]
    )
    assert results[0].wake_delivery.wake_id == results[1].wake_delivery.wake_id
    stored = await entries(bus, "session:twice")
    assert [msgspec.json.decode(f[b"d"])["input"] for _, f in stored] == ["one"]
    assert await intents_left(bus, "p") == 0
