"""Dispatch, measured like the baselines (issue 16): register -> job start
latency one job at a time (against raw ``XADD`` -> ``XREADGROUP``), and jobs
started per second by workers draining a backlog (against FastStream's
one-at-a-time round trips)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import lash_streams as ls
from lash_streams.bench.measure import Latency, Rate, payload
from lash_streams.model import LeaseOwnerIdentity

#: Wraps a measured stretch: ``meter(what, items)`` (bench/cpu.py).
Meter = Callable[[str, int], contextlib.AbstractAsyncContextManager[None]]

#: Jobs one bench worker runs at once in the throughput phase.
CONCURRENCY = 64


def _identity(tag: str) -> LeaseOwnerIdentity:
    return LeaseOwnerIdentity.opaque(f"bench-worker-{tag}", uuid.uuid4().hex)


async def _serving(worker: ls.Worker) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop=stop))
    await asyncio.sleep(0.2)  # the first sweep pass is over and the group exists
    return stop, task


async def start_latency(bus: ls.Bus, size: int, n: int) -> tuple[Latency, Rate]:
    """One job at a time: from calling ``submit`` to its handler starting."""
    kind = f"lat-{uuid.uuid4().hex[:6]}"
    started: asyncio.Queue[float] = asyncio.Queue()

    async def handler(job: ls.Job[Any]) -> None:
        started.put_nowait(time.perf_counter())

    # Sweeps far apart: every start below is dispatch's.
    worker = bus.worker(_identity(kind), {kind: handler}, concurrency=8, sweep_every_s=600)
    stop, task = await _serving(worker)
    body = payload(size)
    latency = Latency()
    start_all = time.perf_counter()
    try:
        for _ in range(n):
            begun = time.perf_counter()
            await bus.submit(kind, body)
            at = await asyncio.wait_for(started.get(), 5)
            latency.hist.record_value(max(1, int((at - begun) * 1e6)))
    finally:
        stop.set()
        await task
    return latency, Rate(count=n, elapsed_s=time.perf_counter() - start_all)


async def drain(
    bus: ls.Bus,
    size: int,
    jobs: int,
    *,
    meter: Meter | None = None,
) -> Rate:
    """A backlog of ``jobs`` registered while a worker's group exists, then a
    worker (``CONCURRENCY``) starts: jobs started per second until the last
    one started. ``meter(what, items)`` (bench/cpu.py) wraps the submits and
    the worker's run."""
    measured = meter or (lambda what, items: contextlib.nullcontext())
    kind = f"tp-{uuid.uuid4().hex[:6]}"
    await bus.ensure_ready_group(kind)
    body = payload(size)
    sem = asyncio.Semaphore(64)

    async def submit(i: int) -> None:
        async with sem:
            await bus.submit(kind, body, id=f"{kind}-{i}")

    async with measured("submit, 64 at a time", jobs):
        await asyncio.gather(*(submit(i) for i in range(jobs)))
    count = 0
    last = asyncio.Event()
    last_at = 0.0

    async def handler(job: ls.Job[Any]) -> None:
        nonlocal count, last_at
        count += 1
        last_at = time.perf_counter()
        if count >= jobs:
            last.set()

    worker = bus.worker(
        _identity(kind), {kind: handler}, concurrency=CONCURRENCY, sweep_every_s=600
    )
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    try:
        # Metered from the worker's start to the last job's start, as the rate.
        async with measured("a worker starting and running them", jobs):
            begun = time.perf_counter()
            task = asyncio.create_task(worker.run(stop=stop))
            await asyncio.wait_for(last.wait(), 120)
    finally:
        stop.set()
        if task is not None:
            await task
    return Rate(count=count, elapsed_s=last_at - begun)
