"""Our paths, measured like the baselines: ``append_event`` and
``append_events`` throughput, append -> wake-consumer latency, and wakes
drained through one consumer group by several consumers."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import lash_streams as ls
from lash_streams.bench.measure import Latency, Rate, for_duration, payload
from lash_streams.bench.workload import register_many, registration
from lash_streams.model import ProcessEventAppendRequest, RuntimeReplay, SessionScope

BATCH = 100


async def appends(
    bus: ls.Bus, processes: int, size: int, duration_s: float, *, batched: bool, keyed: bool = False
) -> Rate:
    run = uuid.uuid4().hex[:6]
    pids = [f"a{run}-{i}" for i in range(processes)]
    await register_many(bus, pids)
    body = payload(size)

    def request(i: int) -> ProcessEventAppendRequest:
        replay = RuntimeReplay(key=f"k{i}") if keyed else None
        return ProcessEventAppendRequest(event_type="progress", payload=body, replay=replay)

    async def one(i: int) -> int:
        await bus.append_event(pids[i % processes], request(i))
        return 1

    async def batch(i: int) -> int:
        base = i * BATCH
        await bus.append_events(
            [(pids[(base + j) % processes], request(base + j)) for j in range(BATCH)]
        )
        return BATCH

    return await for_duration(duration_s, batch if batched else one)


async def contended(bus: ls.Bus, size: int, duration_s: float, tasks: int = 16) -> Rate:
    """``tasks`` concurrent appenders on one process (the sequence is assigned
    by the append script, so they should cost what one appender costs)."""
    pid = f"c{uuid.uuid4().hex[:8]}"
    await register_many(bus, [pid])
    body = payload(size)
    request = ProcessEventAppendRequest(event_type="progress", payload=body)
    rate = Rate()
    start = time.perf_counter()
    deadline = start + duration_s

    async def appender() -> None:
        while time.perf_counter() < deadline:
            await bus.append_event(pid, request)
            rate.count += 1

    await asyncio.gather(*(appender() for _ in range(tasks)))
    rate.elapsed_s = time.perf_counter() - start
    return rate


def _ping(i: int, target: SessionScope, size: int) -> ProcessEventAppendRequest:
    body = payload(size) | {"n": i}
    return ProcessEventAppendRequest(event_type="ping", payload=body, wake_target_scope=target)


async def wake_latency(bus: ls.Bus, size: int, n: int) -> tuple[Latency, Rate]:
    """One wake at a time: from calling ``append_event`` to the consumer
    handing the delivery over."""
    pid = f"w{uuid.uuid4().hex[:8]}"
    target = SessionScope(session_id=pid)
    await bus.register_process(registration(pid))
    consumer = bus.wake_consumer(group="bench", consumer="c", scopes=[target], block_ms=5000)
    await consumer.ensure_groups()
    latency = Latency()
    start_all = time.perf_counter()
    try:
        for i in range(n):
            start = time.perf_counter()
            await bus.append_event(pid, _ping(i, target, size))
            message = await consumer.next(timeout=5)
            assert message is not None, "a wake was not delivered within 5 s"
            latency.record_since(start)
            await message.ack()
    finally:
        await consumer.aclose()
    return latency, Rate(count=n, elapsed_s=time.perf_counter() - start_all)


async def wake_drain(bus: ls.Bus, size: int, duration_s: float, consumers: int) -> dict[str, Any]:
    """Batched appends of waking events for ``duration_s`` while ``consumers``
    wake consumers (one group) drain and acknowledge; wakes/s = wakes consumed
    per second until the last one is acknowledged."""
    pid = f"d{uuid.uuid4().hex[:8]}"
    target = SessionScope(session_id=pid)
    await bus.register_process(registration(pid))
    members = [
        bus.wake_consumer(group="bench", consumer=f"c{i}", scopes=[target], batch=128, block_ms=200)
        for i in range(consumers)
    ]
    for member in members:
        await member.ensure_groups()
    consumed = 0
    appended = 0
    done = asyncio.Event()

    async def drain(member: Any) -> None:
        # The batch API: up to `batch` deliveries per read, one ack round trip.
        nonlocal consumed
        while not (done.is_set() and consumed >= appended):
            messages = await member.next_batch(timeout=0.2)
            if messages:
                await member.ack(messages)
                consumed += len(messages)

    async def produce(i: int) -> int:
        nonlocal appended
        base = i * BATCH
        await bus.append_events([(pid, _ping(base + j, target, size)) for j in range(BATCH)])
        appended += BATCH
        return BATCH

    start = time.perf_counter()
    tasks = [asyncio.create_task(drain(m)) for m in members]
    try:
        produced = await for_duration(duration_s, produce)
        done.set()
        async with asyncio.timeout(60):
            await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        for member in members:
            await member.aclose()
    return {
        "appended": produced,
        "drained": Rate(count=consumed, elapsed_s=time.perf_counter() - start),
    }
