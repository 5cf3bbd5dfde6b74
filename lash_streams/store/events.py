"""Event reads (RD-1..RD-3, WA-1): the process stream is read with XRANGE
from explicit entry ids (``<seq>-0``), beside an existence check in the same
round trip."""

from __future__ import annotations

from typing import Any

from lash_streams.errors import UnknownProcess
from lash_streams.model import ProcessEvent
from lash_streams.model._codec import decode
from lash_streams.store.core import StoreCore
from lash_streams.store.keys import encode_id


def event_from_entry(entry: Any) -> ProcessEvent:
    fields = entry[1]
    return decode(fields[b"e"], ProcessEvent)


async def read_range(
    core: StoreCore, process_id: str, command: str, *args: Any, **kwargs: Any
) -> list[ProcessEvent]:
    """``command`` (xrange or xrevrange) over the process stream; raises
    ``UnknownProcess`` when the record is gone."""
    keys = core.keys.process(process_id)

    async def run() -> list[Any]:
        pipe = core.redis.pipeline(transaction=False)
        pipe.exists(keys.record)
        getattr(pipe, command)(keys.events, *args, **kwargs)
        result: list[Any] = await pipe.execute()
        return result

    exists, entries = await core.retry.idempotent(f"read events of `{process_id}`", run)
    if not exists:
        raise UnknownProcess(process_id)
    return [event_from_entry(entry) for entry in entries]


class EventReadOps(StoreCore):
    async def events_after(self, process_id: str, after_sequence: int) -> list[ProcessEvent]:
        """RD-1: one XRANGE from the entry after the cursor (ids are ``<seq>-0``)."""
        return await read_range(self, process_id, "xrange", f"{after_sequence + 1}-0", "+")

    async def recent_events(self, process_id: str, limit: int) -> list[ProcessEvent]:
        """RD-3: the last ``limit`` events, ascending."""
        if limit <= 0:
            await self.require_record(process_id)
            return []
        events = await read_range(self, process_id, "xrevrange", "+", "-", count=limit)
        events.reverse()
        return events

    async def count_events_through(
        self, process_id: str, event_type: str, up_to_sequence: int
    ) -> int:
        """RD-2: one ZLEXCOUNT over the per-type index."""
        keys = self.keys.process(process_id)
        prefix = encode_id(event_type) + "\0"
        upto = min(up_to_sequence, 10**20 - 1)

        async def run() -> list[Any]:
            pipe = self.redis.pipeline(transaction=False)
            pipe.exists(keys.record)
            pipe.zlexcount(keys.types, f"[{prefix}", f"[{prefix}{upto:020d}")
            result: list[Any] = await pipe.execute()
            return result

        exists, count = await self.retry.idempotent("count events", run)
        if not exists:
            raise UnknownProcess(process_id)
        return int(count)

    async def wake_events_after(self, process_id: str, after_sequence: int) -> list[ProcessEvent]:
        """WA-1: wake events after the cursor whose sequence is not acknowledged."""
        keys = self.keys.process(process_id)

        async def run() -> list[Any]:
            pipe = self.redis.pipeline(transaction=False)
            pipe.exists(keys.record)
            pipe.zrangebyscore(keys.wakes, f"({after_sequence}", "+inf")
            pipe.smembers(keys.acks)
            result: list[Any] = await pipe.execute()
            return result

        exists, wake_seqs, acks = await self.retry.idempotent("read wake events", run)
        if not exists:
            raise UnknownProcess(process_id)
        pending = [int(s) for s in wake_seqs if s not in acks]
        if not pending:
            return []

        async def fetch() -> list[Any]:
            pipe = self.redis.pipeline(transaction=False)
            for seq in pending:
                pipe.xrange(keys.events, f"{seq}-0", f"{seq}-0")
            result: list[Any] = await pipe.execute()
            return result

        entries = await self.retry.idempotent("read wake events", fetch)
        return [event_from_entry(e[0]) for e in entries if e]
