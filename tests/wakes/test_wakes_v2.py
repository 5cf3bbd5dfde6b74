"""Issue 12 (wakes v2): each defect the issue lists, as a user meets it.

At-least-once that holds when handlers fail (RX-8), settling exactly one way,
coalescing only while an entry is unacknowledged (WK-12, RX-10), retention
without user action (RX-19), and fleet pods that never double-serve."""

from __future__ import annotations

import asyncio

import pytest

from lash_streams import errors
from lash_streams.coordination import wakes as wakes_module
from lash_streams.model import (
    DedupeConst,
    LashSchema,
    ProcessEventSemanticsSpec,
    ProcessEventType,
    ProcessWakeSpec,
    SelPointer,
)

from ..conformance.fixtures import S, frame, reg, req, scope, wake


def const_dedupe(name: str) -> ProcessEventType:
    return ProcessEventType(
        name=name,
        payload_schema=LashSchema(schema={}),
        semantics=ProcessEventSemanticsSpec(
            wake=ProcessWakeSpec(input=SelPointer("/wake_input"), dedupe_key=DedupeConst("same"))
        ),
    )


async def dead_letters(bus, scope_id: str) -> list:
    return await bus.redis.xrange(bus.keys.wake_dead_letters(scope_id))


async def pending(bus, scope_id: str, group: str = "g") -> int:
    summary = await bus.redis.xpending(bus.keys.wake_stream(scope_id), group)
    return int(summary["pending"])


# -- the settle API -------------------------------------------------------------------


async def test_a_failed_handler_is_retried_while_its_consumer_lives(bus):
    """A nack gives the delivery back; the same live consumer gets it again as
    the next attempt, and max_deliveries ends in the dead-letter stream."""
    await bus.register_process(reg("p", wake("w")))
    s = scope("retry")
    consumer = bus.wake_consumer(
        group="g", consumer="c", scopes=[s], claim_idle_ms=200, max_deliveries=3, block_ms=20
    )
    await consumer.ensure_groups()
    await bus.append_event("p", req("w", {"wake_input": "flaky"}, target=s))
    attempts = []
    async with asyncio.timeout(10):
        while len(attempts) < 3:
            message = await consumer.next(timeout=0.5)
            if message is not None:
                attempts.append(message.attempts)
                await message.nack()  # the handler failed
        while not await dead_letters(bus, "session:retry"):
            assert await consumer.next(timeout=0.1) is None
    assert attempts == [1, 2, 3]
    (letter,) = await dead_letters(bus, "session:retry")
    assert letter[1][b"reason"] == b"not acknowledged after 3 deliveries"
    assert await pending(bus, "session:retry") == 0
    await consumer.aclose()


async def test_a_nack_with_a_delay_waits_before_the_next_attempt(bus):
    await bus.register_process(reg("p", wake("w")))
    s = scope("later")
    consumer = bus.wake_consumer(group="g", consumer="c", scopes=[s], claim_idle_ms=5_000)
    await consumer.ensure_groups()
    await bus.append_event("p", req("w", {"wake_input": "x"}, target=s))
    first = await consumer.next(timeout=2)
    await first.nack(delay=0.6)
    assert await consumer.next(timeout=0.3) is None
    again = await consumer.next(timeout=3)
    assert again is not None and again.attempts == 2 and again.entry_id == first.entry_id
    assert await again.ack()
    await consumer.aclose()


async def test_each_delivery_is_settled_exactly_once(bus):
    await bus.register_process(reg("p", wake("w")))
    s = scope("once")
    consumer = bus.wake_consumer(group="g", consumer="c", scopes=[s])
    await consumer.ensure_groups()
    await bus.append_event("p", req("w", {"wake_input": "x"}, target=s))
    message = await consumer.next(timeout=2)
    assert await message.ack() is True
    for settle in (message.ack, message.nack, lambda: message.dead_letter("late")):
        with pytest.raises(errors.AlreadySettled):
            await settle()
    await consumer.aclose()


async def test_an_undecodable_entry_is_dead_lettered_and_the_batch_goes_on(bus):
    """Attempts are checked and decoding happens per entry: a bad entry goes
    to the dead-letter stream with its reason; good wakes behind it flow."""
    await bus.register_process(reg("p", wake("w")))
    s = scope("garbage")
    consumer = bus.wake_consumer(group="g", consumer="c", scopes=[s], block_ms=20)
    await consumer.ensure_groups()
    await bus.append_event("p", req("w", {"wake_input": "before"}, target=s))
    stream = bus.keys.wake_stream("session:garbage")
    await bus.redis.xadd(stream, {"d": b"{not json", "wid": "bad"})
    await bus.redis.xadd(stream, {"something": "else"})
    await bus.append_event("p", req("w", {"wake_input": "after"}, target=s))
    inputs = []
    async with asyncio.timeout(5):
        while len(inputs) < 2:
            message = await consumer.next(timeout=0.5)
            if message is not None:
                inputs.append(message.delivery.input)
                await message.ack()
    assert inputs == ["before", "after"]
    letters = await dead_letters(bus, "session:garbage")
    assert len(letters) == 2
    assert all(letter[1][b"reason"].startswith(b"undecodable") for letter in letters)
    assert await pending(bus, "session:garbage") == 0
    await consumer.aclose()


async def test_a_long_handler_keeps_its_delivery(bus, reopen):
    """A handler longer than claim_idle_ms: no other consumer claims the
    delivery meanwhile, and it never counts as a second attempt."""
    await bus.register_process(reg("p", wake("w")))
    s = scope("long")
    slow = bus.wake_consumer(group="g", consumer="slow", scopes=[s], claim_idle_ms=300)
    other = await reopen()
    eager = other.wake_consumer(
        group="g", consumer="eager", scopes=[s], claim_idle_ms=300, block_ms=20
    )
    for c in (slow, eager):
        await c.ensure_groups()
    await bus.append_event("p", req("w", {"wake_input": "llm turn"}, target=s))
    message = await slow.next(timeout=2)
    loop = asyncio.get_running_loop()
    end = loop.time() + 1.2  # four claim periods of "handling"
    while loop.time() < end:
        assert await eager.next(timeout=0.1) is None
    assert await message.ack() is True
    assert message.attempts == 1
    for c in (slow, eager):
        await c.aclose()


async def test_a_stale_consumer_cannot_ack_what_another_took_over(bus, reopen):
    """XACK takes no consumer name: the ack is checked against the PEL owner,
    so a consumer that stalled past the claim time is refused."""
    await bus.register_process(reg("p", wake("w")))
    s = scope("stale")
    # Its own claim time is long: it touches its deliveries rarely (stalled).
    stalled = bus.wake_consumer(group="g", consumer="stalled", scopes=[s], claim_idle_ms=60_000)
    other = await reopen()
    taker = other.wake_consumer(group="g", consumer="taker", scopes=[s], claim_idle_ms=200)
    for c in (stalled, taker):
        await c.ensure_groups()
    await bus.append_event("p", req("w", {"wake_input": "x"}, target=s))
    held = await stalled.next(timeout=2)
    await asyncio.sleep(0.3)
    taken = await taker.next(timeout=2)
    assert taken is not None and taken.entry_id == held.entry_id and taken.attempts == 2
    assert await held.ack() is False  # refused: it belongs to `taker` now
    assert await pending(bus, "session:stale") == 1
    assert await taken.ack() is True
    assert await pending(bus, "session:stale") == 0
    for c in (stalled, taker):
        await c.aclose()


async def test_ack_with_mark_process_records_ack_wake_before_the_xack(bus, monkeypatch):
    """A consumer that dies between the two steps leaves a delivery that is
    redelivered, never one that is gone yet still listed as pending."""
    await bus.register_process(reg("p", wake("w")))
    s = scope("marked")
    consumer = bus.wake_consumer(group="g", consumer="c", scopes=[s])
    await consumer.ensure_groups()
    await bus.append_event("p", req("w", {"wake_input": "x"}, target=s))
    message = await consumer.next(timeout=2)

    async def dies(*args, **kwargs):
        raise RuntimeError("killed before the XACK")

    monkeypatch.setattr(consumer, "ack", dies)
    with pytest.raises(RuntimeError):
        await message.ack(mark_process=True)
    assert await bus.wake_events_after("p", 0) == []  # ack_wake landed
    assert await pending(bus, "session:marked") == 1  # the delivery was not lost
    await consumer.aclose()


async def test_async_with_acks_on_success_and_nacks_on_error(bus):
    await bus.register_process(reg("p", wake("w")))
    s = scope("ctx")
    consumer = bus.wake_consumer(group="g", consumer="c", scopes=[s], claim_idle_ms=200)
    await consumer.ensure_groups()
    await bus.append_event("p", req("w", {"wake_input": "x"}, target=s))
    message = await consumer.next(timeout=2)
    with pytest.raises(ValueError):
        async with message:
            raise ValueError("handler bug")
    assert message.settled == "nack"
    again = await consumer.next(timeout=3)
    async with again:
        pass
    assert again.settled == "ack" and again.attempts == 2
    assert await pending(bus, "session:ctx") == 0
    await consumer.aclose()


async def test_run_hands_each_delivery_to_the_handler_and_goes_on_after_failures(bus):
    await bus.register_process(reg("p", wake("w")))
    s = scope("run")
    consumer = bus.wake_consumer(
        group="g", consumer="c", scopes=[s], claim_idle_ms=100, block_ms=20
    )
    await consumer.ensure_groups()
    for i in range(6):
        await bus.append_event("p", req("w", {"wake_input": str(i)}, target=s))
    handled: list[str] = []
    failed_once: set[str] = set()

    async def handler(message):
        value = message.delivery.input
        if value in ("1", "4") and value not in failed_once:
            failed_once.add(value)
            raise RuntimeError("first attempt fails")
        handled.append(value)
        if len(handled) == 6:
            await consumer.aclose()

    async with asyncio.timeout(10):
        await consumer.run(handler, concurrency=3)
    assert sorted(handled) == [str(i) for i in range(6)]
    assert await pending(bus, "session:run") == 0


async def test_batches_are_read_and_acked_together(bus):
    await bus.register_process(reg("p", wake("w")))
    s = scope("batch")
    consumer = bus.wake_consumer(group="g", consumer="c", scopes=[s], batch=50)
    await consumer.ensure_groups()
    await bus.append_events([("p", req("w", {"wake_input": str(i)}, target=s)) for i in range(40)])
    got = []
    async with asyncio.timeout(5):
        while len(got) < 40:
            batch = await consumer.next_batch(timeout=0.5)
            assert all(await consumer.ack(batch))
            got += [m.delivery.input for m in batch]
    assert got == [str(i) for i in range(40)]
    assert await pending(bus, "session:batch") == 0
    await consumer.aclose()


async def test_a_batch_ack_settles_each_entry_by_its_own_owner(bus, reopen):
    """One settle call for a batch still answers per entry: acked when this
    consumer owns it, refused when another took it over, 0 when no longer
    pending; the refused one stays pending and its coalescing marker stays."""
    bus.wake_dedupe_window_ms = 3_600_000
    await bus.register_process(reg("p", wake("w")))
    s = scope("mixed")
    stalled = bus.wake_consumer(group="g", consumer="stalled", scopes=[s], claim_idle_ms=60_000)
    other = await reopen()
    taker = other.wake_consumer(group="g", consumer="taker", scopes=[s], batch=1)
    for c in (stalled, taker):
        await c.ensure_groups()
    await bus.append_events([("p", req("w", {"wake_input": str(i)}, target=s)) for i in range(6)])
    held = await stalled.next_batch(timeout=2)
    assert [m.delivery.input for m in held] == [str(i) for i in range(6)]
    stream = bus.keys.wake_stream("session:mixed")
    # Entry 2 moves to `taker`; entry 4 is acked behind the consumer's back.
    await bus.redis.xclaim(stream, "g", "taker", 0, [held[2].entry_id])
    await bus.redis.xack(stream, "g", held[4].entry_id)
    assert await stalled.ack(held) == [True, True, False, True, False, True]
    rows = await bus.redis.xpending_range(stream, "g", "-", "+", 10)
    assert [(r["message_id"].decode(), r["consumer"].decode()) for r in rows] == [
        (held[2].entry_id, "taker")
    ]
    marker = bus.keys.wake_dedupe("session:mixed", held[2].delivery.wake_id)
    assert (await bus.redis.get(marker)).decode() == held[2].entry_id
    gone = bus.keys.wake_dedupe("session:mixed", held[0].delivery.wake_id)
    assert await bus.redis.get(gone) is None
    for c in (stalled, taker):
        await c.aclose()


# -- coalescing with lash's meaning (WK-12, RX-10) -------------------------------------


async def test_coalescing_ends_when_the_entry_is_acknowledged(bus):
    """Two processes sharing a const dedupe key coalesce only while the
    earlier wake is unacknowledged, not for the whole window."""
    bus.wake_dedupe_window_ms = 3_600_000
    await bus.register_process(reg("a", const_dedupe("d")))
    await bus.register_process(reg("b", const_dedupe("d")))
    s = scope("shared")
    consumer = bus.wake_consumer(group="g", consumer="c", scopes=[s])
    await consumer.ensure_groups()
    await bus.append_event("a", req("d", {"wake_input": "one"}, target=s))
    await bus.append_event("b", req("d", {"wake_input": "two"}, target=s))  # coalesced
    message = await consumer.next(timeout=2)
    assert message.delivery.input == "one"
    assert await consumer.next(timeout=0.2) is None
    await message.ack()
    await bus.append_event("b", req("d", {"wake_input": "three"}, target=s))
    again = await consumer.next(timeout=2)
    assert again is not None and again.delivery.input == "three"
    await again.ack()
    await consumer.aclose()


async def test_a_re_registered_process_gets_its_wakes(bus):
    """After prune + re-registration, the new process's event-identity wakes
    (the same `<pid>:<seq>`) are delivered, not dropped as duplicates."""
    bus.wake_dedupe_window_ms = 3_600_000
    s = scope("again")
    await bus.register_process(reg("p", wake("w")))
    consumer = bus.wake_consumer(group="g", consumer="c", scopes=[s])
    await consumer.ensure_groups()
    await bus.append_event("p", req("w", {"wake_input": "old"}, target=s))
    await (await consumer.next(timeout=2)).ack()
    await bus.complete_process("p", S(0))
    await bus.prune_terminal_processes(await bus.server_time_ms() + 1)
    await bus.register_process(reg("p", wake("w")))
    result = await bus.append_event("p", req("w", {"wake_input": "new"}, target=s))
    assert result.wake_delivery is not None
    message = await consumer.next(timeout=2)
    assert message is not None and message.delivery.input == "new"
    await message.ack()
    await consumer.aclose()


# -- retention -------------------------------------------------------------------------


async def test_consumers_trim_what_every_group_acknowledged(bus, monkeypatch):
    monkeypatch.setattr(wakes_module, "TRIM_EVERY_S", 0.0)
    await bus.register_process(reg("p", wake("w")))
    s = scope("retained")
    consumer = bus.wake_consumer(group="g", consumer="c", scopes=[s], block_ms=20)
    await consumer.ensure_groups()
    for i in range(5):
        await bus.append_event("p", req("w", {"wake_input": str(i)}, target=s))
    for _ in range(5):
        await (await consumer.next(timeout=1)).ack()
    assert await consumer.next(timeout=0.1) is None  # the next fill trims
    assert await bus.redis.xlen(bus.keys.wake_stream("session:retained")) == 0
    await consumer.aclose()


async def test_session_deletion_removes_its_wake_streams(bus):
    await bus.register_process(reg("p", wake("w")))
    mine = [scope("gone"), frame("gone", "frame-1")]
    theirs = scope("gone2")
    for target in [*mine, theirs]:
        await bus.append_event("p", req("w", {"wake_input": "x"}, target=target))
    consumer = bus.wake_consumer(group="g", consumer="c", scopes=mine, max_deliveries=1)
    await consumer.ensure_groups()
    message = await consumer.next(timeout=2)
    await message.dead_letter("for the test")
    await consumer.aclose()
    await bus.delete_session_process_state("gone")
    for target in mine:
        assert not await bus.redis.exists(bus.keys.wake_stream(target.id()))
        assert not await bus.redis.exists(bus.keys.wake_dead_letters(target.id()))
    assert await bus.redis.xlen(bus.keys.wake_stream(theirs.id())) == 1


# -- fleet mode ------------------------------------------------------------------------


async def test_a_fleet_pod_serves_several_scopes_at_once(bus):
    await bus.register_process(reg("p", wake("w")))
    async with bus.fleet_consumer(group="g", pod="pod-1", block_ms=50, max_scopes=3) as pod:
        for i in range(3):
            await bus.append_event("p", req("w", {"wake_input": str(i)}, target=scope(f"m{i}")))
        held = []
        async with asyncio.timeout(10):
            while len(held) < 3:  # none acknowledged yet: all three in hand at once
                message = await pod.next(timeout=0.5)
                if message is not None:
                    held.append(message)
        assert sorted(m.scope_id for m in held) == ["session:m0", "session:m1", "session:m2"]
        assert all([await m.ack() for m in held])


async def test_a_fleet_handler_longer_than_the_lease_keeps_its_scope(bus, reopen):
    """The scope lease is renewed in the background while a handler runs:
    no second pod takes the scope or the in-flight wake."""
    await bus.register_process(reg("p", wake("w")))
    other = await reopen()
    async with (
        bus.fleet_consumer(group="g", pod="slow", lease_ms=300, block_ms=50) as slow,
        other.fleet_consumer(group="g", pod="eager", lease_ms=300, block_ms=50) as eager,
    ):
        await bus.append_event("p", req("w", {"wake_input": "turn"}, target=scope("llm")))
        async with asyncio.timeout(5):
            message = None
            while message is None:
                message = await slow.next(timeout=0.2)
        loop = asyncio.get_running_loop()
        end = loop.time() + 1.5  # five leases of "handling"
        while loop.time() < end:
            assert await eager.next(timeout=0.1) is None
        assert slow.scopes == ["session:llm"]
        assert await message.ack() is True


async def test_a_nacked_fleet_wake_does_not_pin_the_pod(bus):
    await bus.register_process(reg("p", wake("w")))
    async with bus.fleet_consumer(
        group="g", pod="pod-1", lease_ms=400, block_ms=50, max_scopes=1
    ) as pod:
        await bus.append_event("p", req("w", {"wake_input": "fails"}, target=scope("n1")))
        await bus.append_event("p", req("w", {"wake_input": "fine"}, target=scope("n2")))
        seen: list[str] = []
        async with asyncio.timeout(15):
            while seen.count("fails") < 2 or "fine" not in seen:
                message = await pod.next(timeout=0.2)
                if message is None:
                    continue
                seen.append(message.delivery.input)
                if message.delivery.input == "fails" and seen.count("fails") == 1:
                    await message.nack(delay=0.2)
                else:
                    await message.ack()
        assert "fine" in seen and seen.count("fails") == 2


async def test_a_fleet_pod_survives_its_notice_group_being_lost(bus):
    await bus.register_process(reg("p", wake("w")))
    async with bus.fleet_consumer(group="g", pod="pod-1", block_ms=50) as pod:
        await bus.redis.delete(bus.keys.fleet_stream)  # a restore without it
        assert await pod.next(timeout=0.3) is None
        await bus.append_event("p", req("w", {"wake_input": "x"}, target=scope("lost")))
        async with asyncio.timeout(5):
            message = None
            while message is None:
                message = await pod.next(timeout=0.2)
        assert await message.ack()


async def test_wakes_from_before_the_first_fleet_group_are_noticed(bus):
    await bus.register_process(reg("p", wake("w")))
    await bus.append_event("p", req("w", {"wake_input": "early"}, target=scope("early")))
    async with bus.fleet_consumer(group="g", pod="pod-1", block_ms=50) as pod:
        async with asyncio.timeout(5):
            message = None
            while message is None:
                message = await pod.next(timeout=0.2)
        assert message.delivery.input == "early"
        assert await message.ack()


async def test_trimming_races_acks_between_its_two_reads(bus, monkeypatch):
    """XINFO saw an entry pending; it was acked before XPENDING ran: the trim
    falls back to the group's last delivered id instead of failing."""
    await bus.register_process(reg("p", wake("w")))
    s = scope("race")
    consumer = bus.wake_consumer(group="g", consumer="c", scopes=[s])
    await consumer.ensure_groups()
    await bus.append_event("p", req("w", {"wake_input": "x"}, target=s))
    message = await consumer.next(timeout=2)
    stream = bus.keys.wake_stream("session:race")
    seen = await bus.redis.xinfo_groups(stream)
    await message.ack()
    monkeypatch.setattr(bus.redis, "xinfo_groups", lambda key: _returning(seen))
    assert await bus.trim_wakes(s) == 1
    await consumer.aclose()


async def _returning(value):
    return value
