"""Wake fan-out through per-scope streams and consumer groups (WK-*, RX-7..RX-10)."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from lash_streams import errors
from lash_streams.model import (
    DedupeConst,
    LashSchema,
    ProcessEventSemanticsSpec,
    ProcessEventType,
    ProcessWakeSpec,
    SelPointer,
)
from lash_streams.store.delivery import source_key

from ..conformance.fixtures import reg, req, scope, wake


def const_dedupe(name: str) -> ProcessEventType:
    return ProcessEventType(
        name=name,
        payload_schema=LashSchema(schema={}),
        semantics=ProcessEventSemanticsSpec(
            wake=ProcessWakeSpec(input=SelPointer("/wake_input"), dedupe_key=DedupeConst("same"))
        ),
    )


async def stream_entries(bus, scope_id: str) -> list:
    return await bus.redis.xrange(bus.keys.wake_stream(scope_id))


async def test_delivery_lands_once_and_replays_do_not_deliver_again(bus):
    """WK-8, EV-6: a keyed replay returns the same delivery, delivers nothing new."""
    await bus.register_process(reg("p", wake("w")))
    request = req("w", {"wake_input": "hi"}, key="k", target=scope("s"))
    first = await bus.append_event("p", request)
    again = await bus.append_event("p", request)
    assert again.wake_delivery == first.wake_delivery
    entries = await stream_entries(bus, "session:s")
    assert len(entries) == 1
    fields = entries[0][1]
    assert fields[b"wid"].decode() == first.wake_delivery.wake_id
    assert fields[b"src"].decode() == source_key(first.wake_delivery) == "process:p:event:1:wake"
    assert await bus.redis.xlen(bus.keys.process("p").outbox) == 0


async def test_s_wk_07_duplicate_wake_ids_coalesce_within_the_window(bus):
    """S-WK-07, variant "coalesce by (scope, wake id) for a window" (WK-12, RX-10).

    The registry keeps both events and returns both deliveries with one wake id
    (WK-9); the scope's stream gets one entry while the window lasts, and a
    new one once it has passed."""
    bus.wake_dedupe_window_ms = 300
    await bus.register_process(reg("p", const_dedupe("d")))
    one = await bus.append_event("p", req("d", {"wake_input": "one"}, target=scope("s")))
    two = await bus.append_event("p", req("d", {"wake_input": "two"}, target=scope("s")))
    assert one.wake_delivery.wake_id == two.wake_delivery.wake_id
    assert [e.sequence for e in await bus.events_after("p", 0)] == [1, 2]
    assert len(await stream_entries(bus, "session:s")) == 1
    assert not await bus.deliver_wake(one.wake_delivery)  # a re-delivery creates nothing
    ttl = await bus.redis.pttl(bus.keys.wake_dedupe("session:s", one.wake_delivery.wake_id))
    assert 0 < ttl <= 300
    await asyncio.sleep(0.35)
    await bus.append_event("p", req("d", {"wake_input": "three"}, target=scope("s")))
    assert len(await stream_entries(bus, "session:s")) == 2


async def test_fan_out_to_groups_and_sharing_within_a_group(bus, reopen):
    """RX-8: every group gets every wake; consumers of one group share them."""
    await bus.register_process(reg("p", wake("w")))
    s = scope("fan")
    a = bus.wake_consumer(group="ga", consumer="a1", scopes=[s], block_ms=100)
    b1 = bus.wake_consumer(group="gb", consumer="b1", scopes=[s], block_ms=100, batch=1)
    other = await reopen()
    b2 = other.wake_consumer(group="gb", consumer="b2", scopes=[s], block_ms=100, batch=1)
    for c in (a, b1, b2):
        await c.ensure_groups()
    for i in range(6):
        await bus.append_event("p", req("w", {"wake_input": f"{i}"}, target=s))

    async def drain(consumer, limit):
        got = []
        while len(got) < limit:
            message = await consumer.next(timeout=0.5)
            if message is None:
                break
            got.append(message.delivery.input)
            await message.ack()
        return got

    seen_a = await drain(a, 6)
    assert sorted(seen_a) == [str(i) for i in range(6)]
    first = await drain(b1, 3)
    rest = await drain(b2, 6)
    assert sorted(first + rest) == [str(i) for i in range(6)]
    assert not set(first) & set(rest)
    for c in (a, b1, b2):
        await c.aclose()


async def test_dead_consumer_deliveries_move_after_idle_time(bus, reopen):
    """RX-8: XAUTOCLAIM hands a dead consumer's deliveries to a live one."""
    await bus.register_process(reg("p", wake("w")))
    s = scope("claim")
    dead = bus.wake_consumer(group="g", consumer="dead", scopes=[s], block_ms=100)
    await dead.ensure_groups()
    await bus.append_event("p", req("w", {"wake_input": "x"}, target=s))
    held = await dead.next(timeout=1)
    assert held is not None  # read, never acknowledged: the consumer "dies"
    other = await reopen()
    live = other.wake_consumer(
        group="g", consumer="live", scopes=[s], claim_idle_ms=1500, block_ms=50
    )
    await live.ensure_groups()
    # Idle for less than claim_idle_ms (a margin for a loaded machine): not moved yet.
    assert await live.next(timeout=0.1) is None
    await asyncio.sleep(1.6)
    moved = await live.next(timeout=2)
    assert moved is not None and moved.delivery == held.delivery and moved.attempts == 2
    await moved.ack()
    await live.aclose()


async def test_a_closed_consumer_raises_instead_of_returning_none(bus):
    """A polling loop on a closed consumer must not spin: next() raises a typed
    error and iteration stops."""
    await bus.register_process(reg("p", wake("w")))
    consumer = bus.wake_consumer(group="g", consumer="c", scopes=[scope("closed")])
    await consumer.aclose()
    with pytest.raises(errors.ConsumerClosed):
        await consumer.next(timeout=0.1)
    with pytest.raises(errors.ConsumerClosed):
        await consumer.next()
    assert [m async for m in consumer] == []
    fleet = bus.fleet_consumer(group="g", pod="pod-1")
    await fleet.aclose()
    with pytest.raises(errors.ConsumerClosed):
        await fleet.next(timeout=0.1)
    assert [m async for m in fleet] == []


async def test_poison_delivery_goes_to_the_dead_letter_stream(bus):
    await bus.register_process(reg("p", wake("w")))
    s = scope("poison")
    consumer = bus.wake_consumer(
        group="g", consumer="c", scopes=[s], claim_idle_ms=50, max_deliveries=2, block_ms=20
    )
    await consumer.ensure_groups()
    await bus.append_event("p", req("w", {"wake_input": "bad"}, target=s))
    seen = 0
    for _ in range(12):
        message = await consumer.next(timeout=0.1)
        if message is not None:
            seen += 1
            await message.nack()  # the handler fails
        await asyncio.sleep(0.06)
    assert seen == 2
    dead = await bus.redis.xrange(bus.keys.wake_dead_letters("session:poison"))
    assert len(dead) == 1
    assert dead[0][1][b"attempts"] == b"3" and dead[0][1][b"group"] == b"g"
    pending = await bus.redis.xpending(bus.keys.wake_stream("session:poison"), "g")
    assert pending["pending"] == 0
    await consumer.aclose()


async def test_graceful_shutdown_hands_back_at_once(bus, reopen):
    await bus.register_process(reg("p", wake("w")))
    s = scope("drain")
    leaving = bus.wake_consumer(group="g", consumer="leaving", scopes=[s], block_ms=50)
    await leaving.ensure_groups()
    for i in range(3):
        await bus.append_event("p", req("w", {"wake_input": str(i)}, target=s))
    got = [await leaving.next(timeout=1) for _ in range(3)]
    await got[0].ack()
    await leaving.aclose()
    other = await reopen()
    # A claim threshold far longer than the test: only the hand-back explains a move.
    staying = other.wake_consumer(
        group="g", consumer="staying", scopes=[s], claim_idle_ms=600_000, block_ms=50
    )
    inputs = []
    for _ in range(2):
        message = await staying.next(timeout=2)
        assert message is not None
        inputs.append(message.delivery.input)
        await message.ack()
    assert sorted(inputs) == ["1", "2"]
    await staying.aclose()


async def test_group_lost_under_a_consumer_is_recreated(bus):
    """No NOGROUP loop: the consumer recreates its group by itself."""
    await bus.register_process(reg("p", wake("w")))
    s = scope("nogroup")
    consumer = bus.wake_consumer(group="g", consumer="c", scopes=[s], block_ms=50)
    await consumer.ensure_groups()
    await bus.redis.delete(bus.keys.wake_stream("session:nogroup"))
    assert await consumer.next(timeout=0.3) is None
    await bus.append_event("p", req("w", {"wake_input": "after"}, target=s))
    message = await consumer.next(timeout=2)
    assert message is not None and message.delivery.input == "after"
    await message.ack()
    await consumer.aclose()


async def test_trim_keeps_what_any_group_has_not_acknowledged(bus):
    """Retention: trimmed only below what every group acknowledged."""
    await bus.register_process(reg("p", wake("w")))
    s = scope("trim")
    fast = bus.wake_consumer(group="fast", consumer="f", scopes=[s], block_ms=50)
    slow = bus.wake_consumer(group="slow", consumer="s", scopes=[s], block_ms=50)
    for c in (fast, slow):
        await c.ensure_groups()
    for i in range(4):
        await bus.append_event("p", req("w", {"wake_input": str(i)}, target=s))
    for _ in range(4):
        await (await fast.next(timeout=1)).ack()
    first = await slow.next(timeout=1)
    await first.ack()
    held = await slow.next(timeout=1)  # read, not yet acknowledged
    assert await bus.trim_wakes(s) == 1
    assert len(await stream_entries(bus, "session:trim")) == 3
    await held.ack()
    for _ in range(2):
        await (await slow.next(timeout=1)).ack()
    assert await bus.trim_wakes(s) == 3
    assert await stream_entries(bus, "session:trim") == []
    for c in (fast, slow):
        await c.aclose()


async def test_batch_appends_deliver_their_wakes(bus):
    await bus.register_process(reg("p", wake("w")))
    items = [("p", req("w", {"wake_input": str(i)}, target=scope("b"))) for i in range(5)]
    results = await bus.append_events(items)
    assert all(r.wake_delivery for r in results)
    assert len(await stream_entries(bus, "session:b")) == 5


async def test_record_wake_target_is_used_when_the_request_has_none(bus):
    registration = msgspec.structs.replace(reg("p", wake("w")), wake_target=scope("home"))
    await bus.register_process(registration)
    await bus.append_event("p", req("w", {"wake_input": "x"}))
    assert len(await stream_entries(bus, "session:home")) == 1
