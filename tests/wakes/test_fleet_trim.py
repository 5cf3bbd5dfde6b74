"""Fleet notices stay bounded: pods trim what every fleet group acknowledged,
and no notice is written while no fleet group exists."""

from __future__ import annotations

import asyncio

from ..conformance.fixtures import reg, req, scope, wake


async def test_fleet_pods_trim_acknowledged_notices(bus):
    await bus.register_process(reg("p", wake("w")))
    async with bus.fleet_consumer(group="g", pod="pod-1", block_ms=50) as pod:
        for i in range(20):
            await bus.append_event("p", req("w", {"wake_input": f"x{i}"}, target=scope(f"s{i}")))
        got = 0
        async with asyncio.timeout(20):
            while got < 20:
                message = await pod.next(timeout=0.5)
                if message is not None:
                    await message.ack()
                    got += 1
            # The last scope's notice is settled once its drain finds nothing more.
            while await pod.next(timeout=0.1) is not None:
                pass
    stream = bus.keys.fleet_stream
    await bus.trim_fleet_notices()
    assert await bus.redis.xlen(stream) == 0


async def test_no_fleet_notices_without_a_fleet_group(bus):
    """Issue 12: nothing reads notices without a fleet group, so none are
    written (the stream stays bounded without a blind MAXLEN)."""
    await bus.register_process(reg("p", wake("w")))
    for i in range(0, 400, 100):
        await bus.append_events(
            [
                ("p", req("w", {"wake_input": f"x{j}"}, target=scope(f"s{j}")))
                for j in range(i, i + 100)
            ]
        )
    assert await bus.redis.xlen(bus.keys.fleet_stream) == 0
    assert await bus.trim_fleet_notices() == 0


async def test_notices_of_live_groups_are_never_trimmed_unread(bus):
    """Issue 12: the notice stream is trimmed only below what every fleet
    group acknowledged (MINID), never by a cap that drops unread notices."""
    await bus.register_process(reg("p", wake("w")))
    async with bus.fleet_consumer(group="g", pod="pod-1", block_ms=50):
        pass  # the group exists; its pod is gone
    for i in range(0, 300, 100):
        await bus.append_events(
            [
                ("p", req("w", {"wake_input": f"x{j}"}, target=scope(f"s{j}")))
                for j in range(i, i + 100)
            ]
        )
    assert await bus.trim_fleet_notices() == 0
    assert await bus.redis.xlen(bus.keys.fleet_stream) == 300
    await bus.drop_fleet_group("g")
    assert await bus.redis.xlen(bus.keys.fleet_stream) == 0
