"""Handle grants and session deletion (GR-1..GR-3, SD-1..SD-4).

A grant lives in its scope's hash (the source of truth, one slot per scope);
the process keeps a reverse set of scope JSONs so prune and
``handle_grants_for_process`` can find it. Both are stamped with the
process's incarnation (``grant_rows``), so a grant never outlives the process
it was written for: after prune and re-registration of the same id, every
reader treats the old rows as absent and deletes them.

A grant is three writes in three slots, ordered so that an interruption
leaves only state readers ignore (docs/atomicity.md): the reverse index entry
(with the existence check, one script in the process's slot), the session's
scope index, and last the scope row, the one write that makes the grant
visible. A revoke deletes the row first, then the reverse entry.
"""

from __future__ import annotations

import contextlib
import functools
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
from lash_streams.semantics.inputs import require, wire_bytes
from lash_streams.semantics.registration import validate_scope
from lash_streams.store import grant_rows
from lash_streams.store.core import StoreCore, text
from lash_streams.store.facets import set_facet
from lash_streams.store.grant_rows import UNSTAMPED, Fields
from lash_streams.store.keys import encode_id


class GrantOps(StoreCore):
    async def grant_handle(
        self, session_scope: SessionScope, process_id: str, descriptor: ProcessHandleDescriptor
    ) -> ProcessHandleGrant:
        """GR-1: upsert per (scope id, process id)."""
        validate_scope("grant scope", session_scope)  # its id keys the scope's rows
        wire_bytes(descriptor, ProcessHandleDescriptor, "descriptor")
        grant = await self._grant(session_scope, process_id, descriptor, UNSTAMPED)
        if grant is None:
            raise UnknownProcess(process_id)
        return grant

    async def _grant(
        self,
        session_scope: SessionScope,
        process_id: str,
        descriptor: ProcessHandleDescriptor,
        expected: bytes,
    ) -> ProcessHandleGrant | None:
        """Write a grant for the process's current incarnation (``expected``,
        when given, must be it); None when the process is gone or is another
        incarnation."""
        grant = ProcessHandleGrant(
            session_id=session_scope.session_id, process_id=process_id, descriptor=descriptor
        )
        pkeys = self.keys.process(process_id)
        scope_json = encode(session_scope)
        index = self.scripts.grant_index
        reply: list[Any] = await self.retry.idempotent(
            "index grant",
            lambda: index(keys=[pkeys.record, pkeys.grants], args=[scope_json, expected]),
        )
        if text(reply[0]) != "OK":
            return None
        inc: bytes = reply[1]
        await self.retry.idempotent(
            "index session scope",
            lambda: self.redis.sadd(self.keys.session_scopes(session_scope.session_id), scope_json),
        )
        row = grant_rows.stamped(inc, encode(grant))
        await self.retry.idempotent(
            "write grant",
            lambda: self.redis.hset(self.keys.scope_grants(session_scope.id()), process_id, row),
        )
        return grant

    async def revoke_handle(self, session_scope: SessionScope, process_id: str) -> None:
        """GR-1: no-op when absent."""
        validate_scope("session_scope", session_scope)
        pkeys = self.keys.process(process_id)
        found: list[bytes | None] = await self.retry.idempotent(
            "read process incarnation", lambda: self.redis.hmget(pkeys.record, "inc", "created")
        )
        inc = found[0] or found[1]
        await self.retry.idempotent(
            "revoke grant",
            lambda: self.redis.hdel(self.keys.scope_grants(session_scope.id()), process_id),
        )
        if inc is None:
            return  # pruned: what is left of its index is prune's intent
        scope_json = encode(session_scope)
        await self.retry.idempotent(
            "unindex grant",
            lambda: self.redis.srem(pkeys.grants, grant_rows.stamped(inc, scope_json), scope_json),
        )

    async def transfer_handle_grants(
        self, from_scope: SessionScope, to_scope: SessionScope, process_ids: list[str]
    ) -> None:
        """GR-2: all ids must be granted to ``from`` or nothing changes; from
        and to the same scope keeps the grants."""
        validate_scope("from_scope", from_scope)
        require(process_ids, list | tuple, "process_ids")
        validate_scope("to_scope", to_scope)
        for pid in process_ids:
            self.keys.process(pid)  # checks the id before anything is read or moved
        if not process_ids:
            return
        ids = list(dict.fromkeys(process_ids))
        from_id = from_scope.id()
        from_key = self.keys.scope_grants(from_id)
        raw: list[bytes | None] = await self.retry.idempotent(
            "read grants", lambda: self.redis.hmget(from_key, ids)
        )
        rows = {pid: row for pid, row in zip(ids, raw, strict=True) if row is not None}
        live, stale = await grant_rows.sort_rows(self, from_scope, rows)
        await grant_rows.drop_rows(self, from_id, stale)
        by_pid = {row.process_id: row for row in live}
        for pid in process_ids:
            if pid not in by_pid:
                raise GrantMissing(
                    f"process handle `{pid}` is not granted to session `{from_scope.session_id}`",
                    process_id=pid,
                )
        if to_scope.id() == from_id:
            return
        for pid in ids:
            row = by_pid[pid]
            inc = grant_rows.incarnation(row.fields)
            moved = await self._grant(to_scope, pid, row.grant.descriptor, inc)
            if moved is None:
                # Pruned (and perhaps registered again) since the check: the
                # grant in `from` is stale, and is not carried to a new process.
                await grant_rows.drop_row(self, from_id, pid, row.stamp)
                continue
            await self.revoke_handle(from_scope, pid)

    async def list_handle_grants(
        self, session_scope: SessionScope
    ) -> list[tuple[ProcessHandleGrant, ProcessRecord]]:
        """GR-3: grants joined with records, ascending process id."""
        validate_scope("session_scope", session_scope)
        scope_id = session_scope.id()
        key = self.keys.scope_grants(scope_id)
        rows: dict[bytes, bytes] = await self.retry.idempotent(
            "read grants", lambda: self.redis.hgetall(key)
        )
        live, stale = await grant_rows.sort_rows(
            self, session_scope, {text(pid): row for pid, row in rows.items()}
        )
        await grant_rows.drop_rows(self, scope_id, stale)
        return [(row.grant, self.record_from_fields(row.fields)) for row in live]

    async def list_live_handle_grants(
        self, session_scope: SessionScope
    ) -> list[tuple[ProcessHandleGrant, ProcessRecord]]:
        return [e for e in await self.list_handle_grants(session_scope) if not e[1].is_terminal()]

    async def has_handle_grant(self, session_scope: SessionScope, process_id: str) -> bool:
        validate_scope("session_scope", session_scope)
        self.keys.process(process_id)  # checks the id before it is sent
        scope_id = session_scope.id()
        key = self.keys.scope_grants(scope_id)
        row = await self.retry.idempotent("read grant", lambda: self.redis.hget(key, process_id))
        if row is None:
            return False
        live, stale = await grant_rows.sort_rows(self, session_scope, {process_id: row})
        await grant_rows.drop_rows(self, scope_id, stale)
        return bool(live)

    async def _grant_scopes(
        self, process_id: str, fields: Fields
    ) -> list[tuple[SessionScope, ProcessHandleGrant]]:
        return await grant_rows.process_grants(self, process_id, fields)

    async def handle_grants_for_process(self, process_id: str) -> list[ProcessHandleGrant]:
        """GR-3: sorted by session id."""
        fields = await self.record_fields(process_id)
        if not fields:
            raise UnknownProcess(process_id)
        grants = [g for _, g in await self._grant_scopes(process_id, fields)]
        return sorted(grants, key=lambda g: (g.session_id.encode(), g.process_id.encode()))

    async def _delete_session_wakes(self, session_id: str) -> None:
        """RX-19: the session's inbox goes with it: the wake streams of its
        scopes (the session's and its frames'), with their consumer groups,
        dead letters, coalescing markers and fleet scope leases. Found by a
        SCAN of the namespace's wake keys (session deletion is rare; no index
        is kept per delivery). Lash's ``deleted_wake_count`` stays 0 (SD-1)."""
        session = encode_id(SessionScope(session_id=session_id).id())
        frames = encode_id(SessionScope(session_id=session_id, agent_frame_id="-").id())[:-1]
        prefix = f"{self.keys.namespace}:w:{{"
        for client in self.primary_clients():
            for pattern in (f"{prefix}{session}}}*", f"{prefix}{frames}*"):
                await self.retry.idempotent(
                    "delete session wakes", functools.partial(_scan_delete, client, pattern)
                )

    async def delete_session_process_state(self, session_id: str) -> ProcessSessionDeleteReport:
        """SD-1..SD-3: revoke every grant of the session's scopes, detach wake
        targets; never cancels or appends, never removes wake acks."""
        scopes_key = self.keys.session_scopes(session_id)
        members: set[bytes] = await self.retry.idempotent(
            "read session scopes", lambda: self.redis.smembers(scopes_key)
        )
        revoked = 0
        touched: dict[str, Fields] = {}
        for member in members:
            scope = decode(member, SessionScope)
            scope_id = scope.id()
            key = self.keys.scope_grants(scope_id)
            rows: dict[bytes, bytes] = await self.command("read grants", "hgetall", key)
            live, stale = await grant_rows.sort_rows(
                self, scope, {text(pid): row for pid, row in rows.items()}
            )
            await grant_rows.drop_rows(self, scope_id, stale)
            for row in live:
                await self.revoke_handle(scope, row.process_id)
                revoked += 1
                touched[row.process_id] = row.fields
        orphaned: list[str] = []
        preserved: list[str] = []
        current = await grant_rows.read_records(self, sorted(touched))
        for pid, fields in current.items():
            if not fields or self.record_from_fields(fields).is_terminal():
                continue
            remaining = await self._grant_scopes(pid, fields)
            (preserved if remaining else orphaned).append(pid)
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
        await self._delete_session_wakes(session_id)
        return ProcessSessionDeleteReport(
            session_id=session_id,
            revoked_handle_count=revoked,
            deleted_wake_count=0,
            orphaned_process_ids=sorted(set(orphaned), key=str.encode),
            preserved_process_ids=sorted(set(preserved), key=str.encode),
        )


async def _scan_delete(client: Any, pattern: str) -> int:
    deleted = 0
    async for key in client.scan_iter(match=pattern, count=1_000):
        deleted += int(await client.delete(key))
    return deleted


async def _delete_each(client: Any, *keys: str) -> int:
    total = 0
    for key in keys:
        total += int(await client.delete(key))
    return total


__all__ = ["GrantOps"]
