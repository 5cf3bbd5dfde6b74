"""How a wake consumer settles deliveries (docs/wakes.md): acks, nacks and
dead letters through ``settle_wakes-1n.lua``, which checks the owner in the
group's pending list, and the background touch that keeps deliveries in hand
from being claimed. A base of ``WakeConsumer``: it owns the state named here."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from lash_streams import observability as obs
from lash_streams.coordination.wake_message import WakeMessage
from lash_streams.coordination.wake_streams import text
from lash_streams.errors import LashStreamsError
from lash_streams.store.retry import TRANSIENT

if TYPE_CHECKING:
    from lash_streams.store import Store

#: Dead-letter streams keep at most about this many entries per scope.
DEAD_LETTER_CAP = 10_000

log = logging.getLogger("lash_streams.wakes")


class Settling:
    store: Store
    group: str
    consumer: str
    claim_idle_ms: int
    _in_flight: dict[tuple[str, str], WakeMessage]
    _acked_streams: set[str]
    _next_claim: float
    _closed: bool
    #: In hand at least this long (and 10 claim times) before the warning.
    unsettled_warn_s: float = 300.0

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
                self._warn_if_forgotten(message)
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

    def _warn_if_forgotten(self, message: WakeMessage) -> None:
        """A delivery in hand much longer than the claim time may be a
        forgotten settle (issue 16: nothing said so, and the wake stayed this
        consumer's for ever); a long handler is told once, so it is cheap."""
        held = time.monotonic() - message.handed_at
        if message.warned or held < max(self.unsettled_warn_s, 10 * self.claim_idle_ms / 1000):
            return
        message.warned = True
        log.warning(
            "wake consumer `%s` of `%s`: delivery %s of `%s` has been in hand for %.0f s "
            "without ack(), nack() or dead_letter(); it stays this consumer's (no other "
            "takes it) until settled or this consumer closes",
            self.consumer,
            self.group,
            message.entry_id,
            message.scope_id,
            held,
        )

    async def dead_letter(self, message: WakeMessage, reason: str) -> None:
        """Move ``message`` to its scope's dead-letter stream (``message.dead_letter``)."""
        await self._dead_letter(message.scope_id, message.entry_id, None, message, reason)

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
            wid = text(fields.get(b"wid", b""))
            markers = [self.store.keys.wake_dedupe(scope_id, wid)] if wid else []
            await self._settle_ids("ack", stream, [entry_id], markers=markers)
        log.warning("wake entry %s of `%s` dead-lettered: %s", entry_id, scope_id, reason)
        if obs.hooks is not None:
            obs.hooks.dead_lettered(self.group)
