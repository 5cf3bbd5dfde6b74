"""Recovery figures.

1. Time from SIGKILL of a worker mid-run to (a) its started owner-bound row
   being ``abandoned`` and (b) its rerunnable row being re-claimed, against the
   configured lease TTL and sweep interval, with and without a restarted
   incarnation of the killed worker (fleet death evidence).
2. The sweeper's Redis cost: commands per ``sweep_once`` as the number of
   running processes grows (every row leased by a live opaque holder, so each
   is examined and left alone), from ``INFO commandstats`` on a private server.

    python -m bench.recovery [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import sys
import time
import uuid
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

import lash_streams as ls
from lash_streams.model import (
    LashSchema,
    LeaseOwnerIdentity,
    ProcessEventSemanticsSpec,
    ProcessEventType,
    ProcessRegistration,
    RecoveryDisposition,
    StatusAbandoned,
)
from lash_streams.server import LocalServer

TYPES = [
    ProcessEventType(
        name="run.started",
        payload_schema=LashSchema(schema={}),
        semantics=ProcessEventSemanticsSpec(),
    )
]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def registration(pid: str, disposition: RecoveryDisposition) -> ProcessRegistration:
    return msgspec.structs.replace(
        ProcessRegistration.external(pid, disposition=disposition), event_types=TYPES
    )


async def worker(url: str, ns: str, owner: str, ttl: int, renew: int, every: float) -> Any:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench._worker", url, ns, owner, uuid.uuid4().hex[:8],
        str(ttl), str(renew), str(every), stdout=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    await asyncio.wait_for(proc.stdout.readline(), 30)
    return proc


async def starters(bus: ls.Bus, pid: str) -> list[str]:
    return [
        e.payload["by"] for e in await bus.events_after(pid, 0) if e.event_type == "run.started"
    ]


async def kill_to_recovery(url: str, ttl: int, every: float, restart: bool) -> dict[str, float]:
    ns = f"rb{uuid.uuid4().hex[:6]}"
    async with ls.connect(url, namespace=ns) as bus:
        await bus.register_process(registration("ob", RecoveryDisposition.OWNER_BOUND))
        await bus.register_process(registration("rr", RecoveryDisposition.RERUNNABLE))
        victim = await worker(url, ns, "w1", ttl, ttl // 3, every)
        while not (await starters(bus, "ob") and await starters(bus, "rr")):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        victim.send_signal(signal.SIGKILL)
        await victim.wait()
        t0 = time.perf_counter()
        others = [await worker(url, ns, "w1" if restart else "w2", ttl, ttl // 3, every)]
        result: dict[str, float] = {}
        deadline = t0 + max(10.0, ttl / 1000 * 4)
        while time.perf_counter() < deadline and len(result) < 2:
            if "rerun" not in result and len(await starters(bus, "rr")) > 1:
                result["rerun"] = (time.perf_counter() - t0) * 1000
            record = await bus.get_process("ob")
            if "abandoned" not in result and isinstance(record.status, StatusAbandoned):
                result["abandoned"] = (time.perf_counter() - t0) * 1000
            await asyncio.sleep(0.005)
        for proc in others:
            proc.kill()
            await proc.wait()
        return result


async def sweep_cost(size: int) -> dict[str, float]:
    server = LocalServer(persistence="none").start()
    try:
        async with ls.connect(server.url, namespace="cost") as bus:
            holder = LeaseOwnerIdentity.opaque("holder", "h1")
            batch = 500
            for offset in range(0, size, batch):
                ids = [f"p{i:07d}" for i in range(offset, min(size, offset + batch))]
                await asyncio.gather(
                    *(
                        bus.register_process(registration(p, RecoveryDisposition.RERUNNABLE))
                        for p in ids
                    )
                )
                await asyncio.gather(*(bus.claim_process_lease(p, holder, 3_600_000) for p in ids))
            sweeper = bus.recovery(LeaseOwnerIdentity.opaque("sweeper", "s1"))
            before = await _calls(bus)
            start = time.perf_counter()
            report = await sweeper.sweep_once()
            elapsed = time.perf_counter() - start
            after = await _calls(bus)
            assert report.examined == size and len(report.skipped) == size
            commands = after - before - 1  # minus our own INFO
            return {"commands": commands, "per_row": commands / size, "seconds": elapsed}
    finally:
        server.stop()


async def _calls(bus: ls.Bus) -> int:
    stats = await bus.redis.info("commandstats")
    return sum(int(v["calls"]) for v in stats.values())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--ttl-ms", type=int, default=3000)
    parser.add_argument("--sweep-every", type=float, default=0.5)
    args = parser.parse_args()
    console = Console()
    server = LocalServer(persistence="none").start()
    try:
        with_restart = await kill_to_recovery(server.url, args.ttl_ms, args.sweep_every, True)
        without = await kill_to_recovery(server.url, args.ttl_ms, args.sweep_every, False)
    finally:
        server.stop()
    every_ms = args.sweep_every * 1000
    table = Table(
        title=f"SIGKILL -> recovery (lease TTL {args.ttl_ms} ms, sweep every {every_ms:.0f} ms)"
    )
    for column in ("case", "rerunnable re-claimed (ms)", "owner-bound abandoned (ms)"):
        table.add_column(column)
    for name, r in (
        ("killed worker restarted (new incarnation)", with_restart),
        ("no restart", without),
    ):
        table.add_row(
            name,
            f"{r['rerun']:.0f}" if "rerun" in r else "-",
            f"{r['abandoned']:.0f}" if "abandoned" in r else "never (no death evidence; by design)",
        )
    console.print(table)
    cost = Table(title="sweeper cost per sweep_once (rows leased by a live holder)")
    for column in ("running processes", "Redis commands", "commands/row", "seconds"):
        cost.add_column(column, justify="right")
    for size in (int(s) for s in args.sizes.split(",")):
        c = await sweep_cost(size)
        cost.add_row(
            f"{size:,}", f"{c['commands']:,.0f}", f"{c['per_row']:.2f}", f"{c['seconds']:.2f}"
        )
        console.print(cost)
    console.print(f"machine: {platform.machine()}, {os.cpu_count()} cores; embedded Valkey")


if __name__ == "__main__":
    asyncio.run(main())
