"""What the bench registers and appends: one event type with a JSON schema
(validated on every append, as in production) and one that wakes a session."""

from __future__ import annotations

import asyncio

import msgspec

import lash_streams as ls
from lash_streams.model import (
    LashSchema,
    ProcessEventSemanticsSpec,
    ProcessEventType,
    ProcessRegistration,
    ProcessWakeSpec,
    RecoveryDisposition,
    SelPointer,
    SessionScope,
)

PROGRESS = ProcessEventType(
    name="progress",
    payload_schema=LashSchema(
        schema={
            "type": "object",
            "properties": {"line": {"type": "string"}, "n": {"type": "integer"}},
            "required": ["line"],
            "additionalProperties": False,
        }
    ),
    semantics=ProcessEventSemanticsSpec(),
)
PING = ProcessEventType(
    name="ping",
    payload_schema=LashSchema(schema={}),
    semantics=ProcessEventSemanticsSpec(wake=ProcessWakeSpec(input=SelPointer("/n"))),
)


def registration(
    pid: str,
    *,
    disposition: RecoveryDisposition = RecoveryDisposition.EXTERNALLY_OWNED,
    wake_target: SessionScope | None = None,
) -> ProcessRegistration:
    return msgspec.structs.replace(
        ProcessRegistration.external(pid, disposition=disposition),
        event_types=[PROGRESS, PING],
        wake_target=wake_target,
    )


async def register_many(
    bus: ls.Bus,
    pids: list[str],
    *,
    chunk: int = 500,
    disposition: RecoveryDisposition = RecoveryDisposition.EXTERNALLY_OWNED,
) -> None:
    for offset in range(0, len(pids), chunk):
        part = pids[offset : offset + chunk]
        await asyncio.gather(
            *(bus.register_process(registration(p, disposition=disposition)) for p in part)
        )


async def drop_namespace(bus: ls.Bus) -> None:
    """Remove every key of the bus's namespace (the bench's, never a user's)."""
    pattern = f"{bus.keys.namespace}:*"
    batch: list[bytes] = []
    async for key in bus.redis.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            await bus.redis.unlink(*batch)
            batch = []
    if batch:
        await bus.redis.unlink(*batch)
