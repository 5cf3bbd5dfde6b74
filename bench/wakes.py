"""Wake figures: deliveries/s and append-to-handler latency, beside a raw
``XADD`` -> ``XREADGROUP BLOCK`` round trip measured in the same run.

    python -m bench.wakes [--url redis://...] [--wakes 2000]

Latency is measured one wake at a time (append, then wait for the consumer to
hand it over): the time from calling ``append_event`` to the handler receiving
the delivery. Throughput appends wakes back to back while one consumer drains.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
import uuid
from typing import Any

import msgspec
from hdrh.histogram import HdrHistogram
from redis.asyncio import Redis
from rich.console import Console
from rich.table import Table

import lash_streams as ls
from lash_streams.model import (
    LashSchema,
    ProcessEventAppendRequest,
    ProcessEventSemanticsSpec,
    ProcessEventType,
    ProcessRegistration,
    ProcessWakeSpec,
    SelPointer,
    SessionScope,
)

WAKE = ProcessEventType(
    name="ping",
    payload_schema=LashSchema(schema={}),
    semantics=ProcessEventSemanticsSpec(wake=ProcessWakeSpec(input=SelPointer("/text"))),
)


def hist() -> HdrHistogram:
    return HdrHistogram(1, 60_000_000, 3)  # microseconds


def summary(h: HdrHistogram) -> dict[str, float]:
    return {
        p: h.get_value_at_percentile(q) / 1000
        for p, q in (("p50", 50), ("p99", 99), ("p999", 99.9))
    }


async def raw_round_trip(client: Redis, blocking: Redis, n: int) -> tuple[HdrHistogram, float]:
    stream = f"bench-raw-wake:{uuid.uuid4().hex}"
    await client.xgroup_create(stream, "g", id="$", mkstream=True)
    h = hist()
    start_all = time.perf_counter()
    for i in range(n):
        start = time.perf_counter()
        await client.xadd(stream, {"d": f"wake {i}"})
        reply = await blocking.xreadgroup("g", "c", {stream: ">"}, count=1, block=5000)
        assert reply
        h.record_value(max(1, int((time.perf_counter() - start) * 1e6)))
        await client.xack(stream, "g", reply[0][1][0][0])
    rate = n / (time.perf_counter() - start_all)
    await client.delete(stream)
    return h, rate


async def bus_latency(bus: ls.Bus, n: int) -> tuple[HdrHistogram, float]:
    pid = f"bench-wake-{uuid.uuid4().hex[:8]}"
    target = SessionScope(session_id=pid)
    await bus.register_process(
        msgspec.structs.replace(ProcessRegistration.external(pid), event_types=[WAKE])
    )
    consumer = bus.wake_consumer(group="bench", consumer="c", scopes=[target], block_ms=5000)
    await consumer.ensure_groups()
    h = hist()
    start_all = time.perf_counter()
    for i in range(n):
        start = time.perf_counter()
        await bus.append_event(
            pid,
            ProcessEventAppendRequest(
                event_type="ping", payload={"text": f"wake {i}"}, wake_target_scope=target
            ),
        )
        message = await consumer.next(timeout=5)
        assert message is not None
        h.record_value(max(1, int((time.perf_counter() - start) * 1e6)))
        await message.ack()
    rate = n / (time.perf_counter() - start_all)
    await consumer.aclose()
    return h, rate


async def bus_throughput(bus: ls.Bus, n: int) -> float:
    pid = f"bench-wake-{uuid.uuid4().hex[:8]}"
    target = SessionScope(session_id=pid)
    await bus.register_process(
        msgspec.structs.replace(ProcessRegistration.external(pid), event_types=[WAKE])
    )
    consumer = bus.wake_consumer(group="bench", consumer="c", scopes=[target], batch=128)
    await consumer.ensure_groups()
    received = 0

    async def drain() -> None:
        nonlocal received
        while received < n:
            message = await consumer.next(timeout=10)
            assert message is not None
            received += 1
            await message.ack()

    start = time.perf_counter()
    task = asyncio.create_task(drain())
    for offset in range(0, n, 100):
        await bus.append_events(
            [
                (pid, ProcessEventAppendRequest(
                    event_type="ping", payload={"text": f"wake {i}"}, wake_target_scope=target
                ))
                for i in range(offset, min(n, offset + 100))
            ]
        )  # fmt: skip
    await task
    rate = n / (time.perf_counter() - start)
    await consumer.aclose()
    return rate


async def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=os.environ.get("LASH_STREAMS_URL"))
    parser.add_argument("--wakes", type=int, default=2000)
    args = parser.parse_args()
    async with ls.connect(args.url, namespace=f"bench{uuid.uuid4().hex[:6]}") as bus:
        raw_h, raw_rate = await raw_round_trip(bus.redis, bus.blocking, args.wakes)
        bus_h, bus_rate = await bus_latency(bus, args.wakes)
        throughput = await bus_throughput(bus, args.wakes * 2)
        info = await bus.redis.info("server")
    raw, ours = summary(raw_h), summary(bus_h)
    table = Table(
        title=f"wakes: {args.wakes} one-at-a-time round trips, {args.wakes * 2} for throughput"
    )
    for column in ("path", "p50 ms", "p99 ms", "p99.9 ms", "per s"):
        table.add_column(column, justify="right" if column != "path" else "left")
    table.add_row("raw XADD -> XREADGROUP", *(f"{raw[p]:.3f}" for p in raw), f"{raw_rate:,.0f}")
    table.add_row("append_event -> consumer", *(f"{ours[p]:.3f}" for p in ours), f"{bus_rate:,.0f}")
    table.add_row(
        "ratio (ours / raw)",
        *(f"{ours[p] / raw[p]:.2f}x" for p in ours),
        f"{bus_rate / raw_rate:.2f}x",
    )
    table.add_row("deliveries/s, batched appends, 1 consumer", "", "", "", f"{throughput:,.0f}")
    Console().print(table)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    server = {k: info.get(k) for k in ("redis_version", "valkey_version")}
    Console().print(f"server: {server}; machine: {machine}")
    return {
        "raw": raw,
        "ours": ours,
        "raw_rate": raw_rate,
        "rate": bus_rate,
        "throughput": throughput,
    }


if __name__ == "__main__":
    asyncio.run(main())
