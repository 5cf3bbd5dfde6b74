"""Baselines measured on the same server in the same run: raw redis-py
``XADD`` (one by one and pipelined), raw ``XADD`` -> ``XREADGROUP`` (one at a
time, and a group of consumers draining), and FastStream's Redis Streams
publisher and consumer-group subscriber."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from lash_streams.bench.measure import Latency, Rate, for_duration, payload

PIPELINE = 100


def _stream(namespace: str, what: str) -> str:
    return f"{namespace}:bench-raw:{what}:{uuid.uuid4().hex[:8]}"


async def raw_xadd(
    client: Redis, namespace: str, size: int, duration_s: float, *, pipelined: bool
) -> Rate:
    stream = _stream(namespace, "xadd")
    body = json.dumps(payload(size))

    async def one(_: int) -> int:
        await client.xadd(stream, {"e": body})
        return 1

    async def batch(_: int) -> int:
        pipe = client.pipeline(transaction=False)
        for _ in range(PIPELINE):
            pipe.xadd(stream, {"e": body})
        await pipe.execute()
        return PIPELINE

    try:
        return await for_duration(duration_s, batch if pipelined else one)
    finally:
        await client.delete(stream)


async def raw_round_trip(
    client: Redis, blocking: Redis, namespace: str, size: int, n: int
) -> tuple[Latency, Rate]:
    stream = _stream(namespace, "rt")
    await client.xgroup_create(stream, "g", id="$", mkstream=True)
    body = json.dumps(payload(size))
    latency = Latency()
    start_all = time.perf_counter()
    try:
        for _ in range(n):
            start = time.perf_counter()
            await client.xadd(stream, {"e": body})
            reply: Any = await blocking.xreadgroup("g", "c", {stream: ">"}, count=1, block=5000)
            latency.record_since(start)
            await client.xack(stream, "g", reply[0][1][0][0])
    finally:
        await client.delete(stream)
    return latency, Rate(count=n, elapsed_s=time.perf_counter() - start_all)


async def raw_group_drain(
    url_client: Redis,
    make_client: Any,
    namespace: str,
    size: int,
    duration_s: float,
    consumers: int,
) -> Rate:
    """Pipelined XADD for ``duration_s`` while ``consumers`` read through one
    group and XACK each entry; the rate is entries consumed per second."""
    stream = _stream(namespace, "group")
    await url_client.xgroup_create(stream, "g", id="$", mkstream=True)
    body = json.dumps(payload(size))
    consumed = 0
    produced_all = asyncio.Event()
    produced = 0

    async def consume(name: str) -> None:
        nonlocal consumed
        client = make_client()
        try:
            while not (produced_all.is_set() and consumed >= produced):
                reply = await client.xreadgroup("g", name, {stream: ">"}, count=100, block=200)
                for _, entries in reply or []:
                    await client.xack(stream, "g", *[entry_id for entry_id, _ in entries])
                    consumed += len(entries)
        finally:
            await client.aclose()

    start = time.perf_counter()
    tasks = [asyncio.create_task(consume(f"c{i}")) for i in range(consumers)]

    async def batch(_: int) -> int:
        nonlocal produced
        pipe = url_client.pipeline(transaction=False)
        for _ in range(PIPELINE):
            pipe.xadd(stream, {"e": body})
        await pipe.execute()
        produced += PIPELINE
        return PIPELINE

    try:
        await for_duration(duration_s, batch)
        produced_all.set()
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await url_client.delete(stream)
    return Rate(count=consumed, elapsed_s=time.perf_counter() - start)


async def faststream(
    url: str,
    namespace: str,
    size: int,
    n: int,
    duration_s: float,
    *,
    locate: Callable[[str], Awaitable[tuple[str, str]]] | None = None,
) -> dict[str, Any]:
    """FastStream's RedisBroker: one-at-a-time publish -> subscriber latency
    through a consumer group, then publish for ``duration_s`` while the
    subscriber drains (messages consumed per second). ``locate(stream)``
    gives the (URL, address) of the node holding the stream when ``url`` is
    not one plain server (FastStream has no cluster or Sentinel client)."""
    from faststream.redis import RedisBroker, StreamSub

    stream = _stream(namespace, "faststream")
    node = None
    if locate is not None:
        url, node = await locate(stream)
    broker = RedisBroker(url, logger=None)  # type: ignore[arg-type]  # None: no logging
    received: asyncio.Queue[float] = asyncio.Queue()

    @broker.subscriber(stream=StreamSub(stream, group="g", consumer="c", polling_interval=1000))
    async def handle(message: dict[str, Any]) -> None:
        received.put_nowait(time.perf_counter())

    body = payload(size)
    await broker.start()
    try:
        latency = Latency()
        start_all = time.perf_counter()
        for _ in range(n):
            start = time.perf_counter()
            await broker.publish(body, stream=stream)
            await received.get()
            latency.record_since(start)
        round_trips = Rate(count=n, elapsed_s=time.perf_counter() - start_all)

        async def publish(_: int) -> int:
            await broker.publish(body, stream=stream)
            return 1

        start = time.perf_counter()
        published = await for_duration(duration_s, publish)
        for _ in range(published.count):
            await received.get()
        drained = Rate(count=published.count, elapsed_s=time.perf_counter() - start)
    finally:
        with contextlib.suppress(Exception):
            await broker.stop()
        client = Redis.from_url(url)
        await client.delete(stream)
        await client.aclose()
    return {
        "latency": latency,
        "round_trips": round_trips,
        "publish": published,
        "drained": drained,
        "node": node,
    }
