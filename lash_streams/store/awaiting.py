"""Awaiting terminals and events across processes (AW-1..AW-4, RX-15).

The process stream itself is the change feed: a waiter reads state, then
blocks with ``XREAD`` from the last entry id it actually saw (never ``$``, so
an append racing the first read is not lost), and re-reads after every
wake-up. The blocking client has its own socket timeout and no retries, so a
long block is never re-sent (DESIGN "Known facts").
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

from lash_streams.errors import InvalidValue, UnknownProcess
from lash_streams.model import ProcessAwaitOutput, ProcessEvent
from lash_streams.semantics.inputs import require, require_u64
from lash_streams.store.core import StoreCore
from lash_streams.store.events import event_from_entry, read_range
from lash_streams.store.retry import TRANSIENT, server_error

#: Longest single XREAD BLOCK; waits longer than this loop.
_BLOCK_SLICE_MS = 5_000


class AwaitOps(StoreCore):
    async def _block_after(self, stream: str, last_id: str, block_ms: int) -> list[Any]:
        from redis.exceptions import ResponseError

        shared = self.shared_reader()
        if shared is not None:
            return await shared.wait(stream, last_id, block_ms)
        try:
            reply = await self.blocking_for(stream).xread(
                {stream: last_id}, count=256, block=max(1, block_ms)
            )
        except TRANSIENT:
            await asyncio.sleep(0.05)
            return []
        except ResponseError as err:
            # A slot that moved reaches here as TRANSIENT: the node client
            # refreshed the cluster's slot map (store/node_client.py).
            raise server_error(f"wait on `{stream}`", err) from err
        if not reply:
            return []
        entries: list[Any] = reply[0][1]
        return entries

    async def await_terminal(
        self, process_id: str, timeout: float | None = None
    ) -> ProcessAwaitOutput:
        """AW-1: the stored await output once the process is terminal.

        Raises ``TimeoutError`` when ``timeout`` seconds pass first."""
        loop = asyncio.get_running_loop()
        deadline = _deadline(loop.time(), timeout)
        stream = self.keys.process(process_id).events
        while True:
            fields = await self.record_fields(process_id)
            if not fields:
                raise UnknownProcess(process_id)
            output = _await_output(self.record_from_fields(fields).status)
            if output is not None:
                return output
            # Block from the sequence this read saw: anything after it wakes us.
            last_id = f"{int(fields[b'seq'])}-0"
            remaining = _remaining_ms(loop.time(), deadline)
            if remaining == 0:
                raise TimeoutError(f"process `{process_id}` is not terminal after {timeout}s")
            await self._block_after(stream, last_id, min(remaining, _BLOCK_SLICE_MS))

    async def await_event(
        self,
        process_id: str,
        event_type: str,
        after_sequence: int,
        timeout: float | None = None,
    ) -> ProcessEvent:
        """AW-4: the first event of ``event_type`` after the cursor."""
        require(event_type, str, "event_type")
        require_u64(after_sequence, "after_sequence")
        loop = asyncio.get_running_loop()
        deadline = _deadline(loop.time(), timeout)
        async for event in self.tail_events(process_id, after_sequence, _deadline=deadline):
            if event.event_type == event_type:
                return event
        raise TimeoutError(
            f"no `{event_type}` event on process `{process_id}` after #{after_sequence} "
            f"within {timeout}s"
        )

    async def tail_events(
        self,
        process_id: str,
        after_sequence: int = 0,
        *,
        _deadline: float | None = None,
    ) -> AsyncIterator[ProcessEvent]:
        """Every event after the cursor, in order, then live ones as they land.
        Never yields an event at or before the cursor."""
        require_u64(after_sequence, "after_sequence")
        loop = asyncio.get_running_loop()
        cursor = after_sequence
        for event in await read_range(self, process_id, "xrange", f"{cursor + 1}-0", "+"):
            cursor = event.sequence
            yield event
        stream = self.keys.process(process_id).events
        while True:
            remaining = _remaining_ms(loop.time(), _deadline)
            if remaining == 0:
                return
            entries = await self._block_after(
                stream, f"{cursor}-0", min(remaining, _BLOCK_SLICE_MS)
            )
            if not entries and not await self.record_fields(process_id):
                raise UnknownProcess(process_id)
            for entry in entries:
                event = event_from_entry(process_id, entry)
                if event.sequence > cursor:
                    cursor = event.sequence
                    yield event


def _deadline(now: float, timeout: float | None) -> float | None:
    """``timeout`` seconds from now; None (or infinity) waits for ever."""
    if timeout is None:
        return None
    require(timeout, (int, float), "timeout")
    if math.isnan(timeout) or timeout < 0:
        raise InvalidValue(f"timeout must be a non-negative number of seconds, got {timeout}")
    return None if math.isinf(timeout) else now + timeout


def _remaining_ms(now: float, deadline: float | None) -> int:
    if deadline is None:
        return _BLOCK_SLICE_MS
    return max(0, int((deadline - now) * 1000))


def _await_output(status: Any) -> ProcessAwaitOutput | None:
    output: ProcessAwaitOutput | None = getattr(status, "await_output", None)
    return output
