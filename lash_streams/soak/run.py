"""A soak run: a private namespace, the workload's OS processes, faults on a
schedule, a drain, then the checker over the histories and the bus."""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

import lash_streams as ls
from lash_streams.model import ProcessRecord, RecoveryDisposition
from lash_streams.server import LocalServer
from lash_streams.soak.checker import OKAY, VIOLATED, RunFacts, Verdict, check
from lash_streams.soak.config import SoakConfig
from lash_streams.soak.faults import FaultContext, make_faults
from lash_streams.soak.fleet import Fleet
from lash_streams.soak.history import OK, Entry, ops_of, read_folder
from lash_streams.soak.observe import Observed, ServerFacts, observe, server_facts
from lash_streams.soak.role import Spec

Say = Callable[[str], None]


@dataclass
class SoakOutcome:
    verdicts: list[Verdict]
    facts: ServerFacts
    run: dict[str, Any]
    fault_log: list[tuple[float, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(v.status != VIOLATED for v in self.verdicts)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "server": msgspec.to_builtins(self.facts),
            "run": self.run,
            "verdicts": {
                v.name: {
                    "status": v.status,
                    "counts": v.counts,
                    "examples": v.examples,
                    "meaning": v.meaning,
                }
                for v in self.verdicts
            },
            "faults": [{"at_s": at, "fault": f, "what": w} for at, f, w in self.fault_log],
            "notes": self.notes,
        }


async def run_soak(url: str | None, config: SoakConfig, say: Say = lambda _: None) -> SoakOutcome:
    """Run the workload against ``url`` (a private embedded server when None)
    in a fresh namespace, deleted afterwards; return the verdicts."""
    async with contextlib.AsyncExitStack() as stack:
        if url is None:
            # AOF everysec: the embedded server is configured as we advise users to.
            server = await stack.enter_async_context(LocalServer(persistence="aof"))
            url = server.url
        namespace = f"soak-{config.seed}-{uuid.uuid4().hex[:6]}"
        bus = await stack.enter_async_context(ls.connect(url, namespace=namespace))
        stack.push_async_callback(drop_namespace, bus)
        folder = Path(tempfile.mkdtemp(prefix="lash-soak-"))
        try:
            return await _run(bus, url, namespace, folder, config, say)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    raise AssertionError("unreachable")  # pragma: no cover - the stack returns above


async def _run(
    bus: ls.Bus, url: str, namespace: str, folder: Path, config: SoakConfig, say: Say
) -> SoakOutcome:
    before = await server_facts(bus)
    members = config.members()
    ctx = FaultContext(bus, url, random.Random(config.seed), config.fault_every_s, url)
    faults = make_faults(config.faults)
    for fault in faults:
        await fault.prepare(ctx)
    appenders = [n for n, role in members if role == "appender"]
    spec = Spec(config.seed, str(folder), appenders, config.lease_ttl_ms, config.renew_every_ms)
    fleet = ctx.fleet = Fleet(
        ctx.workload_url, namespace, msgspec.json.encode(spec).decode(), folder
    )
    started = time.monotonic()
    schedules: list[asyncio.Task[None]] = []
    try:
        chosen = ",".join(config.faults) or "none"
        say(f"namespace {namespace}: {len(members)} processes, faults: {chosen}")
        for name, role in members:
            await fleet.start(name, role)
        stop = asyncio.Event()
        schedules += [asyncio.create_task(f.run(ctx, stop)) for f in faults]
        await asyncio.sleep(config.duration_s)
        stop.set()
        for fault, result in zip(
            faults, await asyncio.gather(*schedules, return_exceptions=True), strict=True
        ):
            if isinstance(result, BaseException):
                ctx.notes.append(
                    f"{fault.name}: its schedule failed: {type(result).__name__}: {result}"
                )
        for fault in faults:
            await fault.cleanup(ctx)
        crashed = fleet.crashed()
        for name, member in fleet.members.items():
            if not member.alive:  # a crash of its own: restart it so the drain can finish
                await fleet.start(name)
        say(f"load stopped after {time.monotonic() - started:.0f} s; draining jobs and wakes")
        producers = [n for n, role in members if role in ("appender", "leaser")]
        forced = await fleet.stop(producers)
        drained = await drain(bus, folder, config.drain_timeout_s)
        forced += await fleet.stop([n for n, _ in members if n not in producers])
        crashed += [c for c in fleet.crashed() if c not in crashed]  # failed while stopping
        for fault in faults:
            await fault.close()
        observed = await observe(bus)
        after = await server_facts(bus)
    finally:
        # Interrupted (Ctrl-C) or failed: nothing may restart a process or
        # keep the server paused once the namespace is being deleted.
        for task in schedules:
            task.cancel()
        await asyncio.gather(*schedules, return_exceptions=True)
        await fleet.stop_all()
        for fault in faults:
            with contextlib.suppress(Exception):
                await fault.cleanup(ctx)
                await fault.close()
    entries = read_folder(folder)
    restarted = before.run_ids != after.run_ids and bool(before.run_ids)
    loss_allowed = after.durability_tier != "durable" and restarted
    facts = RunFacts(
        loss_allowed=loss_allowed,
        tier_note="server restarted without fsync on every write" if loss_allowed else "",
        killed=fleet.killed(),  # a forced stop is a SIGKILL, listed there too
    )
    verdicts = check(entries, observed, facts)
    verdicts.append(workload_verdict(crashed, fleet))
    notes = list(ctx.notes)
    if not drained:
        notes.append(f"the drain did not finish within {config.drain_timeout_s:.0f} s")
    if forced:
        notes.append(f"SIGKILLed at the end (did not stop on SIGTERM): {', '.join(forced)}")
    if restarted:
        notes.append("the server restarted (or failed over) during the run")
    ok = all(v.status != VIOLATED for v in verdicts)
    if ok:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        notes.append(f"histories kept in {folder}")
    return SoakOutcome(
        verdicts, after, run_summary(config, namespace, entries, observed, started), ctx.log, notes
    )


def workload_verdict(crashed: list[str], fleet: Fleet) -> Verdict:
    examples = [f"{c}: {fleet.errors_of(c.split()[0], 3)}" for c in crashed]
    return Verdict(
        "workload_ran",
        VIOLATED if crashed else OKAY,
        {"processes": len(fleet.members), "kills": len(fleet.kills), "crashed": len(crashed)},
        examples[:5],
        "no workload process died by itself (every server fault was absorbed or typed)",
    )


def run_summary(
    config: SoakConfig, namespace: str, entries: list[Entry], observed: Observed, started: float
) -> dict[str, Any]:
    ops = ops_of(entries)
    by_op: dict[str, int] = {}
    for op in ops:
        by_op[op.entry.op] = by_op.get(op.entry.op, 0) + 1
    return {
        "namespace": namespace,
        "seed": config.seed,
        "duration_s": config.duration_s,
        "wall_s": round(time.monotonic() - started, 1),
        "faults": list(config.faults),
        "processes": config.processes,
        "ops": dict(sorted(by_op.items())),
        "acknowledged_ops": sum(1 for op in ops if op.outcome == OK),
        "bus_processes": len(observed.statuses),
        "bus_events": sum(len(e) for e in observed.events.values()),
    }


async def drain(bus: ls.Bus, folder: Path, timeout_s: float) -> bool:
    """Wait until no job is running and every wake-bearing event in the log
    was handled by a consumer (or the timeout). The whole log is read only
    once the jobs are done: on a long run it is large."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = [r for r in await bus.list_processes() if r.id.startswith("job.")]
        if [r for r in running if not await parked(bus, r)]:
            await asyncio.sleep(1.0)
            continue
        observed = await observe(bus)
        bearing = {(p, e.seq) for p, events in observed.events.items() for e in events if e.wake}
        handled = {
            (o.entry.pid, o.entry.seq)
            for o in ops_of(read_folder(folder, "c*.jsonl"))
            if o.entry.op == "wake"
        }
        if bearing <= handled:
            return True
        await asyncio.sleep(1.0)
    return False


async def parked(bus: ls.Bus, record: ProcessRecord) -> bool:
    """A started owner-bound job nobody holds: its worker lost the lease (a
    stall longer than the TTL) and only that worker may end it, which it does
    when it stops (``Worker.shutdown`` abandons it). Waiting changes nothing."""
    if record.disposition != RecoveryDisposition.OWNER_BOUND or record.first_started is None:
        return False
    lease = await bus.get_process_lease(record.id)
    return lease is None or lease.expires_at_epoch_ms <= await bus.server_time_ms()


async def drop_namespace(bus: ls.Bus) -> None:
    """Delete every key of the run's namespace (the soak's own, never a user's)."""
    pattern = f"{bus.keys.namespace}:*"
    for client in bus.primary_clients():
        with contextlib.suppress(Exception):
            async for key in client.scan_iter(match=pattern, count=1000):
                await bus.redis.delete(key)
