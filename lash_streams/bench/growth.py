"""How cost grows: Redis memory per event (against a raw ``XADD`` of the same
payload), and per-append latency, sweep cost and memory per process as the
number of registered processes grows."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import lash_streams as ls
from lash_streams.bench.env import info_per_master
from lash_streams.bench.measure import Latency, payload
from lash_streams.bench.workload import drop_namespace, register_many
from lash_streams.model import (
    AwaitSuccess,
    LeaseAcquired,
    LeaseOwnerIdentity,
    ProcessEventAppendRequest,
    ProcessLease,
    ProcessLeaseCompletion,
    RecoveryDisposition,
)
from lash_streams.pool import BoundedCluster, BoundedPool

#: Calls the untimed set-up of ``at_scale`` makes at once.
UNTIMED = 64
#: Registrations at once in the timed registration (``UNTIMED`` on a client
#: whose pool does not queue).
REGISTER_AT_ONCE = 500


async def _used_memory(bus: ls.Bus) -> int:
    """Summed over a cluster's masters: a process's keys spread over them."""
    return sum(int(info["used_memory"]) for info in await info_per_master(bus.redis, "memory"))


async def _key_bytes(bus: ls.Bus, pattern: str) -> int:
    total = 0
    async for key in bus.redis.scan_iter(match=pattern, count=1000):
        total += int(await bus.redis.memory_usage(key, samples=0) or 0)
    return total


async def memory_per_event(url: str, namespace: str, size: int, events: int) -> dict[str, Any]:
    """``events`` appends to one process vs as many raw ``XADD`` s of the same
    JSON: bytes per event from ``MEMORY USAGE`` (every key the process owns)
    and from the ``used_memory`` delta in ``INFO`` (summed over a cluster's
    masters: ``info_nodes`` says over how many)."""
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
            nodes = len(await info_per_master(bus.redis, "memory"))
        finally:
            await drop_namespace(bus)
    return {
        "events": events,
        "info_nodes": nodes,
        "payload_json_bytes": len(json.dumps(body)),
        "ours_bytes_per_event": ours_keys,
        "raw_bytes_per_event": raw_keys,
        "ours_info_bytes_per_event": ours_info,
        "raw_info_bytes_per_event": raw_info,
    }


async def _commands(bus: ls.Bus) -> tuple[int, int]:
    """Commands served so far, summed over a cluster's masters, and how many
    nodes answered."""
    nodes = await info_per_master(bus.redis, "commandstats")
    return sum(int(v["calls"]) for stats in nodes for v in stats.values()), len(nodes)


async def _measured(bus: ls.Bus, sweep: Callable[[], Awaitable[Any]]) -> tuple[Any, float, int]:
    """A sweep's report, seconds and the commands it sent (the servers' count)."""
    calls, _ = await _commands(bus)
    start = time.perf_counter()
    report = await sweep()
    seconds = time.perf_counter() - start
    after, nodes = await _commands(bus)
    return report, seconds, after - calls - nodes  # minus our own INFO on each node


def _check(report: Any, what: str, examined: int, decided: int, decision: str) -> None:
    got = len(getattr(report, decision))
    if report.examined != examined or got != decided:
        raise RuntimeError(
            f"{what} examined {report.examined} rows and {decision} {got}; expected "
            f"{examined} and {decided} ({len(report.failed)} failed)"
        )


async def _done(record: Any, lease: Any) -> AwaitSuccess:
    return AwaitSuccess(value="done")


async def at_scale(
    url: str, namespace: str, processes: int, size: int, samples: int
) -> dict[str, Any]:
    """Register ``processes`` rerunnable processes, each leased by a live holder;
    then time ``samples`` appends to random ones, and three sweeps:

    - a drive's pass with no lease lapsed (``sweep_*``: it reads only due rows);
    - lash's full sweep (``full_sweep_*``: every row examined and left to its
      holder);
    - a drive's pass after 1% of the leases lapsed (``lapsed_1pct``: those rows
      are claimed and run)."""
    ns = f"{namespace}-s{processes}"
    async with ls.connect(url, namespace=ns) as bus:
        try:
            await drop_namespace(bus)
            pids = [f"p{i:07d}" for i in range(processes)]
            # Our pools queue callers beyond their bound (a client of someone
            # else's, e.g. fakeredis or a bare redis-py one, may refuse them).
            queued = isinstance(bus.redis, BoundedCluster) or isinstance(
                getattr(bus.redis, "connection_pool", None), BoundedPool
            )
            concurrency = REGISTER_AT_ONCE if queued else UNTIMED
            before = await _used_memory(bus)
            start = time.perf_counter()
            await register_many(
                bus, pids, chunk=concurrency, disposition=RecoveryDisposition.RERUNNABLE
            )
            registered_s = time.perf_counter() - start
            holder = LeaseOwnerIdentity.opaque("holder", uuid.uuid4().hex)
            leases: dict[str, ProcessLease] = {}
            # Untimed set-up, at most UNTIMED calls at once: a cluster client's
            # per-node pool refuses (MaxConnectionsError) beyond its 100.
            for offset in range(0, processes, UNTIMED):
                outcomes = await asyncio.gather(
                    *(
                        bus.claim_process_lease(p, holder, 3_600_000)
                        for p in pids[offset : offset + UNTIMED]
                    )
                )
                for pid, outcome in zip(pids[offset : offset + UNTIMED], outcomes, strict=True):
                    assert isinstance(outcome, LeaseAcquired)
                    leases[pid] = outcome.lease
            memory = (await _used_memory(bus) - before) / processes
            request = ProcessEventAppendRequest(event_type="progress", payload=payload(size))
            latency = Latency()
            rng = random.Random(processes)
            for _ in range(samples):
                t = time.perf_counter()
                await bus.append_event(rng.choice(pids), request)
                latency.record_since(t)
            sweeper = bus.recovery(
                LeaseOwnerIdentity.opaque("sweeper", uuid.uuid4().hex),
                runner=_done,
                max_runs=processes,
            )
            report, sweep_s, commands = await _measured(bus, sweeper.sweep_due)
            _check(report, "the drive's pass", 0, 0, "skipped")
            report, full_s, full_commands = await _measured(bus, sweeper.sweep_once)
            _check(report, "the full sweep", processes, processes, "skipped")
            lapsing = rng.sample(pids, max(1, processes // 100))
            stalled = LeaseOwnerIdentity.opaque("stalled", uuid.uuid4().hex)
            for offset in range(0, len(lapsing), UNTIMED):
                chunk = lapsing[offset : offset + UNTIMED]
                await asyncio.gather(
                    *(
                        bus.complete_process_lease(ProcessLeaseCompletion.from_lease(leases[p]))
                        for p in chunk
                    )
                )
                await asyncio.gather(*(bus.claim_process_lease(p, stalled, 1) for p in chunk))
            await asyncio.sleep(0.01)
            report, lapsed_s, lapsed_commands = await _measured(bus, sweeper.sweep_due)
            _check(report, "the pass after 1% lapsed", len(lapsing), len(lapsing), "ran")
        finally:
            await drop_namespace(bus)
    return {
        "processes": processes,
        "register_per_s": processes / registered_s,
        "register_concurrency": concurrency,
        "append": latency.summary(),
        "sweep_s": sweep_s,
        "sweep_commands": commands,
        "sweep_commands_per_row": commands / processes,
        "full_sweep_s": full_s,
        "full_sweep_commands_per_row": full_commands / processes,
        "lapsed_1pct": {
            "lapsed": len(lapsing),
            "sweep_s": lapsed_s,
            "sweep_commands": lapsed_commands,
            "sweep_commands_per_row": lapsed_commands / processes,
            "commands_per_lapsed_row": lapsed_commands / len(lapsing),
        },
        "bytes_per_process": memory,
    }
