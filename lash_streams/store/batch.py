"""Pipelined appends: many events, many processes, one round trip.

Every event is planned against the cached state with consecutive sequences
per process and committed by the same ``append_event`` script, so the batch
keeps full semantics. An item whose compare-and-set fails (another writer got
there first) and every later item of that process fall back to the ordinary
path, in order; nothing is duplicated because a failed CAS writes nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from lash_streams.errors import LashStreamsError
from lash_streams.model import ProcessEventAppendRequest, ProcessEventAppendResult
from lash_streams.store import delivery, worklist
from lash_streams.store.append import append, prepare, settle
from lash_streams.store.core import StoreCore, text


class BatchOps(StoreCore):
    async def append_events(
        self, items: Sequence[tuple[str, ProcessEventAppendRequest]]
    ) -> list[ProcessEventAppendResult]:
        """Append ``(process_id, request)`` items; results in input order.

        Items without a replay key are sent once (RX-18): if the connection
        drops mid-batch the call raises ``WriteOutcomeUnknown``."""
        if self.cluster:
            return await self._append_sequentially(items)
        states = {}
        for pid in dict.fromkeys(pid for pid, _ in items):
            states[pid] = await self.state(pid)
        next_seq = {pid: st.seq for pid, st in states.items()}
        batch_id = secrets.token_hex(8)
        links: dict[str, str] = {}
        planned: list[tuple[int, Any]] = []
        # Per process, the first item the pipeline did not (or could not) commit.
        stopped: dict[str, int] = {}
        pipe = self.redis.pipeline(transaction=False)
        for index, (pid, request) in enumerate(items):
            if pid in stopped:
                continue
            try:
                link = f"{batch_id}:{index}"
                plan, keys, args = prepare(
                    self,
                    pid,
                    request,
                    states[pid],
                    next_seq[pid],
                    requires_link=links.get(pid, ""),
                    leaves_link=link,
                )
            except LashStreamsError:
                stopped[pid] = index
                continue
            await self.scripts.append_event(keys=keys, args=args, client=pipe)
            next_seq[pid] += 1
            links[pid] = link
            planned.append((index, plan))
        keyed = all(request.replay is not None for _, request in items)
        replies: list[Any] = []
        if planned:

            async def run() -> list[Any]:
                result: list[Any] = await pipe.execute(raise_on_error=False)
                return result

            what = f"append a batch of {len(planned)} events"
            replies = await (
                self.retry.idempotent(what, run) if keyed else self.retry.once(what, run)
            )
        results: list[ProcessEventAppendResult | None] = [None] * len(items)
        terminal_at: dict[str, int] = {}
        deliveries: list[tuple[Any, bytes]] = []
        for (index, plan), reply in zip(planned, replies, strict=True):
            pid, request = items[index]
            if (
                index > stopped.get(pid, index)
                or isinstance(reply, Exception)
                or text(reply[0]) != "OK"
            ):
                stopped[pid] = min(stopped.get(pid, index), index)
                continue
            outcome = settle(self, pid, request, states[pid], plan, reply)
            assert isinstance(outcome, ProcessEventAppendResult)
            results[index] = outcome
            if plan.status_update is not None:
                terminal_at[pid] = int(reply[2])
            if outcome.wake_delivery is not None and reply[4]:
                deliveries.append((outcome.wake_delivery, reply[4]))
        for pid, at in terminal_at.items():
            await worklist.index_terminal(self, pid, at)
        await delivery.deliver_wakes(self, deliveries)
        for index, (pid, request) in enumerate(items):
            if results[index] is None:
                if stopped.get(pid) == index:
                    self.forget(pid)
                results[index] = await append(self, pid, request)
        return [r for r in results if r is not None]

    async def _append_sequentially(
        self, items: Sequence[tuple[str, ProcessEventAppendRequest]]
    ) -> list[ProcessEventAppendResult]:
        import asyncio

        by_process: dict[str, list[int]] = {}
        for index, (pid, _) in enumerate(items):
            by_process.setdefault(pid, []).append(index)
        results: list[ProcessEventAppendResult | None] = [None] * len(items)

        async def run(pid: str, indexes: list[int]) -> None:
            for index in indexes:
                results[index] = await append(self, pid, items[index][1])

        await asyncio.gather(*(run(pid, idx) for pid, idx in by_process.items()))
        return [r for r in results if r is not None]
