"""One benchmark run: every phase in order on one server, a cluster or a
Sentinel-managed primary, with a progress bar."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

import lash_streams as ls
from lash_streams import observability as obs
from lash_streams.bench import baselines, cpu, dispatch, fleet, growth, ours
from lash_streams.bench.config import BenchConfig
from lash_streams.bench.env import machine_facts
from lash_streams.bench.measure import Latency, Rate
from lash_streams.bench.topology import Topology
from lash_streams.bench.workload import drop_namespace
from lash_streams.server import LocalServer

Step = tuple[str, Callable[[], Awaitable[None]]]


def _latency(latency: Latency, rate: Rate) -> dict[str, Any]:
    return {**latency.summary(), "per_s": rate.per_s, "curve": latency.curve()}


def _rate(rate: Rate) -> dict[str, Any]:
    return {**rate.as_dict(), "series": rate.series}


async def run(config: BenchConfig, console: Console) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        url = config.url
        if url is None:
            # The same persistence we tell users to run with (AOF everysec).
            server = await stack.enter_async_context(LocalServer(persistence="aof"))
            url = server.url
        topology = Topology(url)
        stack.push_async_callback(topology.aclose)
        bus = await stack.enter_async_context(ls.connect(url, namespace=config.namespace))
        return await _phases(bus, topology, config, console)
    raise AssertionError("unreachable")  # pragma: no cover


async def _phases(
    bus: ls.Bus, topology: Topology, cfg: BenchConfig, console: Console
) -> dict[str, Any]:
    client, ns, size, d = bus.redis, cfg.namespace, cfg.payload_bytes, cfg.duration_s
    # Child processes take the same URL: they connect as the bus does.
    url = topology.url
    out: dict[str, Any] = {
        "meta": {
            **(await topology.meta(client)),
            **machine_facts(),
            "config": {
                "processes": cfg.processes,
                "producers": cfg.producers,
                "consumers": cfg.consumers,
                "payload_bytes": size,
                "duration_s": d,
                "samples": cfg.samples,
                "scale": list(cfg.scale),
                "sections": list(cfg.sections),
            },
            "server_time_ms": await bus.server_time_ms(),
            # Our paths pay for these when they are on (docs/observability.md).
            "metrics": obs.metrics_enabled(),
            "tracing": obs.tracing_enabled(),
        }
    }
    b: dict[str, Any] = out.setdefault("baselines", {})
    a: dict[str, Any] = out.setdefault("appends", {})
    w: dict[str, Any] = out.setdefault("wakes", {})
    j: dict[str, Any] = out.setdefault("dispatch", {})

    fresh = topology.fresh

    async def raw_xadd() -> None:
        async with fresh() as raw:
            b["raw_xadd"] = _rate(await baselines.raw_xadd(raw, ns, size, d, pipelined=False))
            b["raw_xadd_pipelined"] = _rate(
                await baselines.raw_xadd(raw, ns, size, d, pipelined=True)
            )
        # The same commands through our client (lash_streams.pool): what our
        # transport alone is worth, kept apart from the raw redis-py figures.
        b["raw_xadd_our_pool"] = _rate(
            await baselines.raw_xadd(client, ns, size, d, pipelined=False)
        )
        b["raw_xadd_pipelined_our_pool"] = _rate(
            await baselines.raw_xadd(client, ns, size, d, pipelined=True)
        )

    async def raw_round_trip() -> None:
        async with fresh() as raw, fresh() as blocking:
            latency, rate = await baselines.raw_round_trip(raw, blocking, ns, size, cfg.samples)
        b["raw_round_trip"] = _latency(latency, rate)

    async def raw_group() -> None:
        rate = await baselines.raw_group_drain(client, fresh, ns, size, d, cfg.consumers)
        b["raw_group_drain"] = _rate(rate)

    async def faststream() -> None:
        locate = None if topology.kind == "single" else topology.faststream_target
        fs = await baselines.faststream(url, ns, size, cfg.samples, d, locate=locate)
        b["faststream"] = {
            # Beyond one server: the one node FastStream's stream lives on.
            "node": fs["node"],
            "round_trip": _latency(fs["latency"], fs["round_trips"]),
            "publish": _rate(fs["publish"]),
            "drained": _rate(fs["drained"]),
        }

    async def appends() -> None:
        p = cfg.processes
        a["append_event"] = _rate(await ours.appends(bus, p, size, d, batched=False))
        a["append_event_keyed"] = _rate(
            await ours.appends(bus, p, size, d, batched=False, keyed=True)
        )
        a["append_events"] = _rate(await ours.appends(bus, p, size, d, batched=True))
        a["append_event_contended"] = _rate(await ours.contended(bus, size, d, tasks=16))

    async def wake_latency() -> None:
        latency, rate = await ours.wake_latency(bus, size, cfg.samples)
        w["latency"] = _latency(latency, rate)

    async def wake_drain() -> None:
        result = await ours.wake_drain(bus, size, d, cfg.consumers)
        w["drain"] = _rate(result["drained"])
        w["appended"] = _rate(result["appended"])

    async def start_latency() -> None:
        latency, rate = await dispatch.start_latency(bus, size, cfg.samples)
        j["start_latency"] = _latency(latency, rate)

    async def jobs() -> None:
        j["jobs"] = _rate(await dispatch.drain(bus, size, max(1_000, cfg.samples * 2)))

    async def producers() -> None:
        rows = out.setdefault("producers", {"ours": [], "raw": []})
        for count in cfg.producer_counts():
            for mode in ("ours", "raw"):
                rows[mode].append(
                    await fleet.producers(url, ns, mode, count, cfg.processes, size, d)
                )

    async def memory() -> None:
        events = max(1_000, cfg.samples * 2)
        out["memory"] = await growth.memory_per_event(url, ns, size, events)

    async def recovery() -> None:
        out["recovery"] = [
            await fleet.recovery_after_kill(url, ns, cfg.lease_ttl_ms, evidence=True),
            await fleet.recovery_after_kill(url, ns, cfg.lease_ttl_ms, evidence=False),
        ]

    async def scale() -> None:
        rows = out.setdefault("scale", [])
        for n in cfg.scale:
            rows.append(await growth.at_scale(url, ns, n, size, min(cfg.samples, 2_000)))

    async def cpu_per_item() -> None:
        async with fresh() as raw:
            items = max(1_000, cfg.samples * 3)
            single = topology.kind != "cluster"
            out["cpu"] = await cpu.per_item(bus, raw, ns, size, items, server=single)

    plan: dict[str, list[Step]] = {
        "baselines": [
            ("raw XADD", raw_xadd),
            ("raw XADD -> XREADGROUP", raw_round_trip),
            ("raw consumer group drain", raw_group),
            ("FastStream", faststream),
        ],
        "appends": [("append_event / append_events", appends)],
        "wakes": [("append -> wake latency", wake_latency), ("wake drain", wake_drain)],
        "dispatch": [("register -> job start", start_latency), ("jobs started/s", jobs)],
        "producers": [("1..N producer processes", producers)],
        "memory": [("memory per event", memory)],
        "recovery": [("recovery after SIGKILL", recovery)],
        "scale": [("1k..100k processes", scale)],
        "cpu": [("CPU per item", cpu_per_item)],
    }
    steps = [step for section in cfg.sections for step in plan[section]]
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("bench", total=len(steps))
        try:
            for label, step in steps:
                progress.update(task, description=label)
                try:
                    await step()
                except Exception as err:  # one failed phase must not lose the others
                    out.setdefault("errors", []).append(f"{label}: {type(err).__name__}: {err}")
                progress.advance(task)
            progress.update(task, description="done")
        finally:
            await drop_namespace(bus)
    out["meta"]["wall_s"] = time.perf_counter() - started
    return out
