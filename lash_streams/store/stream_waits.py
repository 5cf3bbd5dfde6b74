"""One blocking ``XREAD`` for every waiter of a bus (issue 13).

``await_terminal``, ``await_event``, ``tail_events`` and every run's cancel
watcher block on a process stream until something lands after the entry they
last saw. With one blocking connection each, the 65th waiter queued behind
the pool and woke seconds past its deadline, and each run pinned a
connection for its whole life. Here a single reader task blocks on all the
watched streams at once and hands each waiter the entries after its cursor;
10,000 waiters cost one connection.

A waiter that arrives while the reader is blocked on the other streams must
not wait out the block: the reader's connection is woken with
``CLIENT UNBLOCK`` (one short command, sent only when the new stream or an
older cursor is not already in the blocked read). A user whose ACL refuses
``CLIENT UNBLOCK`` still gets correct waits: the reader then blocks in short
slices instead (docs/operating.md lists the permission).

Only on a single server: a cluster refuses one ``XREAD`` over keys of
different slots (``CROSSSLOT``), so there each waiter blocks on its own
stream's node as before (``AwaitOps._block_after``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("lash_streams.waits")

#: Longest single block; the connection's socket timeout is longer.
BLOCK_MS = 5_000
#: The block when ``CLIENT UNBLOCK`` is refused: a new waiter's first entry
#: can be this late.
SLICE_WITHOUT_UNBLOCK_MS = 100
#: Attempts to unblock a read that has not reached the server yet (1 ms apart).
_UNBLOCK_TRIES = 50
#: Entries per stream per read; a waiter far behind gets these and re-reads.
COUNT = 256


def _order(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


@dataclass(eq=False)
class _Waiter:
    stream: bytes
    after: tuple[int, int]
    future: asyncio.Future[list[Any]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class SharedReader:
    def __init__(self, blocking_client: Any, control_client: Any) -> None:
        self._blocking = blocking_client
        self._control = control_client
        self._waiters: dict[bytes, list[_Waiter]] = {}
        self._task: asyncio.Task[None] | None = None
        self._connection: Any = None
        self._client_id: int | None = None
        self._blocked_on: dict[bytes, tuple[int, int]] | None = None
        self._unblocking = False
        self._reads = 0
        self._can_unblock = True
        self._closed = False

    async def wait(self, stream: str | bytes, after_id: str, block_ms: int) -> list[Any]:
        """Entries of ``stream`` after ``after_id`` (``<ms>-<seq>``), or ``[]``
        once ``block_ms`` passed (or the connection failed: re-read and wait
        again, as after an XREAD timeout)."""
        key = stream.encode() if isinstance(stream, str) else stream
        waiter = _Waiter(key, _order(after_id))
        self._waiters.setdefault(key, []).append(waiter)
        self._start()
        self._wake_for(waiter)
        try:
            async with asyncio.timeout(max(1, block_ms) / 1000):
                return await waiter.future
        except TimeoutError:
            return []
        finally:
            self._forget(waiter)

    def _forget(self, waiter: _Waiter) -> None:
        waiters = self._waiters.get(waiter.stream)
        if waiters is not None:
            with contextlib.suppress(ValueError):
                waiters.remove(waiter)
            if not waiters:
                del self._waiters[waiter.stream]

    def _start(self) -> None:
        if self._closed:
            raise RuntimeError("the bus is closed")
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="lash-streams-shared-reader")

    def _wake_for(self, waiter: _Waiter) -> None:
        """Unblock the reader unless its current read already covers ``waiter``."""
        blocked = self._blocked_on
        if blocked is None or self._unblocking or not self._can_unblock:
            return
        cursor = blocked.get(waiter.stream)
        if cursor is not None and cursor <= waiter.after:
            return
        self._unblocking = True
        asyncio.get_running_loop().create_task(self._unblock())

    async def _unblock(self) -> None:
        # The read may not have reached the server yet (it is marked blocked
        # before it is sent): "0 clients unblocked" for that same read means
        # try again shortly, never wait out its block.
        read = self._reads
        for _ in range(_UNBLOCK_TRIES):
            client_id = self._client_id
            if client_id is None or self._reads != read or self._blocked_on is None:
                return
            try:
                if await self._control.execute_command("CLIENT", "UNBLOCK", client_id):
                    return
            except Exception as err:
                if "NOPERM" in str(err) or "unknown" in str(err).lower():
                    log.warning("CLIENT UNBLOCK refused (%s): waits use short slices", err)
                    self._can_unblock = False
                return
            await asyncio.sleep(0.001)

    async def _connect(self) -> Any:
        pool = self._blocking.connection_pool
        connection = pool.connection_class(**pool.connection_kwargs)
        await connection.connect()
        if self._can_unblock:
            await connection.send_command("CLIENT", "ID")
            try:
                self._client_id = int(await connection.read_response())
            except Exception as err:
                log.warning("CLIENT ID refused (%s): waits use short slices", err)
                self._can_unblock = False
        return connection

    async def _run(self) -> None:
        while self._waiters:
            try:
                if self._connection is None:
                    self._connection = await self._connect()
                reply = await self._read()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.debug("shared stream reader: %s", err)
                await self._drop_connection()
                self._release_all()
                await asyncio.sleep(0.05)
                continue
            self._dispatch(reply)

    async def _read(self) -> Any:
        cursors = {key: min(w.after for w in ws) for key, ws in self._waiters.items()}
        block = BLOCK_MS if self._can_unblock else SLICE_WITHOUT_UNBLOCK_MS
        args: list[Any] = ["XREAD", "COUNT", COUNT, "BLOCK", block, "STREAMS", *cursors]
        args += [f"{ms}-{seq}" for ms, seq in cursors.values()]
        connection = self._connection
        # Marked before the send: a waiter arriving meanwhile must see that this
        # read does not cover it (and unblock it once it reaches the server).
        self._reads += 1
        self._blocked_on, self._unblocking = cursors, False
        try:
            await connection.send_command(*args)
            return await connection.read_response()
        finally:
            self._blocked_on = None

    def _dispatch(self, reply: Any) -> None:
        for stream, entries in _streams(reply):
            for waiter in list(self._waiters.get(stream, ())):
                after = [e for e in entries if _order(e[0]) > waiter.after]
                if after and not waiter.future.done():
                    waiter.future.set_result(after)
                    self._forget(waiter)

    def _release_all(self) -> None:
        for waiters in list(self._waiters.values()):
            for waiter in list(waiters):
                if not waiter.future.done():
                    waiter.future.set_result([])
                self._forget(waiter)

    async def _drop_connection(self) -> None:
        connection, self._connection, self._client_id = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.disconnect()

    async def aclose(self) -> None:
        self._closed = True
        self._release_all()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._drop_connection()


def _streams(reply: Any) -> list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]:
    """A raw XREAD reply as (stream, [(id, fields)]) pairs, the shape redis-py's
    ``xread`` gives. The parser answers a list of pairs or a map."""
    if not reply:
        return []
    pairs = reply.items() if isinstance(reply, dict) else reply
    return [(stream, [(i, _fields(raw)) for i, raw in entries]) for stream, entries in pairs]


def _fields(raw: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(raw[::2], raw[1::2], strict=True))
