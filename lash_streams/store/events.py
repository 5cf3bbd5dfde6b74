"""Event reads (RD-1..RD-3, WA-1): the process stream is read with XRANGE
from explicit entry ids (``<seq>-0``), beside an existence check in the same
round trip.

An entry stores what cannot be derived (docs/keys.md): ``t`` the event type,
``p`` the payload JSON, ``o`` the server time in ms, ``k`` the replay key when
given, ``s`` the materialized semantics when not the default. The sequence is
the entry id and the invocation is lash's function of (process, sequence,
type, replay key), so :func:`event_from_fields` rebuilds the exact
``ProcessEvent`` the append returned, byte for byte. Entries written before
this form hold the whole event JSON in ``e`` and are read as they are."""

from __future__ import annotations

from typing import Any

from lash_streams.errors import UnknownProcess
from lash_streams.model import (
    ProcessEvent,
    ProcessEventSemantics,
    SystemTime,
    process_event_invocation,
)
from lash_streams.model._codec import JsonValue, decode
from lash_streams.semantics.inputs import require, require_u64
from lash_streams.store.core import StoreCore
from lash_streams.store.keys import encode_id

_DEFAULT_SEMANTICS = ProcessEventSemantics()


def event_from_entry(process_id: str, entry: Any) -> ProcessEvent:
    """The event of one stream entry ``(id, fields)``."""
    entry_id, fields = entry
    return event_from_fields(process_id, int(entry_id.split(b"-", 1)[0]), fields)


def event_from_fields(process_id: str, sequence: int, fields: dict[bytes, bytes]) -> ProcessEvent:
    whole = fields.get(b"e")
    if whole is not None:
        return decode(whole, ProcessEvent)
    event_type = fields[b"t"].decode("utf-8")
    key = fields.get(b"k")
    replay_key = key.decode("utf-8") if key is not None else None
    stored = fields.get(b"s")
    ms = int(fields[b"o"])
    return ProcessEvent(
        process_id=process_id,
        sequence=sequence,
        event_type=event_type,
        payload=decode(fields[b"p"], JsonValue),
        invocation=process_event_invocation(process_id, sequence, event_type, replay_key),
        semantics=_DEFAULT_SEMANTICS if stored is None else decode(stored, ProcessEventSemantics),
        occurred_at=SystemTime(
            secs_since_epoch=ms // 1000, nanos_since_epoch=(ms % 1000) * 1_000_000
        ),
    )


def fields_of(flat: list[Any]) -> dict[bytes, bytes]:
    """A stream entry's fields from a script's flat ``[k1, v1, k2, v2, ...]``."""
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


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
    return [event_from_entry(process_id, entry) for entry in entries]


class EventReadOps(StoreCore):
    async def events_after(self, process_id: str, after_sequence: int) -> list[ProcessEvent]:
        """RD-1: one XRANGE from the entry after the cursor (ids are ``<seq>-0``)."""
        require_u64(after_sequence, "after_sequence")
        return await read_range(self, process_id, "xrange", f"{after_sequence + 1}-0", "+")

    async def recent_events(self, process_id: str, limit: int) -> list[ProcessEvent]:
        """RD-3: the last ``limit`` events, ascending."""
        require(limit, int, "limit")
        limit = min(limit, 2**63 - 1)  # more than any stream holds
        if limit <= 0:
            await self.require_record(process_id)
            return []
        events = await read_range(self, process_id, "xrevrange", "+", "-", count=limit)
        events.reverse()
        return events

    async def count_events_through(
        self, process_id: str, event_type: str, up_to_sequence: int
    ) -> int:
        """RD-2: one script: a binary search over the type's packed sequences."""
        require(event_type, str, "event_type")
        require_u64(up_to_sequence, "up_to_sequence")
        keys = self.keys.process(process_id)
        upto = min(up_to_sequence, 2**53)
        legacy_upto = f"{min(up_to_sequence, 10**20 - 1):020d}"
        reply = await self.retry.idempotent(
            "count events",
            lambda: self.scripts.count_events(
                keys=[keys.record, keys.type_counts, keys.types],
                args=[encode_id(event_type), upto, legacy_upto],
            ),
        )
        if not int(reply[0]):
            raise UnknownProcess(process_id)
        return int(reply[1])

    async def wake_events_after(self, process_id: str, after_sequence: int) -> list[ProcessEvent]:
        """WA-1: wake events after the cursor whose sequence is not acknowledged."""
        require_u64(after_sequence, "after_sequence")
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
        return [event_from_entry(process_id, e[0]) for e in entries if e]
