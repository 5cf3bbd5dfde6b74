"""Wake delivery into scope streams (WK-5..WK-11, RX-7).

The append script records the delivery intent in the process's outbox, in the
process's slot, atomically with the event. The appender then delivers it to
the target scope's wake stream (another slot) and clears the outbox entry. If
the appender dies in between, ``relay_pending`` (run by any worker) finds the
entry and finishes the job. Delivery is idempotent per wake id within the
dedupe window, so a delivery repeated by a retry or by the relay lands once.

The relay visits only processes in the pending-outbox index (``idx:ob``), so
its cost follows the intents left behind, not the processes (issue 13). On a
single server the append script marks a process there in the step that writes
the intent, and the delivery that empties its outbox unmarks it, both atomic.
On a cluster the index lives in another slot: the appender marks after its
append, before delivering (``mark_pending``), and the relay unmarks a process
whose outbox it found empty unless it was marked again meanwhile. An appender
that dies between its append and its mark leaves an intent no mark points to:
``relay_pending(full=True)``, the old visit of every known process, finds it;
``Recovery.run`` makes one on its second pass (the first serves what is
due) and, on a cluster, every ``FULL_RELAY_EVERY_S``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

from lash_streams import observability as obs
from lash_streams.errors import InvalidType, LashStreamsError
from lash_streams.model import ProcessWakeDelivery, SessionScope
from lash_streams.model._codec import decode, encode
from lash_streams.semantics.inputs import require, wire_bytes
from lash_streams.semantics.registration import validate_scope
from lash_streams.semantics.wake import build_wake_delivery
from lash_streams.store.core import StoreCore, text, unreadable_row
from lash_streams.store.events import event_from_entry
from lash_streams.store.keys import decode_id, encode_id
from lash_streams.store.scripts import is_noscript

#: Relay dead letters kept at most (about).
RELAY_DEAD_LETTER_CAP = 10_000

_RELAY_CHUNK = 500

#: How often a drive on a cluster relays over every known process (above).
FULL_RELAY_EVERY_S = 600.0

log = logging.getLogger("lash_streams.store")


def source_key(delivery: ProcessWakeDelivery) -> str:
    """WK-11: the idempotency key of one event's wake."""
    return f"process:{delivery.process_id}:event:{delivery.sequence}:wake"


def _deliver_args(core: StoreCore, delivery: ProcessWakeDelivery) -> list[Any]:
    return [encode(delivery), delivery.wake_id, source_key(delivery), core.wake_dedupe_window_ms]


async def mark_pending(core: StoreCore, process_ids: Sequence[str]) -> None:
    """On a cluster: mark the processes whose intents an appender is about to
    deliver (see the module), so a relay finds them if it dies first."""
    by_index: dict[str, set[str]] = {}
    for pid in process_ids:
        by_index.setdefault(core.keys.index_of("ob", pid), set()).add(encode_id(pid))
    for index, members in by_index.items():
        mark = functools.partial(core.scripts.mark_pending, keys=[index], args=sorted(members))
        await core.retry.idempotent("mark pending outboxes", mark)


async def deliver_wakes(
    core: StoreCore, items: Sequence[tuple[ProcessWakeDelivery, str | bytes | None]]
) -> list[bool]:
    """Deliver many wakes; True for each newly delivered, False for a wake id
    already delivered within the dedupe window. Per wake, in this order: the
    scope's stream, the fleet notice (no pod hears of a wake before it is
    readable), clearing the intent (a writer dying before it leaves the intent
    to the relay). On a single server each wake is one atomic step and the batch
    one script call; on a cluster the keys live on different nodes, so one step
    at a time."""
    if not items:
        return []
    if obs.hooks is not None:
        return await obs.hooks.deliver(_deliver_wakes(core, items), items)
    return await _deliver_wakes(core, items)


async def _deliver_wakes(
    core: StoreCore, items: Sequence[tuple[ProcessWakeDelivery, str | bytes | None]]
) -> list[bool]:
    what = f"deliver {len(items)} wake(s)"
    if core.cluster:
        return await core.retry.idempotent(what, lambda: _stepwise(core, items))
    return await core.retry.idempotent(what, lambda: _in_one_call(core, items))


async def _in_one_call(
    core: StoreCore, items: Sequence[tuple[ProcessWakeDelivery, str | bytes | None]]
) -> list[bool]:
    """On a single server: one ``deliver_wakes`` call for all of them."""
    keys: list[str] = []
    args: list[Any] = [core.wake_dedupe_window_ms]
    for delivery, outbox_id in items:
        scope_id = delivery.target_scope_id
        keys += [
            core.keys.wake_stream(scope_id),
            core.keys.wake_dedupe(scope_id, delivery.wake_id),
            core.keys.process(delivery.process_id).outbox,
            core.keys.fleet_stream_of(scope_id),
            core.keys.fleet_groups_of(scope_id),
            core.keys.index_of("ob", delivery.process_id),
        ]
        args += [
            encode(delivery),
            delivery.wake_id,
            source_key(delivery),
            outbox_id or "",
            scope_id,
        ]
    replies: list[Any] = await core.scripts.deliver_wake_atomic(keys=keys, args=args)
    return [text(reply[0]) == "NEW" for reply in replies]


async def _stepwise(
    core: StoreCore, items: Sequence[tuple[ProcessWakeDelivery, str | bytes | None]]
) -> list[bool]:
    """On a cluster the three steps of a wake live on different nodes, so they
    go in three phases, each one pipeline (the cluster client sends one round
    trip per node, in parallel): every stream write, then the fleet notice of
    each scope (a notice even for a wake already delivered: its first writer
    may have died before writing it), then the cleared intents. A phase starts
    only after the one before it answered, so per wake the order holds; a
    writer dying between phases leaves intents for the relay (dedupe makes
    its second delivery a no-op)."""
    replies = await _phase(
        core,
        [
            (
                core.scripts.deliver_wake,
                [
                    core.keys.wake_stream(d.target_scope_id),
                    core.keys.wake_dedupe(d.target_scope_id, d.wake_id),
                ],
                _deliver_args(core, d),
            )
            for d, _ in items
        ],
    )
    scopes = dict.fromkeys(d.target_scope_id for d, _ in items)
    await _phase(
        core,
        [
            (
                core.scripts.fleet_notice,
                [core.keys.fleet_stream_of(scope_id), core.keys.fleet_groups_of(scope_id)],
                [scope_id],
            )
            for scope_id in scopes
        ],
    )
    cleared: dict[str, list[str | bytes]] = {}
    for delivery, outbox_id in items:
        if outbox_id:
            cleared.setdefault(core.keys.process(delivery.process_id).outbox, []).append(outbox_id)
    if cleared:
        pipe = core.redis.pipeline(transaction=False)
        for outbox, ids in cleared.items():
            pipe.xdel(outbox, *ids)
        await pipe.execute()
    return [text(reply[0]) == "NEW" for reply in replies]


async def _phase(core: StoreCore, calls: list[tuple[Any, list[str], list[Any]]]) -> list[Any]:
    """One pipeline of script calls; a server that lost its scripts gets them
    again and the phase is sent again (each step is idempotent)."""
    for attempt in range(2):
        pipe = core.redis.pipeline(transaction=False)
        for script, keys, args in calls:
            await script(keys=keys, args=args, client=pipe)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        if attempt == 0 and any(is_noscript(r) for r in replies):
            await core.scripts.load()
            continue
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies
    raise AssertionError("unreachable")  # pragma: no cover


class DeliveryOps(StoreCore):
    async def deliver_wake(
        self, delivery: ProcessWakeDelivery, outbox_id: str | bytes | None = None
    ) -> bool:
        """Deliver to the scope's wake stream, then clear the intent; True when
        new, False when the wake id was already delivered within the window."""
        return (await self.deliver_wakes([(delivery, outbox_id)]))[0]

    async def deliver_wakes(
        self, items: Sequence[tuple[ProcessWakeDelivery, str | bytes | None]]
    ) -> list[bool]:
        """Deliver many wakes (see :func:`deliver_wakes`)."""
        require(items, list | tuple, "items")
        for index, item in enumerate(items):
            require(item, tuple, f"item {index}")
            if len(item) != 2:
                raise InvalidType(f"item {index} must be a (delivery, outbox id) pair")
            wire_bytes(item[0], ProcessWakeDelivery, f"item {index} delivery")
            require(item[1], str | bytes | type(None), f"item {index} outbox id")
        return await deliver_wakes(self, items)

    async def relay_outbox(self, process_id: str) -> int:
        """Finish every pending delivery intent of one process; returns how many
        were newly delivered. An intent that can never be delivered (an id that
        cannot be stored, a field that does not decode) is moved to the relay's
        dead-letter stream with the reason, so no pass ever stops on it."""
        keys = self.keys.process(process_id)
        entries: list[Any] = await self.command(
            "read wake intents", "xrange", keys.outbox, "-", "+"
        )
        delivered = 0
        fields = await self.record_fields(process_id) if entries else {}
        try:
            record = self.record_from_fields(fields) if fields else None
        except (LashStreamsError, ValueError, KeyError) as err:
            unreadable_row(process_id, err)  # its intents wait; the pass goes on
            return 0
        for entry_id, entry in entries:
            try:
                seq = int(entry[b"seq"])
                target = decode(entry[b"scope"], SessionScope)
                validate_scope("wake intent", target)
            except (KeyError, ValueError, LashStreamsError) as err:
                await self._dead_letter(process_id, entry_id, entry, err)
                continue
            events = await self.command("read event", "xrange", keys.events, f"{seq}-0", f"{seq}-0")
            if record is None or not events:
                await self.command("drop orphan intent", "xdel", keys.outbox, entry_id)
                continue
            try:
                event = event_from_entry(process_id, events[0])
            except (KeyError, ValueError, LashStreamsError) as err:
                await self._dead_letter(process_id, entry_id, entry, err)
                continue
            wake = build_wake_delivery(record, event, target)
            if wake is None:
                await self.command("drop empty intent", "xdel", keys.outbox, entry_id)
                continue
            delivered += int((await deliver_wakes(self, [(wake, entry_id)]))[0])
        return delivered

    async def _dead_letter(
        self, process_id: str, entry_id: bytes, entry: dict[bytes, bytes], err: Exception
    ) -> None:
        """Dead letter first, then drop the intent: a relay killed between the
        two leaves a duplicate letter, never a lost one."""
        reason = f"{type(err).__name__}: {err}"
        log.warning("process `%s`: wake intent %s dead-lettered (%s)", process_id, entry_id, reason)
        letter = {
            "process_id": process_id,
            "entry_id": entry_id,
            "seq": entry.get(b"seq", b""),
            "scope": entry.get(b"scope", b""),
            "reason": reason,
        }
        await self.command(
            "dead-letter wake intent",
            "xadd",
            self.keys.relay_dead_letters,
            letter,
            "*",
            RELAY_DEAD_LETTER_CAP,
            True,
        )
        await self.command(
            "drop dead-lettered intent", "xdel", self.keys.process(process_id).outbox, entry_id
        )
        if obs.hooks is not None:
            obs.hooks.relay_dead_lettered()

    async def relay_pending(self, chunk: int = _RELAY_CHUNK, *, full: bool = False) -> int:
        """Deliver the wake intents appenders left behind (they died between
        their two steps); returns how many were newly delivered. Visits the
        processes of the pending-outbox index: one ``XLEN`` each, and the
        intents' reads when there are some. ``full`` visits every known
        process instead (one pipelined ``XLEN`` per process, in chunks)."""
        delivered = 0
        for shard in range(self.keys.index_shards):
            if full:
                delivered += await self._relay_every_process(self.keys.index("all", shard), chunk)
            else:
                delivered += await self._relay_marked(self.keys.index("ob", shard))
        return delivered

    async def _relay_marked(self, index: str) -> int:
        marked: list[tuple[bytes, float]] = await self.command(
            "read pending outboxes", "zrange", index, 0, -1, False, True
        )
        delivered = 0
        for member, mark in marked:
            encoded = text(member)
            pid = decode_id(encoded)
            outbox = self.keys.process(pid).outbox
            if await self.command("count wake intents", "xlen", outbox):
                delivered += await self.relay_outbox(pid)
                if await self.command("count wake intents", "xlen", outbox):
                    continue  # dead-lettering failed or a new intent: next pass
            settle = functools.partial(
                self.scripts.settle_pending, keys=[index], args=[encoded, str(int(mark))]
            )
            await self.retry.idempotent("settle pending outbox", settle)
        return delivered

    async def _relay_every_process(self, index: str, chunk: int) -> int:
        delivered = 0
        start = "-"
        while True:
            members: list[bytes] = await self.command(
                "scan processes", "zrangebylex", index, start, "+", 0, chunk
            )
            if not members:
                return delivered
            pids = [text(m) for m in members]
            lengths = await self._outbox_lengths(pids)
            for pid, length in zip(pids, lengths, strict=True):
                if length:
                    delivered += await self.relay_outbox(pid)
            if len(members) < chunk:
                return delivered
            start = "(" + pids[-1]

    async def _outbox_lengths(self, pids: list[str]) -> list[int]:
        async def run() -> list[int]:
            pipe = self.redis.pipeline(transaction=False)
            for pid in pids:
                pipe.xlen(self.keys.process(pid).outbox)
            result: list[int] = await pipe.execute()
            return result

        return await self.retry.idempotent("read wake intents", run)
