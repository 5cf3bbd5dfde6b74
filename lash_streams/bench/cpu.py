"""CPU per item: where each path's time goes, and the rate no client work can
beat. For raw ``XADD`` (one call, pipelined by 100), ``append_event``,
``append_events`` (plain and waking, batches of 100), ``submit`` and a worker
running submitted jobs: the wall time, the bench process's CPU
(``time.process_time``) and the server's (``INFO cpu``, ``used_cpu_sys`` +
``used_cpu_user``), each per item. One server thread does the server's part of
every item in turn, so ``1 s / server CPU per item`` bounds the path's rate on
that server whatever the client does. On a cluster the server column is left
empty (the work is spread over nodes); on a shared server other clients'
commands count in it."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import lash_streams as ls
from lash_streams.bench import dispatch, ours
from lash_streams.bench.baselines import PIPELINE
from lash_streams.bench.dispatch import Meter
from lash_streams.bench.measure import payload
from lash_streams.bench.workload import register_many, registration
from lash_streams.model import ProcessEventAppendRequest, SessionScope


async def server_cpu_s(client: Any) -> float | None:
    """The server's CPU seconds so far (None where ``INFO cpu`` does not say)."""
    try:
        info = await client.info("cpu")
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
    except (KeyError, TypeError, ValueError):
        return None


def meter_into(rows: list[dict[str, Any]], client: Any, server: bool) -> Meter:
    """A context manager per path that appends its row to ``rows``."""

    @contextlib.asynccontextmanager
    async def meter(path: str, items: int) -> AsyncIterator[None]:
        s0 = await server_cpu_s(client) if server else None
        c0, w0 = time.process_time(), time.perf_counter()
        yield
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        s1 = await server_cpu_s(client) if s0 is not None else None
        server_us = (s1 - s0) / items * 1e6 if s0 is not None and s1 is not None else None
        rows.append(
            {
                "path": path,
                "items": items,
                "wall_us": wall / items * 1e6,
                "client_us": cpu / items * 1e6,
                "server_us": server_us,
                "server_bound_per_s": 1e6 / server_us if server_us else None,
            }
        )

    return meter


async def per_item(
    bus: ls.Bus, raw: Any, namespace: str, size: int, items: int, *, server: bool
) -> dict[str, Any]:
    """Each path over about ``items`` items (batches of 100 over as many)."""
    rows: list[dict[str, Any]] = []
    meter = meter_into(rows, bus.redis, server)
    body_json, body = json.dumps(payload(size)), payload(size)
    batches = max(1, items // PIPELINE)
    stream = f"{namespace}:bench-raw:cpu:{uuid.uuid4().hex[:8]}"
    try:
        async with meter("raw XADD, one call", items):
            for _ in range(items):
                await raw.xadd(stream, {"e": body_json})
        async with meter("raw XADD, pipelined by 100", batches * PIPELINE):
            for _ in range(batches):
                pipe = raw.pipeline(transaction=False)
                for _ in range(PIPELINE):
                    pipe.xadd(stream, {"e": body_json})
                await pipe.execute()
    finally:
        await raw.delete(stream)

    run = uuid.uuid4().hex[:6]
    pids = [f"c{run}-{i}" for i in range(PIPELINE)]
    await register_many(bus, pids)
    request = ProcessEventAppendRequest(event_type="progress", payload=body)
    await bus.append_events([(pid, request) for pid in pids])  # states known before timing
    async with meter("append_event, one call", items):
        for i in range(items):
            await bus.append_event(pids[i % PIPELINE], request)
    async with meter("append_events, batches of 100", batches * PIPELINE):
        for _ in range(batches):
            await bus.append_events([(pid, request) for pid in pids])
    waking = f"cw{run}"
    target = SessionScope(session_id=waking)
    await bus.register_process(registration(waking))
    async with meter("append_events waking, batches of 100", batches * PIPELINE):
        for b in range(batches):
            base = b * PIPELINE
            await bus.append_events(
                [(waking, ours._ping(base + j, target, size)) for j in range(PIPELINE)]
            )
    await dispatch.drain(bus, size, items, meter=meter)
    return {"rows": rows, "server_cpu": server}
