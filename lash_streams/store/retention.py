"""Retention (PR-1..PR-5): prune terminal processes older than a cutoff.

Per process, one script deletes every key after re-checking the record's own
status and ``updated_at`` (index scores may lag behind post-terminal appends,
PR-5), except the reverse grant index: it stays as the intent of the
scope-side clean-up, and every prune pass over the id (whatever the script
answers) finishes what is left of it (``grant_rows.finish``). Grant rows are
stamped with the process's incarnation, so none applies to a later process
under the same id even before that clean-up. The index entry goes last: a
pruner killed at any step leaves the id in the prune index, and the next pass
finishes the work. If the id was registered again meanwhile, its index
entries and wake target are put back (RX-2).
"""

from __future__ import annotations

import functools
from typing import Any

from lash_streams.model import ProcessPruneReport
from lash_streams.semantics.inputs import require_u64
from lash_streams.store import grant_rows, worklist
from lash_streams.store.core import StoreCore, text


class RetentionOps(StoreCore):
    async def prune_terminal_processes(self, cutoff_epoch_ms: int) -> ProcessPruneReport:
        require_u64(cutoff_epoch_ms, "cutoff_epoch_ms")
        # Repair first: a terminal id still in the worklist becomes a candidate.
        await worklist.running_records(self)
        ks = self.keys
        candidates: list[bytes] = []
        for index in ks.indexes("term"):
            read = functools.partial(self.redis.zrangebyscore, index, "-inf", f"({cutoff_epoch_ms}")
            candidates += await self.retry.idempotent("read prune index", read)
        pruned_processes = 0
        pruned_events = 0
        for raw in candidates:
            pid = text(raw)
            keys = self.keys.process(pid)
            reply = await self._prune_one(pid, keys.all(), cutoff_epoch_ms)
            status = text(reply[0])
            await grant_rows.finish(self, pid, reply[3:])
            if status == "YOUNG":
                await self.command(
                    "rescore prune index", "zadd", ks.index_of("term", pid), {pid: int(reply[1])}
                )
                continue
            if status == "RUNNING":
                continue
            if status == "PRUNED":
                pruned_processes += 1
                pruned_events += int(reply[1])
                await self._drop_wake_target(pid, text(reply[2]))
            await worklist.unindex(self, pid)
            self.forget(pid)
        return ProcessPruneReport(pruned_processes=pruned_processes, pruned_events=pruned_events)

    async def _prune_one(self, pid: str, keys: list[str], cutoff_epoch_ms: int) -> list[Any]:
        reply: list[Any] = await self.retry.idempotent(
            f"prune `{pid}`",
            lambda: self.scripts.prune_process(keys=keys, args=[cutoff_epoch_ms]),
        )
        return reply

    async def _drop_wake_target(self, pid: str, session_id: str) -> None:
        """Unindex the pruned process from its wake-target session; put it back
        if the id was registered again with a target in that session. (A
        pruner killed before this leaves an entry that session deletion
        ignores and removes: ``clear_wake_target`` checks the session.)"""
        if not session_id:
            return
        key = self.keys.session_targets(session_id)
        await self.retry.idempotent("drop wake target", lambda: self.redis.srem(key, pid))
        fields = await self.record_fields(pid)
        if text(fields.get(b"wts")) == session_id:
            await self.retry.idempotent("index wake target", lambda: self.redis.sadd(key, pid))
