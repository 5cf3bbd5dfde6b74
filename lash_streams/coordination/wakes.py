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
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from lash_streams import observability as obs
from lash_streams.errors import AlreadySettled, ConsumerClosed, LashStreamsError
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
#: A consumer trims its streams below what every group acknowledged this often.
TRIM_EVERY_S = 5.0
_HAND_BACK_IDLE_MS = 10**9

log = logging.getLogger("lash_streams.wakes")


@dataclass(slots=True, eq=False)
class WakeMessage:
    """One delivery handed to this consumer; settle it exactly once."""

    delivery: ProcessWakeDelivery
    scope_id: str
    entry_id: str
    attempts: int
    _consumer: WakeConsumer = field(repr=False)
    #: How it was settled: "ack", "nack", "dead", None while in hand, or "lost"
    #: (a fleet pod lost the scope; settling it is then a no-op).
    settled: str | None = None

    async def ack(self, *, mark_process: bool = False) -> bool:
        """Done with this wake; False when the delivery had moved to another
        consumer meanwhile (it is that consumer's now). ``mark_process`` first
        records lash's process-scoped ``ack_wake`` (WA-2): a consumer killed
        between the two leaves a delivery that is redelivered, never one that
        is gone yet listed by ``wake_events_after``."""
        if self.settled == "lost":
            return False  # a fleet pod lost the scope: the next holder owns it
        self._settling("ack")
        if mark_process:
            await self._consumer.store.ack_wake(self.delivery.process_id, self.delivery.sequence)
        return (await self._consumer.ack([self]))[0]

    async def nack(self, delay: float = 0.0) -> None:
        """Hand it back: the group redelivers it after ``delay`` seconds (at
        most the consumer's ``claim_idle_ms``), as the next attempt."""
        if self.settled == "lost":
            return
        self._settling("nack")
        await self._consumer.nack([self], delay)

    async def dead_letter(self, reason: str) -> None:
        """Move it to the scope's dead-letter stream with ``reason``."""
        if self.settled == "lost":
            return
        self._settling("dead")
        await self._consumer._dead_letter(self.scope_id, self.entry_id, None, self, reason)

    def _settling(self, how: str) -> None:
        if self.settled is not None:
            raise AlreadySettled(
                f"wake {self.delivery.wake_id} (entry {self.entry_id}) was already settled "
                f"({self.settled}); each delivery is settled exactly once"
            )
        self.settled = how

    async def __aenter__(self) -> WakeMessage:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Ack when the block succeeded, nack when it raised (the exception
        propagates); nothing when the block settled the message itself."""
        if self.settled is not None:
            return
        if exc_type is None:
            await self.ack()
        else:
            with contextlib.suppress(LashStreamsError):
                await self.nack()  # the claim idle time hands it back anyway


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
        if claim_idle_ms < 1 or max_deliveries < 1 or batch < 1 or block_ms < 0:
            raise ValueError(
                "claim_idle_ms, max_deliveries and batch must be positive, block_ms not negative"
            )
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
        self._buffer: deque[WakeMessage] = deque()
        self._in_flight: dict[tuple[str, str], WakeMessage] = {}
        self._own_pending_read = False
        self._next_claim = 0.0
        self._next_trim = 0.0
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
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
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
        except TRANSIENT:
            # The server is restarting or unreachable, or a cluster re-forms
            # (CLUSTERDOWN is a ResponseError too, so this clause comes first).
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
            counts = {_text(r["message_id"]): int(r["times_delivered"]) for r in rows}
            entries = await self.store.redis.xclaim(
                stream, self.group, self.consumer, 0, list(counts)
            )
            for entry_id, fields in entries:
                await self._accept(scope_id, entry_id, fields, counts[_text(entry_id)] + 1)
            # An entry trimmed while pending comes back as nothing: settle it.
            gone = set(counts) - {_text(e) for e, _ in entries}
            if gone:
                await self._settle_ids("ack", stream, sorted(gone))

    async def _xreadgroup(self, cursor: str, block: int | None) -> list[tuple[str, Any]]:
        found: list[tuple[str, Any]] = []
        streams = list(self.streams)
        if not streams:  # a fleet pod's last scope went during this fill
            await asyncio.sleep((block or 0) / 1000)
            return found
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
                eid = _text(row["message_id"])
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
                await self._accept(scope_id, entry_id, fields, counts[_text(entry_id)] + 1)

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
        eid = _text(entry_id)
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

    # -- settling ----------------------------------------------------------------

    async def ack(self, messages: Sequence[WakeMessage]) -> list[bool]:
        """Ack many deliveries, one round trip per stream; per message True,
        or False when it had moved to another consumer (refused, counted)."""
        for message in messages:
            if message.settled is None:
                message.settled = "ack"
        return await self._settle("ack", messages)

    async def nack(self, messages: Sequence[WakeMessage], delay: float = 0.0) -> None:
        """Hand deliveries back for another attempt after ``delay`` seconds."""
        for message in messages:
            if message.settled is None:
                message.settled = "nack"
        delay_ms = min(max(0, int(delay * 1000)), self.claim_idle_ms)
        await self._settle("nack", messages, idle_ms=self.claim_idle_ms - delay_ms)
        loop = asyncio.get_running_loop()
        self._next_claim = min(self._next_claim, loop.time() + delay_ms / 1000)
        if obs.hooks is not None and messages:
            obs.hooks.nacked(self.group, len(messages))

    async def _settle(
        self, op: str, messages: Sequence[WakeMessage], *, idle_ms: int = 0
    ) -> list[bool]:
        by_stream: dict[str, list[int]] = {}
        for index, message in enumerate(messages):
            if message.settled == "lost":
                self._in_flight.pop((message.scope_id, message.entry_id), None)
                continue
            stream = self.store.keys.wake_stream(message.scope_id)
            by_stream.setdefault(stream, []).append(index)
        results = [False] * len(messages)
        try:
            for stream, indexes in by_stream.items():
                chosen = [messages[i] for i in indexes]
                markers = [
                    self.store.keys.wake_dedupe(m.scope_id, m.delivery.wake_id) for m in chosen
                ]
                replies = await self._settle_ids(
                    op, stream, [m.entry_id for m in chosen], markers=markers, idle_ms=idle_ms
                )
                for index, reply in zip(indexes, replies, strict=True):
                    results[index] = reply == 1
        finally:
            # Out of hand only once settled: until the script ran, a reclaim
            # pass must not take (and hand out again) what is being acked.
            for message in messages:
                self._in_flight.pop((message.scope_id, message.entry_id), None)
        return results

    async def _settle_ids(
        self,
        op: str,
        stream: str,
        entry_ids: Sequence[str],
        *,
        markers: Sequence[str] = (),
        idle_ms: int = 0,
    ) -> list[int]:
        keys = [stream, *(markers if op == "ack" else ())]
        args = [self.group, self.consumer, op, idle_ms, *entry_ids]
        replies: list[Any] = await self.store.retry.idempotent(
            f"{op} wakes", lambda: self.store.scripts.settle_wakes(keys=keys, args=args)
        )
        out = [int(r) for r in replies]
        if op == "ack":
            self._acked_streams.add(stream)
        refused = out.count(-1)
        if refused and op != "touch":
            log.warning(
                "wake consumer `%s` of `%s`: %d %s refused: the deliveries moved to another "
                "consumer, which now owns them",
                self.consumer,
                self.group,
                refused,
                op,
            )
            if obs.hooks is not None:
                obs.hooks.ack_refused(self.group, refused)
        return out

    async def _keep_in_flight(self) -> None:
        """While deliveries are in hand, reset their idle time every third of
        ``claim_idle_ms``: no consumer claims them, nor counts another attempt.
        A delivery that moved away meanwhile (a pause past the claim time) is
        dropped from the hand: its ack would be refused anyway."""
        period = self.claim_idle_ms / 3000
        while self._in_flight and not self._closed:
            await asyncio.sleep(period)
            by_stream: dict[str, list[WakeMessage]] = {}
            for message in list(self._in_flight.values()):
                stream = self.store.keys.wake_stream(message.scope_id)
                by_stream.setdefault(stream, []).append(message)
            for stream, held in by_stream.items():
                try:
                    replies = await self._settle_ids("touch", stream, [m.entry_id for m in held])
                except (LashStreamsError, ResponseError, *TRANSIENT) as err:
                    log.debug("wake consumer `%s`: touch failed: %s", self.consumer, err)
                    continue
                for message, reply in zip(held, replies, strict=True):
                    if reply != 1:
                        self._in_flight.pop((message.scope_id, message.entry_id), None)

    async def _dead_letter(
        self,
        scope_id: str,
        entry_id: str,
        fields: Any,
        message: WakeMessage | None,
        reason: str,
        attempts: int | None = None,
    ) -> None:
        """The letter first, then the ack: killed between the two leaves a
        delivery that is dead-lettered again (a duplicate letter), never lost."""
        stream = self.store.keys.wake_stream(scope_id)
        if fields is None:
            entries = await self.store.redis.xrange(stream, entry_id, entry_id)
            fields = entries[0][1] if entries else {}
        letter = {
            "d": fields.get(b"d", b""),
            "entry": entry_id,
            "group": self.group,
            "attempts": attempts if attempts is not None else (message.attempts if message else 0),
            "last_consumer": self.consumer,
            "reason": reason,
        }
        dead = self.store.keys.wake_dead_letters(scope_id)
        await self.store.retry.idempotent(
            "dead-letter wake",
            lambda: self.store.redis.xadd(dead, letter, maxlen=DEAD_LETTER_CAP, approximate=True),
        )
        if message is not None:
            await self._settle("ack", [message])
        else:
            wid = _text(fields.get(b"wid", b""))
            markers = [self.store.keys.wake_dedupe(scope_id, wid)] if wid else []
            await self._settle_ids("ack", stream, [entry_id], markers=markers)
        log.warning("wake entry %s of `%s` dead-lettered: %s", entry_id, scope_id, reason)
        if obs.hooks is not None:
            obs.hooks.dead_lettered(self.group)

    async def _trim(self) -> None:
        """Retention as consumers go: what every group acknowledged is trimmed."""
        self._next_trim = asyncio.get_running_loop().time() + TRIM_EVERY_S
        streams, self._acked_streams = self._acked_streams, set()
        for stream in streams:
            with contextlib.suppress(ResponseError, LashStreamsError):
                await trim_acknowledged(self.store, stream)

    async def _sample_backlog(self, metrics: Metrics, now: float) -> None:
        """Set the group's lag, pending and oldest-pending-age gauges from
        ``XINFO GROUPS`` (and ``XPENDING`` when something is pending)."""
        if self._next_sample is None:
            self._next_sample = now + self.backlog_sample_s
        if now < self._next_sample:
            return
        self._next_sample = now + self.backlog_sample_s
        server_ms = await self.store.server_time_ms()
        for stream in list(self.streams):
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
        # Read after XINFO: entries acked meanwhile leave nothing pending.
        summary = await store.redis.xpending(stream, group["name"]) if group["pending"] else None
        if summary and summary.get("min") is not None:
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
