"""Append throughput with full semantics, against raw XADD in the same run.

    python -m bench.append [--url redis://...] [--events 5000] [--processes 100]

Without --url it starts the embedded server. Figures are events/s and ratios
against raw redis-py XADD (pipelined and not) measured on the same server in
the same run; the server version and machine are printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
import uuid
from typing import Any

import msgspec
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
    RuntimeReplay,
)

PAYLOAD = {"line": "x" * 64, "n": 1}
BATCH = 100


def progress_type() -> ProcessEventType:
    return ProcessEventType(
        name="progress",
        payload_schema=LashSchema(
            schema={
                "type": "object",
                "properties": {"line": {"type": "string"}, "n": {"type": "integer"}},
                "required": ["line"],
            }
        ),
        semantics=ProcessEventSemanticsSpec(),
    )


async def raw_xadd(client: Redis, n: int, *, pipelined: bool) -> float:
    stream = f"bench-raw:{uuid.uuid4().hex}"
    body = json.dumps(PAYLOAD)
    start = time.perf_counter()
    if pipelined:
        for offset in range(0, n, BATCH):
            pipe = client.pipeline(transaction=False)
            for _ in range(min(BATCH, n - offset)):
                pipe.xadd(stream, {"e": body})
            await pipe.execute()
    else:
        for _ in range(n):
            await client.xadd(stream, {"e": body})
    elapsed = time.perf_counter() - start
    await client.delete(stream)
    return n / elapsed


async def bus_appends(bus: ls.Bus, n: int, processes: int, *, batched: bool, keyed: bool) -> float:
    run = uuid.uuid4().hex[:8]
    pids = [f"bench-{run}-{i}" for i in range(processes)]
    for pid in pids:
        registration = ProcessRegistration.external(pid)
        await bus.register_process(
            msgspec.structs.replace(registration, event_types=[progress_type()])
        )

    def request(i: int) -> ProcessEventAppendRequest:
        return ProcessEventAppendRequest(
            event_type="progress",
            payload=PAYLOAD,
            replay=RuntimeReplay(key=f"k{i}") if keyed else None,
        )

    start = time.perf_counter()
    if batched:
        for offset in range(0, n, BATCH):
            items = [
                (pids[i % processes], request(i)) for i in range(offset, min(n, offset + BATCH))
            ]
            await bus.append_events(items)
    else:
        for i in range(n):
            await bus.append_event(pids[i % processes], request(i))
    return n / (time.perf_counter() - start)


async def server_info(client: Redis) -> dict[str, Any]:
    info = await client.info("server")
    persistence = await client.info("persistence")
    return {
        "redis_version": info.get("redis_version"),
        "valkey_version": info.get("valkey_version"),
        "aof_enabled": persistence.get("aof_enabled"),
    }


async def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=os.environ.get("LASH_STREAMS_URL"))
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=100)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    console = Console()
    async with ls.connect(args.url, namespace=f"bench{uuid.uuid4().hex[:6]}") as bus:
        raw = bus.redis
        info = await server_info(raw)
        n = args.events
        results = {
            "raw XADD": await raw_xadd(raw, n, pipelined=False),
            "raw XADD pipelined": await raw_xadd(raw, n, pipelined=True),
            "append_event": await bus_appends(bus, n, args.processes, batched=False, keyed=False),
            "append_event keyed": await bus_appends(
                bus, n, args.processes, batched=False, keyed=True
            ),
            "append_events (batch 100)": await bus_appends(
                bus, n, args.processes, batched=True, keyed=False
            ),
            "append_events keyed (batch 100)": await bus_appends(
                bus, n, args.processes, batched=True, keyed=True
            ),
        }
    table = Table(title=f"append throughput, {n} events over {args.processes} processes")
    table.add_column("path")
    table.add_column("events/s", justify="right")
    table.add_column("vs raw XADD", justify="right")
    table.add_column("vs raw XADD pipelined", justify="right")
    for name, rate in results.items():
        table.add_row(
            name,
            f"{rate:,.0f}",
            f"{rate / results['raw XADD']:.2f}x",
            f"{rate / results['raw XADD pipelined']:.2f}x",
        )
    console.print(table)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    console.print(f"server: {info}; machine: {machine}")
    return {"results": results, "server": info, "machine": machine, "json_path": args.json_path}


if __name__ == "__main__":
    report = asyncio.run(main())
    if report["json_path"]:
        with open(report.pop("json_path"), "w") as fh:
            json.dump(report, fh, indent=2)
