"""How cost grows: Redis memory per event (against a raw ``XADD`` of the same
payload), and per-append latency, sweep cost and memory per process as the
number of registered processes grows."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from typing import Any

import lash_streams as ls
from lash_streams.bench.measure import Latency, payload
from lash_streams.bench.workload import drop_namespace, register_many
from lash_streams.model import LeaseOwnerIdentity, ProcessEventAppendRequest, RecoveryDisposition


async def _used_memory(bus: ls.Bus) -> int:
    return int((await bus.redis.info("memory"))["used_memory"])


async def _key_bytes(bus: ls.Bus, pattern: str) -> int:
    total = 0
    async for key in bus.redis.scan_iter(match=pattern, count=1000):
        total += int(await bus.redis.memory_usage(key, samples=0) or 0)
    return total


async def memory_per_event(url: str, namespace: str, size: int, events: int) -> dict[str, Any]:
    """``events`` appends to one process vs as many raw ``XADD`` s of the same
    JSON: bytes per event from ``MEMORY USAGE`` (every key the process owns)
    and from the ``used_memory`` delta in ``INFO``."""
    ns = f"{namespace}-m{uuid.uuid4().hex[:4]}"
    body = payload(size)
    async with ls.connect(url, namespace=ns) as bus:
        try:
            await register_many(bus, ["mem"])
            before = await _used_memory(bus)
            request = ProcessEventAppendRequest(event_type="progress", payload=body)
            for offset in range(0, events, 100):
                await bus.append_events([("mem", request)] * min(100, events - offset))
            ours_info = (await _used_memory(bus) - before) / events
            ours_keys = await _key_bytes(bus, f"{ns}:p:*") / events
            stream, encoded = f"{ns}:raw", json.dumps(body)
            before = await _used_memory(bus)
            for offset in range(0, events, 100):
                pipe = bus.redis.pipeline(transaction=False)
                for _ in range(min(100, events - offset)):
                    pipe.xadd(stream, {"e": encoded})
                await pipe.execute()
            raw_info = (await _used_memory(bus) - before) / events
            raw_keys = int(await bus.redis.memory_usage(stream, samples=0) or 0) / events
        finally:
            await drop_namespace(bus)
    return {
        "events": events,
        "payload_json_bytes": len(json.dumps(body)),
        "ours_bytes_per_event": ours_keys,
        "raw_bytes_per_event": raw_keys,
        "ours_info_bytes_per_event": ours_info,
        "raw_info_bytes_per_event": raw_info,
    }


async def _commands(bus: ls.Bus) -> int:
    stats = await bus.redis.info("commandstats")
    return sum(int(v["calls"]) for v in stats.values())


async def at_scale(
    url: str, namespace: str, processes: int, size: int, samples: int
) -> dict[str, Any]:
    """Register ``processes`` rerunnable processes, each leased by a live holder;
    then time ``samples`` appends to random ones and one sweep (every row
    examined and left to its holder)."""
    ns = f"{namespace}-s{processes}"
    async with ls.connect(url, namespace=ns) as bus:
        try:
            await drop_namespace(bus)
            pids = [f"p{i:07d}" for i in range(processes)]
            before = await _used_memory(bus)
            start = time.perf_counter()
            await register_many(bus, pids, disposition=RecoveryDisposition.RERUNNABLE)
            registered_s = time.perf_counter() - start
            holder = LeaseOwnerIdentity.opaque("holder", uuid.uuid4().hex)
            for offset in range(0, processes, 500):
                await asyncio.gather(
                    *(
                        bus.claim_process_lease(p, holder, 3_600_000)
                        for p in pids[offset : offset + 500]
                    )
                )
            memory = (await _used_memory(bus) - before) / processes
            request = ProcessEventAppendRequest(event_type="progress", payload=payload(size))
            latency = Latency()
            rng = random.Random(processes)
            for _ in range(samples):
                t = time.perf_counter()
                await bus.append_event(rng.choice(pids), request)
                latency.record_since(t)
            sweeper = bus.recovery(LeaseOwnerIdentity.opaque("sweeper", uuid.uuid4().hex))
            calls = await _commands(bus)
            start = time.perf_counter()
            report = await sweeper.sweep_once()
            sweep_s = time.perf_counter() - start
            commands = await _commands(bus) - calls - 1  # minus our own INFO
            if report.examined != processes or len(report.skipped) != processes:
                raise RuntimeError(
                    f"the sweep examined {report.examined} rows and left "
                    f"{len(report.skipped)} to their holder; expected {processes} "
                    f"({len(report.failed)} failed)"
                )
        finally:
            await drop_namespace(bus)
    return {
        "processes": processes,
        "register_per_s": processes / registered_s,
        "append": latency.summary(),
        "sweep_s": sweep_s,
        "sweep_commands": commands,
        "sweep_commands_per_row": commands / processes,
        "bytes_per_process": memory,
    }
