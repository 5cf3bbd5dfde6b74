"""Retention (PR-1..PR-5): prune terminal processes older than a cutoff.

Per process, one script deletes every key after re-checking the record's own
status and ``updated_at`` (index scores may lag behind post-terminal appends,
PR-5). Index and grant clean-up follow as idempotent steps; if the id was
registered again meanwhile, the index entry is put back (RX-2).
"""

from __future__ import annotations

from typing import Any

from lash_streams.model import ProcessPruneReport, SessionScope
from lash_streams.model._codec import decode
from lash_streams.store import worklist
from lash_streams.store.core import StoreCore, text


class RetentionOps(StoreCore):
    async def prune_terminal_processes(self, cutoff_epoch_ms: int) -> ProcessPruneReport:
        # Repair first: a terminal id still in the worklist becomes a candidate.
        await worklist.running_records(self)
        ks = self.keys
        candidates: list[bytes] = await self.retry.idempotent(
            "read prune index",
            lambda: self.redis.zrangebyscore(ks.index_terminal, "-inf", f"({cutoff_epoch_ms}"),
        )
        pruned_processes = 0
        pruned_events = 0
        for raw in candidates:
            pid = text(raw)
            keys = self.keys.process(pid)
            reply = await self._prune_one(pid, keys.all(), cutoff_epoch_ms)
            status = text(reply[0])
            if status == "YOUNG":
                await self.command(
                    "rescore prune index", "zadd", ks.index_terminal, {pid: int(reply[1])}
                )
                continue
            if status == "RUNNING":
                continue
            if status == "PRUNED":
                pruned_processes += 1
                pruned_events += int(reply[1])
                await self._drop_references(pid, text(reply[2]), reply[3:])
            await worklist.unindex(self, pid)
            self.forget(pid)
        return ProcessPruneReport(pruned_processes=pruned_processes, pruned_events=pruned_events)

    async def _prune_one(self, pid: str, keys: list[str], cutoff_epoch_ms: int) -> list[Any]:
        reply: list[Any] = await self.retry.idempotent(
            f"prune `{pid}`",
            lambda: self.scripts.prune_process(keys=keys, args=[cutoff_epoch_ms]),
        )
        return reply

    async def _drop_references(
        self, pid: str, wake_target_session: str, grant_scopes: list[bytes]
    ) -> None:
        for member in grant_scopes:
            scope = decode(member, SessionScope)
            key = self.keys.scope_grants(scope.id())
            await self.command("drop grant", "hdel", key, pid)
        if wake_target_session:
            key = self.keys.session_targets(wake_target_session)
            await self.retry.idempotent("drop wake target", lambda: self.redis.srem(key, pid))
