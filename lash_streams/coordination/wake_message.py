"""One delivery in a consumer's hands, and how it is settled (docs/wakes.md):
exactly once, as ``ack``, ``nack`` or ``dead_letter``; ``async with`` acks on
success and nacks on an exception."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

from lash_streams.errors import AlreadySettled, LashStreamsError
from lash_streams.model import ProcessWakeDelivery


class Settler(Protocol):
    """What a message settles through (``WakeConsumer``)."""

    @property
    def store(self) -> Any: ...
    async def ack(self, messages: Sequence[WakeMessage]) -> list[bool]: ...
    async def nack(self, messages: Sequence[WakeMessage], delay: float = 0.0) -> None: ...
    async def dead_letter(self, message: WakeMessage, reason: str) -> None: ...


@dataclass(slots=True, eq=False)
class WakeMessage:
    """One delivery handed to this consumer; settle it exactly once."""

    delivery: ProcessWakeDelivery
    scope_id: str
    entry_id: str
    attempts: int
    _consumer: Settler = field(repr=False)
    #: How it was settled: "ack", "nack", "dead", None while in hand, or "lost"
    #: (a fleet pod lost the scope; settling it is then a no-op).
    settled: str | None = None
    #: Monotonic time it was handed out (the unsettled warning, wake_settle.py).
    handed_at: float = field(default=0.0, repr=False)
    warned: bool = field(default=False, repr=False)

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
        await self._consumer.dead_letter(self, reason)

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
