"""Faults injected during a soak run, one class per kind.

A fault is prepared before the workload starts (it may rewrite
``FaultContext.workload_url``, which is what the workload processes connect
to: the hook a proxy fault uses), runs its schedule until the run's load
stops, and is cleaned up before the checker reads the bus (a killed process
restarted, a paused server resumed, a proxy removed).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import random
import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import lash_streams as ls
from lash_streams.soak.fleet import Fleet


@dataclass
class FaultContext:
    bus: ls.Bus  # the run's own connection (never routed through a fault)
    url: str  # the server's URL
    rng: random.Random
    every_s: float
    #: What the workload connects to; a fault's prepare() may rewrite it.
    workload_url: str = ""
    fleet: Fleet | None = None
    #: (seconds since the start, fault, what) for the report.
    log: list[tuple[float, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def record(self, fault: str, what: str) -> None:
        self.log.append((round(time.monotonic() - self.started, 2), fault, what))

    async def sleep(self, seconds: float, stop: asyncio.Event) -> bool:
        """Sleep unless ``stop`` is set first; False once it is."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        return not stop.is_set()


class Fault(Protocol):
    name: str

    async def prepare(self, ctx: FaultContext) -> None: ...

    async def run(self, ctx: FaultContext, stop: asyncio.Event) -> None: ...

    async def cleanup(self, ctx: FaultContext) -> None: ...

    async def close(self) -> None:
        """After the workload stopped (a proxy must outlive it)."""
        ...


class KillFault:
    """SIGKILL a random workload process, restart it after a pause; the new
    incarnation goes on with new values, the killed one's op in flight is
    unknown. The sweeper is a target too."""

    name = "kill"

    async def prepare(self, ctx: FaultContext) -> None:
        return None

    async def run(self, ctx: FaultContext, stop: asyncio.Event) -> None:
        fleet = ctx.fleet
        assert fleet is not None
        while await ctx.sleep(ctx.rng.uniform(0.5, 1.5) * ctx.every_s, stop):
            name = ctx.rng.choice(sorted(fleet.members))
            fleet.kill(name)
            ctx.record(self.name, f"SIGKILL {name}#{fleet.members[name].inc}")
            await fleet.wait(name, 5.0)
            await asyncio.sleep(ctx.rng.uniform(0.2, 1.5))
            member = await fleet.start(name)
            ctx.record(self.name, f"restarted {name}#{member.inc}")

    async def cleanup(self, ctx: FaultContext) -> None:
        return None

    async def close(self) -> None:
        return None


class PauseFault:
    """``CLIENT PAUSE <ms> WRITE``: the server holds every write for a while,
    so clients time out on commands it runs later. Skipped, with a note, when
    the user may not run it (or on a cluster, where it would pause one node)."""

    name = "pause"

    def __init__(self, pause_ms: int = 1_200) -> None:
        self.pause_ms = pause_ms
        self.usable = False

    async def prepare(self, ctx: FaultContext) -> None:
        if ctx.bus.cluster:
            ctx.notes.append("pause: skipped on a cluster (CLIENT PAUSE is per node)")
            return
        try:
            await ctx.bus.redis.execute_command("CLIENT", "PAUSE", 1, "WRITE")
        except Exception as err:
            ctx.notes.append(f"pause: skipped, the server refused CLIENT PAUSE ({err})")
            return
        self.usable = True

    async def run(self, ctx: FaultContext, stop: asyncio.Event) -> None:
        if not self.usable:
            return
        while await ctx.sleep(ctx.rng.uniform(0.5, 1.5) * ctx.every_s, stop):
            ms = ctx.rng.randint(self.pause_ms // 2, self.pause_ms)
            await ctx.bus.redis.execute_command("CLIENT", "PAUSE", ms, "WRITE")
            ctx.record(self.name, f"CLIENT PAUSE {ms} WRITE")

    async def cleanup(self, ctx: FaultContext) -> None:
        if self.usable:
            with contextlib.suppress(Exception):
                await ctx.bus.redis.execute_command("CLIENT", "UNPAUSE")

    async def close(self) -> None:
        return None


class ProxyFault:
    """Routes the workload through ``lash_streams.faults.proxy.FaultProxy``
    (cut and stalled connections). The proxy ships separately; without it
    this fault is skipped with a note."""

    name = "proxy"
    module = "lash_streams.faults.proxy"

    def __init__(self, stall_s: float = 1.0) -> None:
        self.stall_s = stall_s
        self.proxy: Any = None

    async def prepare(self, ctx: FaultContext) -> None:
        # A cluster's or Sentinel's clients find their nodes themselves (they
        # would go round the proxy); a Unix socket has no TCP port.
        if ctx.bus.cluster or ctx.url.startswith("unix://") or "+sentinel://" in ctx.url:
            ctx.notes.append("proxy: skipped (a single TCP server only)")
            return
        try:
            # Imported by name: the proxy lives in another package of the project.
            proxy_type = importlib.import_module(self.module).FaultProxy
        except (ImportError, AttributeError):
            ctx.notes.append(f"proxy: skipped, {self.module} is not in this build")
            return
        parts = urlsplit(ctx.url)
        self.proxy = proxy_type(parts.hostname or "127.0.0.1", parts.port or 6379)
        await self.proxy.start()
        ctx.workload_url = self.proxy.url(ctx.workload_url)

    async def run(self, ctx: FaultContext, stop: asyncio.Event) -> None:
        if self.proxy is None:
            return
        while await ctx.sleep(ctx.rng.uniform(0.5, 1.5) * ctx.every_s, stop):
            if ctx.rng.random() < 0.5:
                self.proxy.cut()
                ctx.record(self.name, "cut every connection")
            else:
                self.proxy.stall(True)
                ctx.record(self.name, f"stall {self.stall_s} s")
                await asyncio.sleep(self.stall_s)
                self.proxy.stall(False)

    async def cleanup(self, ctx: FaultContext) -> None:
        if self.proxy is not None:
            self.proxy.stall(False)

    async def close(self) -> None:
        proxy, self.proxy = self.proxy, None
        if proxy is not None:
            await proxy.stop()


def make_faults(names: tuple[str, ...]) -> list[Fault]:
    kinds: dict[str, type[Any]] = {"kill": KillFault, "pause": PauseFault, "proxy": ProxyFault}
    return [kinds[name]() for name in names]
