"""What the checker reads from the bus after a run: every process of the
namespace, its status and its events (values, wakes, terminals), and the
server facts that decide what a loss means (durability, restarts, replicas)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

import lash_streams as ls
from lash_streams.model import (
    AwaitAbandoned,
    ProcessEvent,
    ProcessListFilter,
    ProcessStatusFilter,
)
from lash_streams.model.process import status_label


class StoredEvent(msgspec.Struct, frozen=True):
    pid: str
    seq: int
    type: str
    value: str | None = None
    wake: bool = False
    #: The terminal state (completed, failed, cancelled, abandoned), if terminal.
    terminal: str | None = None
    #: For an abandonment: the owner its evidence names, if any.
    owner: str | None = None


class Observed(msgspec.Struct):
    """Per process id: its status and its events in stream order."""

    statuses: dict[str, str] = msgspec.field(default_factory=dict)
    events: dict[str, list[StoredEvent]] = msgspec.field(default_factory=dict)


class ServerFacts(msgspec.Struct):
    server: str = "unknown"
    cluster: bool = False
    #: "single", "cluster" or "sentinel" (a primary found through sentinels).
    topology: str = "single"
    #: What an acknowledged write survives here (``bus.durability()``).
    server_crash: str = "unknown"
    failover: str = "unknown"
    appendonly: str | None = None
    appendfsync: str | None = None
    durability_tier: str = "inline"
    replicas: int = 0
    run_ids: list[str] = msgspec.field(default_factory=list)


def stored_event(event: ProcessEvent) -> StoredEvent:
    payload = event.payload
    value = payload.get("v") if isinstance(payload, dict) else None
    terminal = event.semantics.terminal
    owner = None
    if terminal is not None and isinstance(terminal.await_output, AwaitAbandoned):
        who = terminal.await_output.evidence.owner
        owner = who.owner_id if who is not None else None
    return StoredEvent(
        pid=event.process_id,
        seq=event.sequence,
        type=event.event_type,
        value=value if isinstance(value, str) else None,
        wake=event.semantics.wake is not None,
        terminal=terminal.state.value if terminal is not None else None,
        owner=owner,
    )


async def observe(bus: ls.Bus, chunk: int = 64) -> Observed:
    records = await bus.list_processes(ProcessListFilter(status=ProcessStatusFilter.ANY))
    out = Observed(statuses={r.id: status_label(r.status) for r in records})
    ids = sorted(out.statuses)

    async def events_of(pid: str) -> list[StoredEvent]:
        try:
            return [stored_event(e) for e in await bus.events_after(pid, 0)]
        except ls.errors.UnknownProcess:  # pruned between the two reads
            return []

    for offset in range(0, len(ids), chunk):
        part = ids[offset : offset + chunk]
        found = await asyncio.gather(*(events_of(p) for p in part))
        for pid, events in zip(part, found, strict=True):
            out.events[pid] = events
    return out


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode()
    return None if value is None else str(value)


async def server_facts(bus: ls.Bus) -> ServerFacts:
    """Best effort: a user without INFO / CONFIG rights gets "unknown"."""
    report = bus.durability()
    facts = ServerFacts(
        cluster=bus.cluster,
        topology="cluster"
        if bus.cluster
        else "sentinel"
        if getattr(bus.redis, "lash_sentinel", None) is not None
        else "single",
        server_crash=report.server_crash,
        failover=report.failover,
        durability_tier=bus.durability_tier().value,
    )
    try:
        info = await bus.redis.info()
    except Exception:
        return facts
    nodes = (
        list(info.values())
        if bus.cluster
        and isinstance(info, dict)
        and all(isinstance(v, dict) for v in info.values())
        else [info]
    )
    first = nodes[0] if nodes else {}
    valkey = first.get("valkey_version")
    facts.server = f"valkey {valkey}" if valkey else f"redis {first.get('redis_version')}"
    facts.replicas = sum(int(n.get("connected_slaves", 0) or 0) for n in nodes)
    facts.run_ids = sorted(str(n.get("run_id")) for n in nodes if n.get("run_id"))
    for name in ("appendonly", "appendfsync"):
        try:
            reply = await bus.redis.config_get(name)
        except Exception:
            continue
        if isinstance(reply, dict) and reply:
            setattr(facts, name, _text(next(iter(reply.values()))))
    return facts
