"""Handle grants and session deletion (GR-1..GR-3, SD-1..SD-4).

A grant lives in its scope's hash (the source of truth, one slot per scope);
the process keeps a reverse set of scope JSONs so prune and
``handle_grants_for_process`` can find it. Writes go reverse-index first, so
an interrupted write leaves at most a reverse entry without a grant, which
readers verify against the scope hash and ignore.
"""

from __future__ import annotations

import contextlib
from typing import Any

from lash_streams.errors import GrantMissing, UnknownProcess
from lash_streams.model import (
    ProcessHandleDescriptor,
    ProcessHandleGrant,
    ProcessRecord,
    ProcessSessionDeleteReport,
    SessionScope,
)
from lash_streams.model._codec import decode, encode
from lash_streams.store.core import StoreCore, text
from lash_streams.store.facets import set_facet


class GrantOps(StoreCore):
    async def grant_handle(
        self, session_scope: SessionScope, process_id: str, descriptor: ProcessHandleDescriptor
    ) -> ProcessHandleGrant:
        """GR-1: upsert per (scope id, process id)."""
        await self.require_exists(process_id)
        grant = ProcessHandleGrant(
            session_id=session_scope.session_id, process_id=process_id, descriptor=descriptor
        )
        scope_id = session_scope.id()
        pkeys = self.keys.process(process_id)
        scope_json = encode(session_scope)
        await self.retry.idempotent(
            "index grant", lambda: self.redis.sadd(pkeys.grants, scope_json)
        )
        grant_json = encode(grant)
        await self.retry.idempotent(
            "write grant",
            lambda: self.redis.hset(self.keys.scope_grants(scope_id), process_id, grant_json),
        )
        await self.retry.idempotent(
            "index session scope",
            lambda: self.redis.sadd(self.keys.session_scopes(session_scope.session_id), scope_json),
        )
        return grant

    async def revoke_handle(self, session_scope: SessionScope, process_id: str) -> None:
        """GR-1: no-op when absent."""
        scope_id = session_scope.id()
        await self.retry.idempotent(
            "revoke grant",
            lambda: self.redis.hdel(self.keys.scope_grants(scope_id), process_id),
        )
        await self.retry.idempotent(
            "unindex grant",
            lambda: self.redis.srem(self.keys.process(process_id).grants, encode(session_scope)),
        )

    async def transfer_handle_grants(
        self, from_scope: SessionScope, to_scope: SessionScope, process_ids: list[str]
    ) -> None:
        """GR-2: all ids must be granted to ``from`` or nothing changes."""
        if not process_ids:
            return
        from_key = self.keys.scope_grants(from_scope.id())
        rows: list[bytes | None] = await self.retry.idempotent(
            "read grants", lambda: self.redis.hmget(from_key, list(process_ids))
        )
        for pid, row in zip(process_ids, rows, strict=True):
            if row is None:
                raise GrantMissing(
                    f"process handle `{pid}` is not granted to session `{from_scope.session_id}`",
                    process_id=pid,
                )
        for pid, row in zip(process_ids, rows, strict=True):
            assert row is not None
            grant = decode(row, ProcessHandleGrant)
            await self.grant_handle(to_scope, pid, grant.descriptor)
            await self.revoke_handle(from_scope, pid)

    async def list_handle_grants(
        self, session_scope: SessionScope
    ) -> list[tuple[ProcessHandleGrant, ProcessRecord]]:
        """GR-3: grants joined with records, ascending process id."""
        key = self.keys.scope_grants(session_scope.id())
        rows: dict[bytes, bytes] = await self.retry.idempotent(
            "read grants", lambda: self.redis.hgetall(key)
        )
        grants = {text(pid): decode(row, ProcessHandleGrant) for pid, row in rows.items()}
        records = await self.gather_records(sorted(grants, key=str.encode))
        return [(grants[r.id], r) for r in records]

    async def list_live_handle_grants(
        self, session_scope: SessionScope
    ) -> list[tuple[ProcessHandleGrant, ProcessRecord]]:
        return [e for e in await self.list_handle_grants(session_scope) if not e[1].is_terminal()]

    async def has_handle_grant(self, session_scope: SessionScope, process_id: str) -> bool:
        key = self.keys.scope_grants(session_scope.id())
        row = await self.retry.idempotent("read grant", lambda: self.redis.hget(key, process_id))
        return row is not None and bool(await self.record_fields(process_id))

    async def _grant_scopes(self, process_id: str) -> list[tuple[SessionScope, ProcessHandleGrant]]:
        members: set[bytes] = await self.retry.idempotent(
            "read grant index",
            lambda: self.redis.smembers(self.keys.process(process_id).grants),
        )
        scopes = [decode(m, SessionScope) for m in members]
        found: list[tuple[SessionScope, ProcessHandleGrant]] = []
        for scope in scopes:
            key = self.keys.scope_grants(scope.id())
            row = await self.command("read grant", "hget", key, process_id)
            if row is not None:
                found.append((scope, decode(row, ProcessHandleGrant)))
        return found

    async def handle_grants_for_process(self, process_id: str) -> list[ProcessHandleGrant]:
        """GR-3: sorted by session id."""
        await self.require_exists(process_id)
        grants = [g for _, g in await self._grant_scopes(process_id)]
        return sorted(grants, key=lambda g: (g.session_id.encode(), g.process_id.encode()))

    async def delete_session_process_state(self, session_id: str) -> ProcessSessionDeleteReport:
        """SD-1..SD-3: revoke every grant of the session's scopes, detach wake
        targets; never cancels or appends, never removes wake acks."""
        scopes_key = self.keys.session_scopes(session_id)
        members: set[bytes] = await self.retry.idempotent(
            "read session scopes", lambda: self.redis.smembers(scopes_key)
        )
        revoked = 0
        touched: set[str] = set()
        for member in members:
            scope = decode(member, SessionScope)
            key = self.keys.scope_grants(scope.id())
            rows: dict[bytes, bytes] = await self.command("read grants", "hgetall", key)
            for pid_raw in rows:
                pid = text(pid_raw)
                await self.revoke_handle(scope, pid)
                revoked += 1
                touched.add(pid)
        orphaned: list[str] = []
        preserved: list[str] = []
        for record in await self.gather_records(sorted(touched)):
            if record.is_terminal():
                continue
            remaining = await self._grant_scopes(record.id)
            (preserved if remaining else orphaned).append(record.id)
        targets_key = self.keys.session_targets(session_id)
        targets: set[bytes] = await self.retry.idempotent(
            "read wake targets", lambda: self.redis.smembers(targets_key)
        )
        for pid_raw in targets:
            pid = text(pid_raw)
            with contextlib.suppress(UnknownProcess):
                await set_facet(self, pid, "clear_wake_target", session_id)
            self.forget(pid)
        await self.retry.idempotent(
            "drop session index",
            lambda: (
                self.redis.delete(scopes_key, targets_key)
                if not self.cluster
                else _delete_each(self.redis, scopes_key, targets_key)
            ),
        )
        return ProcessSessionDeleteReport(
            session_id=session_id,
            revoked_handle_count=revoked,
            deleted_wake_count=0,
            orphaned_process_ids=sorted(set(orphaned), key=str.encode),
            preserved_process_ids=sorted(set(preserved), key=str.encode),
        )


async def _delete_each(client: Any, *keys: str) -> int:
    total = 0
    for key in keys:
        total += int(await client.delete(key))
    return total


__all__ = ["GrantOps"]
