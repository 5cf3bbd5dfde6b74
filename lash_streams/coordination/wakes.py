"""Wake consumers: consumer groups over per-scope wake streams (RX-8, RX-9).

Each target scope has one wake stream; every consumer group on it receives
every wake (fan-out), and consumers within a group share them. Delivery is
at-least-once; the effect on the log is exactly-once when handlers dedupe by
``wake_id`` (docs/guarantees.md).

Every delivery is settled exactly one way:

- ``ack()``: done. Refused (returns False, counted, logged) when the delivery
  moved to another consumer meanwhile, which then owns it;
- ``nack(delay=)``: hand it back to the group; any consumer of the group gets
  it again after ``delay`` seconds (at most ``claim_idle_ms``), as its next
  attempt;
- ``dead_letter(reason)``: move it to the scope's dead-letter stream.

``async with message:`` acks when the block succeeds and nacks when it raises;
``run(handler)`` does the same for every delivery. A delivery in a consumer's
hands is kept from being claimed by anyone (the consumer resets its idle time
in the background while a handler runs), so a long handler is not handed to a
second consumer and never counts as a second attempt. A delivery whose
consumer died is claimed by another once idle for ``claim_idle_ms``. Attempts
are checked before decoding: past ``max_deliveries``, or not decodable, a
delivery goes to the dead-letter stream with the reason and the rest of the
batch goes on.

``ack()`` is stream bookkeeping; lash's ``ack_wake`` is a separate,
process-scoped marker that drives ``wake_events_after`` (RX-9):
``ack(mark_process=True)`` records it first, then acks the delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from lash_streams import observability as obs
from lash_streams.coordination.wake_message import WakeMessage
from lash_streams.coordination.wake_settle import DEAD_LETTER_CAP, Settling
from lash_streams.coordination.wake_streams import (
    Outage,
    group_lost,
    sample_backlog,
    scope_id_of,
    text,
    trim_acknowledged,
    trim_wake_stream,
)
from lash_streams.errors import ConsumerClosed, InvalidValue, LashStreamsError
from lash_streams.ids import id_bytes
from lash_streams.model import ProcessWakeDelivery, SessionScope
from lash_streams.model._codec import decode
from lash_streams.semantics.inputs import require_at_least
from lash_streams.store.retry import TRANSIENT

if TYPE_CHECKING:
    from lash_streams.observability.metrics import Metrics
    from lash_streams.store import Store

#: With metrics on, a consumer samples its group's backlog this often (seconds).
BACKLOG_SAMPLE_S = 5.0
#: A consumer trims its streams below what every group acknowledged this often.
TRIM_EVERY_S = 5.0
_HAND_BACK_IDLE_MS = 10**9

log = logging.getLogger("lash_streams.wakes")


class WakeConsumer(Settling):
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
        id_bytes("group", group)
        id_bytes("consumer", consumer)
        if isinstance(scopes, str | SessionScope) or not isinstance(scopes, Sequence):
            raise InvalidValue("scopes takes a list of scopes, not one scope")
        if not scopes:
            raise InvalidValue("a wake consumer needs at least one scope")
        require_at_least(claim_idle_ms, 1, "claim_idle_ms")
        require_at_least(max_deliveries, 1, "max_deliveries")
        require_at_least(batch, 1, "batch")
        require_at_least(block_ms, 0, "block_ms")
        self.store = store
        self.group = group
        self.consumer = consumer
        self.scope_ids = [scope_id_of(s) for s in scopes]
        self.streams = {store.keys.wake_stream(sid): sid for sid in self.scope_ids}
        self.claim_idle_ms = claim_idle_ms
        self.max_deliveries = max_deliveries
        self.batch = batch
        self.block_ms = block_ms
        self.start = start
        self._buffer: deque[WakeMessage] = deque()
        self._in_flight: dict[tuple[str, str], WakeMessage] = {}
        self._own_pending_read = False
        self._next_claim = 0.0
        self._next_trim = 0.0
        self._outage = Outage(f"wake consumer `{consumer}` of `{group}`", group)
        self._acked_streams: set[str] = set()
        # The first sample waits a period too: a fleet pod's short drains never pay for one.
        self._next_sample: float | None = None
        self.backlog_sample_s = BACKLOG_SAMPLE_S
        self._keeper: asyncio.Task[None] | None = None
        # Scopes whose last read found nothing new (fleet pods finish them).
        self._read_empty: set[str] = set()
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------

    async def ensure_groups(self) -> None:
        """Create the groups (idempotent, MKSTREAM); also after a server restart
        that lost them, so a consumer never loops on NOGROUP."""
        for stream in list(self.streams):
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

    @property
    def in_flight(self) -> int:
        """Deliveries handed out and not settled yet."""
        return len(self._in_flight)

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        """Graceful shutdown: hand unsettled deliveries back to the group now."""
        if self._closed:
            return
        self._closed = True
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._keeper
        if obs.hooks is not None and obs.hooks.metrics is not None:
            obs.hooks.metrics.wake_backlog_gone(self.group, self.streams)
        pending = list(self._in_flight.values()) + list(self._buffer)
        self._in_flight.clear()
        self._buffer.clear()
        with contextlib.suppress(LashStreamsError, ResponseError, *TRANSIENT):
            await self._settle("nack", pending, idle_ms=_HAND_BACK_IDLE_MS)

    # -- scopes (fleet pods change theirs as they go) ------------------------------

    def add_scope(self, scope_id: str) -> None:
        self.streams[self.store.keys.wake_stream(scope_id)] = scope_id
        if scope_id not in self.scope_ids:
            self.scope_ids.append(scope_id)
        self._own_pending_read = False  # its entries this consumer holds come first
        self._next_claim = 0.0
        self._read_empty.discard(scope_id)

    def drop_scope(self, scope_id: str) -> list[WakeMessage]:
        """Stop serving ``scope_id`` here; its buffered and in-hand deliveries
        are forgotten (returned), not settled: they stay pending for the group."""
        self.streams.pop(self.store.keys.wake_stream(scope_id), None)
        self._read_empty.discard(scope_id)
        if scope_id in self.scope_ids:
            self.scope_ids.remove(scope_id)
        dropped = [m for m in self._buffer if m.scope_id == scope_id]
        self._buffer = deque(m for m in self._buffer if m.scope_id != scope_id)
        for key in [k for k in self._in_flight if k[0] == scope_id]:
            dropped.append(self._in_flight.pop(key))
        return dropped

    def busy(self, scope_id: str) -> bool:
        """Deliveries of ``scope_id`` buffered or in hand here."""
        return any(m.scope_id == scope_id for m in self._buffer) or any(
            key[0] == scope_id for key in self._in_flight
        )

    def drained(self, scope_id: str) -> bool:
        """Nothing of ``scope_id`` here and the last read found nothing new."""
        return scope_id in self._read_empty and not self.busy(scope_id)

    # -- iteration ---------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[WakeMessage]:
        return self

    async def __anext__(self) -> WakeMessage:
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            await self._fill()
        return self._hand_out(self._buffer.popleft())

    def _hand_out(self, message: WakeMessage) -> WakeMessage:
        message.handed_at = time.monotonic()
        self._in_flight[(message.scope_id, message.entry_id)] = message
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self._keep_in_flight())
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
        if not await self._wait(timeout):
            return None
        return self._hand_out(self._buffer.popleft())

    async def next_batch(self, timeout: float | None = None) -> list[WakeMessage]:
        """Up to ``batch`` deliveries at once (empty after ``timeout`` seconds
        without any); settle them with ``ack(messages)`` in one round trip."""
        if self._closed:
            raise self._closed_error()
        if timeout is None:
            while not self._buffer:
                if self._closed:
                    raise self._closed_error()
                await self._fill()
        elif not await self._wait(timeout):
            return []
        out: list[WakeMessage] = []
        while self._buffer and len(out) < self.batch:
            out.append(self._hand_out(self._buffer.popleft()))
        return out

    async def batches(self) -> AsyncIterator[list[WakeMessage]]:
        """``async for messages in consumer.batches()``: until closed."""
        while not self._closed:
            try:
                messages = await self.next_batch(timeout=self.block_ms / 1000 or 0.05)
            except ConsumerClosed:
                return
            if messages:
                yield messages

    async def run(
        self, handler: Callable[[WakeMessage], Awaitable[object]], *, concurrency: int = 1
    ) -> None:
        """Hand every delivery to ``handler`` until the consumer is closed, up
        to ``concurrency`` at a time: acked when it returns, nacked when it
        raises (logged; the loop goes on), as it settled it otherwise."""
        require_at_least(concurrency, 1, "concurrency")
        slots = asyncio.Semaphore(concurrency)
        running: set[asyncio.Task[None]] = set()

        async def one(message: WakeMessage) -> None:
            try:
                async with message:
                    await handler(message)
            except Exception as err:
                log.warning(
                    "wake %s: handler failed (%s: %s); handed back",
                    message.delivery.wake_id,
                    type(err).__name__,
                    err,
                )
            finally:
                slots.release()

        try:
            async for message in self:
                await slots.acquire()
                task = asyncio.create_task(one(message))
                running.add(task)
                task.add_done_callback(running.discard)
        finally:
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    async def _wait(self, timeout: float) -> bool:
        """Fill until something is buffered (True) or ``timeout`` passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._buffer:
            remaining_ms = int((deadline - loop.time()) * 1000)
            if remaining_ms <= 0:
                return False
            if self._closed:
                raise self._closed_error()
            await self._fill(block_ms=min(self.block_ms, remaining_ms))
        return True

    async def _fill(self, block_ms: int | None = None) -> None:
        if not self.streams:  # a fleet pod between scopes
            await asyncio.sleep((self.block_ms if block_ms is None else block_ms) / 1000)
            return
        try:
            loop = asyncio.get_running_loop()
            if not self._own_pending_read:
                # Our own unsettled deliveries from before a restart come first.
                await self._read_own_pending()
                self._own_pending_read = True
            if loop.time() >= self._next_claim:
                await self._reclaim()
                self._next_claim = loop.time() + max(self.claim_idle_ms / 2000, 0.05)
            if obs.hooks is not None and obs.hooks.metrics is not None:
                await self._sample_backlog(obs.hooks.metrics, loop.time())
            if self._acked_streams and loop.time() >= self._next_trim:
                await self._trim()
            if not self._buffer:
                wait = self.block_ms if block_ms is None else block_ms
                # A nack due sooner than the block ends shortens it.
                wait = min(wait, max(1, int((self._next_claim - loop.time()) * 1000)))
                await self._read_new(wait)
            self._outage.over()
        except TRANSIENT as err:
            # The server is restarting or unreachable, or a cluster re-forms
            # (CLUSTERDOWN is a ResponseError too, so this clause comes first).
            self._outage.fault(err)
            await asyncio.sleep(0.2)
            with contextlib.suppress(*TRANSIENT, ResponseError):
                await self.ensure_groups()
        except LashStreamsError as err:
            log.warning("wake consumer `%s`: %s; retrying", self.consumer, err)
            await asyncio.sleep(0.2)
        except ResponseError as err:
            if not group_lost(err):
                raise
            self._own_pending_read = False
            with contextlib.suppress(*TRANSIENT):
                await self.ensure_groups()

    async def _read_new(self, block: int) -> None:
        found = await self._xreadgroup(">", block)
        # A scope dropped during the read (a fleet pod lost it): its entries
        # stay pending in the group and go to its next holder once idle.
        found = [(s, e) for s, e in found if s in self.streams]
        self._read_empty = set(self.scope_ids) - {self.streams[s] for s, e in found if e}
        for stream, entries in found:
            scope_id = self.streams.get(stream)
            if scope_id is None:
                continue
            for entry_id, fields in entries:
                await self._accept(scope_id, entry_id, fields, 1, new=True)

    async def _read_own_pending(self) -> None:
        """This consumer's pending entries (a restart under the same name): with
        their delivery counts, so a poison entry cannot loop across restarts."""
        for stream, scope_id in list(self.streams.items()):
            rows = await self.store.redis.xpending_range(
                stream, self.group, "-", "+", 10_000, consumername=self.consumer
            )
            if not rows:
                continue
            counts = {text(r["message_id"]): int(r["times_delivered"]) for r in rows}
            entries = await self.store.redis.xclaim(
                stream, self.group, self.consumer, 0, list(counts)
            )
            for entry_id, fields in entries:
                await self._accept(scope_id, entry_id, fields, counts[text(entry_id)] + 1)
            # An entry trimmed while pending comes back as nothing: settle it.
            gone = set(counts) - {text(e) for e, _ in entries}
            if gone:
                await self._settle_ids("ack", stream, sorted(gone))

    async def _xreadgroup(self, cursor: str, block: int | None) -> list[tuple[str, Any]]:
        found: list[tuple[str, Any]] = []
        streams = list(self.streams)
        if not streams:  # a fleet pod's last scope went during this fill
            await asyncio.sleep((block or 0) / 1000)
            return found
        block = block or None  # BLOCK 0 would wait for ever; block_ms=0 means no wait
        if not self.store.cluster:
            reply = await self.store.blocking.xreadgroup(
                self.group, self.consumer, {s: cursor for s in streams},
                count=self.batch, block=block,
            )  # fmt: skip
            return [(text(s), e) for s, e in reply or []]
        # Cluster: streams of different scopes live in different slots.
        slice_ms = None if block is None else max(1, block // len(streams))
        for stream in streams:
            client = self.store.blocking_for(stream)
            reply = await client.xreadgroup(
                self.group, self.consumer, {stream: cursor}, count=self.batch, block=slice_ms
            )
            found.extend((text(s), e) for s, e in reply or [])
            if found:
                break
        return found

    async def _reclaim(self) -> None:
        """Take over deliveries idle for ``claim_idle_ms`` (their consumer died,
        or they were nacked), never one of this consumer's own in hand. The
        delivery count comes with the pending rows, so the attempts check needs
        no round trip per entry."""
        for stream, scope_id in list(self.streams.items()):
            rows = await self.store.redis.xpending_range(
                stream, self.group, "-", "+", self.batch, idle=self.claim_idle_ms
            )
            counts = {}
            for row in rows:
                eid = text(row["message_id"])
                if (scope_id, eid) not in self._in_flight and not self._buffered(scope_id, eid):
                    counts[eid] = int(row["times_delivered"])
            if not counts:
                continue
            # Claimed only if still idle that long: a consumer that just took
            # or touched one keeps it.
            entries = await self.store.redis.xclaim(
                stream, self.group, self.consumer, self.claim_idle_ms, list(counts)
            )
            for entry_id, fields in entries:
                await self._accept(scope_id, entry_id, fields, counts[text(entry_id)] + 1)

    def _buffered(self, scope_id: str, entry_id: str) -> bool:
        if not self._buffer:
            return False
        return any(m.entry_id == entry_id and m.scope_id == scope_id for m in self._buffer)

    async def _accept(
        self, scope_id: str, entry_id: Any, fields: Any, attempts: int, *, new: bool = False
    ) -> None:
        """One entry read or claimed: dead-lettered when past ``max_deliveries``
        (checked before decoding) or undecodable, else buffered. ``new``: read
        with ``>``, so not already here."""
        eid = text(entry_id)
        if not new and ((scope_id, eid) in self._in_flight or self._buffered(scope_id, eid)):
            return
        stream = self.store.keys.wake_stream(scope_id)
        if not fields:  # deleted while pending
            await self._settle_ids("ack", stream, [eid])
            return
        if attempts > self.max_deliveries:
            reason = f"not acknowledged after {self.max_deliveries} deliveries"
            await self._dead_letter(scope_id, eid, fields, None, reason, attempts)
            return
        try:
            delivery = decode(fields[b"d"], ProcessWakeDelivery)
        except (KeyError, LashStreamsError) as err:
            reason = f"undecodable: {type(err).__name__}: {err}"
            await self._dead_letter(scope_id, eid, fields, None, reason, attempts)
            return
        self._buffer.append(WakeMessage(delivery, scope_id, eid, attempts, self))
        self._read_empty.discard(scope_id)

    async def _trim(self) -> None:
        """Retention as consumers go: what every group acknowledged is trimmed."""
        self._next_trim = asyncio.get_running_loop().time() + TRIM_EVERY_S
        streams, self._acked_streams = self._acked_streams, set()
        for stream in streams:
            with contextlib.suppress(ResponseError, LashStreamsError):
                await trim_acknowledged(self.store, stream)

    async def _sample_backlog(self, metrics: Metrics, now: float) -> None:
        if self._next_sample is None:
            self._next_sample = now + self.backlog_sample_s
        if now < self._next_sample:
            return
        self._next_sample = now + self.backlog_sample_s
        await sample_backlog(self.store, self.group, list(self.streams), metrics)


__all__ = [
    "DEAD_LETTER_CAP",
    "TRIM_EVERY_S",
    "WakeConsumer",
    "WakeMessage",
    "group_lost",
    "trim_acknowledged",
    "trim_wake_stream",
]
