"""Wake consumers: consumer groups over per-scope wake streams (RX-8, RX-9).

Each target scope has one wake stream; every consumer group on it receives
every wake (fan-out), and consumers within a group share them. Delivery is
at-least-once: ``ack()`` after the session durably handled the wake, and dedupe
by ``wake_id`` when handling twice matters. A consumer that dies holding
deliveries loses them to the group after ``claim_idle_ms`` (``XAUTOCLAIM``); a
delivery that keeps failing moves to the scope's dead-letter stream after
``max_deliveries`` attempts. Closing a consumer hands its unfinished deliveries
back at once.

``ack()`` is stream bookkeeping (``XACK``); lash's ``ack_wake`` is a separate,
process-scoped marker that drives ``wake_events_after`` (RX-9). Pass
``ack(mark_process=True)`` to record both.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from lash_streams import observability as obs
from lash_streams.errors import ConsumerClosed
from lash_streams.model import ProcessWakeDelivery, SessionScope
from lash_streams.model._codec import decode
from lash_streams.store.retry import TRANSIENT

if TYPE_CHECKING:
    from lash_streams.observability.metrics import Metrics
    from lash_streams.store import Store

#: Dead-letter streams keep at most about this many entries per scope.
DEAD_LETTER_CAP = 10_000
#: With metrics on, a consumer samples its group's backlog this often (seconds).
BACKLOG_SAMPLE_S = 5.0
_HAND_BACK_IDLE_MS = 10**9


@dataclass(slots=True)
class WakeMessage:
    """One delivery handed to this consumer."""

    delivery: ProcessWakeDelivery
    scope_id: str
    entry_id: str
    attempts: int
    _consumer: WakeConsumer = field(repr=False)

    async def ack(self, *, mark_process: bool = False) -> None:
        """Done with this wake. ``mark_process`` also records lash's
        process-scoped ``ack_wake`` (WA-2)."""
        await self._consumer._ack(self)
        if mark_process:
            await self._consumer.store.ack_wake(self.delivery.process_id, self.delivery.sequence)


class WakeConsumer:
    def __init__(
        self,
        store: Store,
        *,
        group: str,
        consumer: str,
        scopes: Sequence[SessionScope | str],
        claim_idle_ms: int = 30_000,
        max_deliveries: int = 5,
        batch: int = 32,
        block_ms: int = 1_000,
        start: str = "0",
    ) -> None:
        if not scopes:
            raise ValueError("a wake consumer needs at least one scope")
        self.store = store
        self.group = group
        self.consumer = consumer
        self.scope_ids = [s.id() if isinstance(s, SessionScope) else s for s in scopes]
        self.streams = {store.keys.wake_stream(sid): sid for sid in self.scope_ids}
        self.claim_idle_ms = claim_idle_ms
        self.max_deliveries = max_deliveries
        self.batch = batch
        self.block_ms = block_ms
        self.start = start
        self._buffer: list[WakeMessage] = []
        self._in_flight: dict[tuple[str, str], WakeMessage] = {}
        self._own_pending_read = False
        self._next_claim = 0.0
        # The first sample waits a period too: a fleet pod's short drains never pay for one.
        self._next_sample: float | None = None
        self.backlog_sample_s = BACKLOG_SAMPLE_S
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------

    async def ensure_groups(self) -> None:
        """Create the groups (idempotent, MKSTREAM); also after a server restart
        that lost them, so a consumer never loops on NOGROUP."""
        for stream in self.streams:
            try:
                await self.store.redis.xgroup_create(
                    stream, self.group, id=self.start, mkstream=True
                )
            except ResponseError as err:
                if "BUSYGROUP" not in str(err):
                    raise

    async def __aenter__(self) -> WakeConsumer:
        await self.ensure_groups()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Graceful shutdown: hand unfinished deliveries back to the group now
        (their idle time is set past every claim threshold)."""
        if self._closed:
            return
        self._closed = True
        if obs.hooks is not None and obs.hooks.metrics is not None:
            obs.hooks.metrics.wake_backlog_gone(self.group, self.streams)
        pending = list(self._in_flight.values()) + self._buffer
        self._in_flight.clear()
        self._buffer.clear()
        for message in pending:
            stream = self.store.keys.wake_stream(message.scope_id)
            try:
                await self.store.redis.xclaim(
                    stream,
                    self.group,
                    self.consumer,
                    0,
                    [message.entry_id],
                    idle=_HAND_BACK_IDLE_MS,
                    justid=True,
                )
            except (ResponseError, *TRANSIENT):
                pass  # the idle clock hands it back anyway

    # -- iteration ---------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[WakeMessage]:
        return self

    async def __anext__(self) -> WakeMessage:
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            await self._fill()
        message = self._buffer.pop(0)
        self._in_flight[(message.scope_id, message.entry_id)] = message
        return message

    def _closed_error(self) -> ConsumerClosed:
        return ConsumerClosed(f"wake consumer `{self.consumer}` of `{self.group}` is closed")

    async def next(self, timeout: float | None = None) -> WakeMessage | None:
        """The next delivery, or None after ``timeout`` seconds without one;
        ``errors.ConsumerClosed`` once the consumer is closed.

        Waiting is bounded by shortening the server-side block, never by
        cancelling a read, so no delivery is lost mid-reply."""
        if self._closed:
            # Raised, not None: a polling loop must not spin on a closed consumer.
            raise self._closed_error()
        if timeout is None:
            return await self.__anext__()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._buffer:
            remaining_ms = int((deadline - loop.time()) * 1000)
            if remaining_ms <= 0:
                return None
            if self._closed:
                raise self._closed_error()
            await self._fill(block_ms=min(self.block_ms, remaining_ms))
        return await self.__anext__()

    async def _fill(self, block_ms: int | None = None) -> None:
        try:
            loop = asyncio.get_running_loop()
            if not self._own_pending_read:
                # Our own unacknowledged deliveries from before a restart come first.
                await self._read("0", block=None)
                self._own_pending_read = True
            if loop.time() >= self._next_claim:
                await self._reclaim()
                self._next_claim = loop.time() + max(self.claim_idle_ms / 2000, 0.05)
            if obs.hooks is not None and obs.hooks.metrics is not None:
                await self._sample_backlog(obs.hooks.metrics, loop.time())
            if not self._buffer:
                await self._read(">", block=block_ms or self.block_ms)
        except TRANSIENT:
            # The server is restarting or unreachable, or a cluster re-forms
            # (CLUSTERDOWN is a ResponseError too, so this clause comes first).
            await asyncio.sleep(0.2)
            with contextlib.suppress(*TRANSIENT, ResponseError):
                await self.ensure_groups()
        except ResponseError as err:
            if not group_lost(err):
                raise
            self._own_pending_read = False
            with contextlib.suppress(*TRANSIENT):
                await self.ensure_groups()

    async def _read(self, cursor: str, *, block: int | None) -> None:
        for stream, entries in await self._xreadgroup(cursor, block):
            scope_id = self.streams[stream]
            for entry_id, fields in entries:
                if not fields:  # deleted while pending
                    await self._ack_raw(stream, entry_id)
                    continue
                attempts = 1 if cursor == ">" else await self._attempts(stream, entry_id)
                await self._accept(scope_id, entry_id, fields, attempts)

    async def _xreadgroup(self, cursor: str, block: int | None) -> list[tuple[str, Any]]:
        found: list[tuple[str, Any]] = []
        streams = list(self.streams)
        if not self.store.cluster:
            reply = await self.store.blocking.xreadgroup(
                self.group, self.consumer, {s: cursor for s in streams},
                count=self.batch, block=block,
            )  # fmt: skip
            return [(_text(s), e) for s, e in reply or []]
        # Cluster: streams of different scopes live in different slots.
        slice_ms = None if block is None else max(1, block // len(streams))
        for stream in streams:
            client = self.store.blocking_for(stream)
            reply = await client.xreadgroup(
                self.group, self.consumer, {stream: cursor}, count=self.batch, block=slice_ms
            )
            found.extend((_text(s), e) for s, e in reply or [])
            if found:
                break
        return found

    async def _attempts(self, stream: str, entry_id: Any) -> int:
        rows = await self.store.redis.xpending_range(stream, self.group, entry_id, entry_id, 1)
        return int(rows[0]["times_delivered"]) if rows else 1

    async def _reclaim(self) -> None:
        """Take over deliveries idle for ``claim_idle_ms`` (their consumer died)."""
        for stream, scope_id in self.streams.items():
            reply = await self.store.redis.xautoclaim(
                stream, self.group, self.consumer, self.claim_idle_ms, "0-0", count=self.batch
            )
            for entry_id, fields in reply[1]:
                if not fields:
                    await self._ack_raw(stream, entry_id)
                    continue
                await self._accept(
                    scope_id, entry_id, fields, await self._attempts(stream, entry_id)
                )

    async def _sample_backlog(self, metrics: Metrics, now: float) -> None:
        """Set the group's lag, pending and oldest-pending-age gauges from
        ``XINFO GROUPS`` (and ``XPENDING`` when something is pending)."""
        if self._next_sample is None:
            self._next_sample = now + self.backlog_sample_s
        if now < self._next_sample:
            return
        self._next_sample = now + self.backlog_sample_s
        server_ms = await self.store.server_time_ms()
        for stream in self.streams:
            try:
                groups = await self.store.redis.xinfo_groups(stream)
                info = next((g for g in groups if _text(g["name"]) == self.group), None)
                if info is None:
                    continue
                pending = int(info["pending"])
                oldest_s = 0.0
                if pending:
                    summary = await self.store.redis.xpending(stream, self.group)
                    if summary["min"] is not None:
                        oldest_s = max(0, server_ms - _id(summary["min"])[0]) / 1000
            except ResponseError:
                continue  # a sample must never stop consumption; the read handles a lost group
            # Redis answers a null lag when it cannot tell (entries deleted mid-stream).
            lag = float("nan") if info.get("lag") is None else float(info["lag"])
            metrics.wake_backlog(self.group, stream, lag, pending, oldest_s)

    async def _accept(self, scope_id: str, entry_id: Any, fields: Any, attempts: int) -> None:
        eid = _text(entry_id)
        if (scope_id, eid) in self._in_flight or any(
            m.entry_id == eid and m.scope_id == scope_id for m in self._buffer
        ):
            return
        delivery = decode(fields[b"d"], ProcessWakeDelivery)
        if attempts > self.max_deliveries:
            await self._dead_letter(scope_id, eid, fields, attempts)
            return
        self._buffer.append(WakeMessage(delivery, scope_id, eid, attempts, self))

    async def _dead_letter(self, scope_id: str, entry_id: str, fields: Any, attempts: int) -> None:
        stream = self.store.keys.wake_stream(scope_id)
        await self.store.redis.xadd(
            self.store.keys.wake_dead_letters(scope_id),
            {
                "d": fields[b"d"],
                "entry": entry_id,
                "group": self.group,
                "attempts": attempts,
                "last_consumer": self.consumer,
                "reason": f"not acknowledged after {self.max_deliveries} deliveries",
            },
            maxlen=DEAD_LETTER_CAP,
            approximate=True,
        )
        await self._ack_raw(stream, entry_id)
        if obs.hooks is not None:
            obs.hooks.dead_lettered(self.group)

    async def _ack(self, message: WakeMessage) -> None:
        self._in_flight.pop((message.scope_id, message.entry_id), None)
        await self._ack_raw(self.store.keys.wake_stream(message.scope_id), message.entry_id)

    async def _ack_raw(self, stream: str, entry_id: Any) -> None:
        await self.store.retry.idempotent(
            "ack wake", lambda: self.store.redis.xack(stream, self.group, entry_id)
        )


def group_lost(err: ResponseError) -> bool:
    """The stream or its group is gone (server restarted without persistence,
    stream deleted); fakeredis words the same condition differently."""
    return "NOGROUP" in str(err) or "requires the key to exist" in str(err)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def trim_wake_stream(store: Store, scope: SessionScope | str) -> int:
    """Trim a scope's wake stream below what every group acknowledged; returns
    the number of entries removed. Never trims a stream nobody consumes."""
    scope_id = scope.id() if isinstance(scope, SessionScope) else scope
    return await trim_acknowledged(store, store.keys.wake_stream(scope_id))


async def trim_acknowledged(store: Store, stream: str) -> int:
    """Remove the entries of ``stream`` that every consumer group has read and
    acknowledged (below the oldest pending entry or last delivered id)."""
    try:
        groups = await store.redis.xinfo_groups(stream)
    except ResponseError:
        return 0
    if not groups:
        return 0
    floors: list[tuple[int, int]] = []
    for group in groups:
        if int(group["pending"]) > 0:
            summary = await store.redis.xpending(stream, group["name"])
            floors.append(_id(summary["min"]))
        else:
            ms, seq = _id(group["last-delivered-id"])
            floors.append((ms, seq + 1))
    ms, seq = min(floors)
    removed: int = await store.redis.execute_command("XTRIM", stream, "MINID", f"{ms}-{seq}")
    return removed


def _id(value: Any) -> tuple[int, int]:
    ms, _, seq = _text(value).partition("-")
    return int(ms), int(seq or 0)
