"""Registration, the record's mutable facets, and record reads (RG-*, ST-*,
AB-3, WS-*, XR-1, RD-4..RD-6)."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from lash_streams.errors import (
    ExternalRefConflict,
    RegistrationConflict,
    ServerError,
    TerminalRejectsAbandonRequest,
    TerminalRejectsWait,
    UnknownProcess,
)
from lash_streams.ids import id_bytes
from lash_streams.model import (
    AbandonRequest,
    ProcessExternalRef,
    ProcessListFilter,
    ProcessRecord,
    ProcessRegistration,
    ProcessStarted,
    ProcessStatusFilter,
    WaitState,
)
from lash_streams.model._codec import encode
from lash_streams.semantics.inputs import require_u64, wire_bytes
from lash_streams.semantics.registration import prepare_registration_json
from lash_streams.store import dispatch as dispatching
from lash_streams.store import worklist
from lash_streams.store.core import StoreCore, text
from lash_streams.store.facets import pairs, record_reply, set_facet
from lash_streams.store.scripts import is_noscript

logger = logging.getLogger("lash_streams.store")


class ProcessOps(StoreCore):
    async def register_process(
        self, registration: ProcessRegistration, *, dispatch: bool = True
    ) -> ProcessRecord:
        """RG-2..RG-6, and a job that can start is queued for the workers of
        its kind (store/dispatch.py; ``dispatch=False``: it waits for a sweep
        or its start time). The id enters the worklist index before the record exists
        and again after (RX-2), so a concurrent prune can never leave a
        registered running process out of the index. One pipelined round trip
        on a single server; on a cluster the index and the record live on
        different nodes, so the steps go one after the other."""
        prepared, reg_json, reg_hash = prepare_registration_json(registration)
        pid = prepared.id
        keys = self.keys.process(pid)
        wake_target = prepared.wake_target
        wt_json = encode(wake_target) if wake_target is not None else b""
        wt_session = wake_target.session_id if wake_target is not None else ""
        token = secrets.token_hex(8)  # with `created`, this incarnation's name (grants)
        script_args = [reg_json, reg_hash, wt_json, wt_session, token]
        target_key = (
            self.keys.session_targets(wake_target.session_id) if wake_target is not None else None
        )
        if self.cluster:
            reply = await self._register_stepwise(pid, keys.record, script_args, target_key)
        else:
            reply = await self._register_pipelined(
                prepared, keys.record, script_args, target_key, dispatch
            )
        fields = pairs(reply)
        existing_hash = text(fields[b"hash"])
        if existing_hash != reg_hash:
            await self._undo_indexing(pid, fields, target_key)
            raise RegistrationConflict(
                f"process `{pid}` registration hash conflict: existing {existing_hash}, "
                f"new {reg_hash}",
                process_id=pid,
            )
        if text(fields[b"hash"]) not in self._registrations:
            self.know_registration(reg_hash, prepared)  # the hash matched: the same value
        self.remember(pid, fields)
        record = self.record_from_fields(fields)
        if record.is_terminal():
            await worklist.index_terminal(self, pid, record.updated_at_ms)
        elif dispatch and self.cluster and text(reply[0]) == "CREATED":
            await dispatching.queue_ready(self, record)  # the pipeline did it on a single server
        return record

    async def _undo_indexing(
        self, pid: str, fields: dict[bytes, bytes], target_key: str | None
    ) -> None:
        """A conflicting registration wrote nothing to the record, but indexed
        the id as running and under its wake target's session before the
        record step refused it: put the stored record's own state back."""
        if text(fields.get(b"term") or b"") == "1":
            await worklist.index_terminal(self, pid, int(fields.get(b"updated") or 0))
        stored = text(fields.get(b"wts") or b"")
        own = self.keys.session_targets(stored) if stored else None
        if target_key is not None and target_key != own:
            await self.retry.idempotent(
                "unindex wake target", lambda: self.redis.srem(target_key, pid)
            )

    async def _register_pipelined(
        self,
        prepared: ProcessRegistration,
        record_key: str,
        script_args: list[Any],
        target_key: str | None,
        dispatch_it: bool,
    ) -> list[Any]:
        ks, pid = self.keys, prepared.id

        async def run() -> list[Any]:
            index_all, index_run = ks.index_of("all", pid), ks.index_of("run", pid)
            pipe = self.redis.pipeline(transaction=False)
            pipe.zadd(index_all, {pid: 0})
            pipe.zadd(index_run, {pid: 0})
            if target_key is not None:
                pipe.sadd(target_key, pid)
            await self.scripts.register_process(keys=[record_key], args=script_args, client=pipe)
            pipe.zadd(index_all, {pid: 0})
            pipe.zadd(index_run, {pid: 0})
            # Dispatch in the same round trip, after the record (a hint: a
            # lost one leaves the job to a sweep pass).
            queued = dispatch_it and await dispatching.queue_in_pipeline(
                self, pipe, prepared, record_key
            )
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            at = len(replies) - (4 if queued else 3)
            reply = replies[at]
            if is_noscript(reply):  # the server lost its scripts: the record step did not run
                reply = await self.scripts.register_process(keys=[record_key], args=script_args)
                await worklist.index_running(self, pid)  # again after the record (RX-2)
            if isinstance(reply, Exception) and not is_noscript(reply):
                # Refused (OOM, ...): nothing of the record was written; take
                # the id back out of the indexes it entered first (RX-2-safe).
                await self._unindex_refused(pid, record_key, target_key)
            for other in replies[: at + 1]:
                if isinstance(other, Exception) and not is_noscript(other):
                    raise other
            # The record exists: a refused repeat of the index adds or of the
            # dispatch hint (OOM at the edge of maxmemory) must not report the
            # registration as failed. The first index adds are in; a sweep
            # dispatches the job.
            for other in replies[at + 1 :]:
                if isinstance(other, Exception) and not is_noscript(other):
                    logger.warning("register `%s`: a step after the record failed: %s", pid, other)
            result: list[Any] = reply
            return result

        return await self.retry.idempotent(f"register process `{pid}`", run)

    async def _unindex_refused(self, pid: str, record_key: str, target_key: str | None) -> None:
        try:
            await worklist.unindex(self, pid)  # puts it back if a record exists after all
            if target_key is not None and not await self.redis.exists(record_key):
                await self.redis.srem(target_key, pid)
        except Exception as err:  # a hint left behind is dropped by readers
            logger.warning("register `%s`: could not take the refused id out: %s", pid, err)

    async def _register_stepwise(
        self, pid: str, record_key: str, script_args: list[Any], target_key: str | None
    ) -> list[Any]:
        await worklist.index_running(self, pid)
        if target_key is not None:
            await self.retry.idempotent(
                "index wake target", lambda: self.redis.sadd(target_key, pid)
            )
        reply: list[Any] = await self.retry.idempotent(
            f"register process `{pid}`",
            lambda: self.scripts.register_process(keys=[record_key], args=script_args),
        )
        try:
            await worklist.index_running(self, pid)
        except ServerError as err:  # the record exists (see _register_pipelined)
            logger.warning("register `%s`: the index step after the record failed: %s", pid, err)
        return reply

    # -- facets ----------------------------------------------------------------

    async def set_external_ref(
        self, process_id: str, external_ref: ProcessExternalRef
    ) -> ProcessRecord:
        """XR-1: set once; identical repeat returns the record unchanged."""
        new = wire_bytes(external_ref, ProcessExternalRef, "external_ref")
        reply = await set_facet(self, process_id, "external_ref", new)
        if text(reply[0]) == "CONFLICT":
            raise ExternalRefConflict(
                f"process `{process_id}` external ref conflict: existing {text(reply[1])}, "
                f"new {new.decode()}",
                process_id=process_id,
            )
        return record_reply(self, reply)

    async def record_first_started(
        self, process_id: str, started: ProcessStarted, *, lease: Any = None
    ) -> ProcessRecord:
        """ST-2: first writer wins. ``lease`` fences it (ST-5, RX-12)."""
        data = wire_bytes(started, ProcessStarted, "started")
        reply = await set_facet(self, process_id, "first_started", data, lease)
        return record_reply(self, reply)

    async def request_process_abandon(
        self, process_id: str, request: AbandonRequest
    ) -> ProcessRecord:
        """AB-3: terminal rejects; the first request stands."""
        data = wire_bytes(request, AbandonRequest, "request")
        reply = await set_facet(self, process_id, "abandon_request", data)
        if text(reply[0]) == "TERMINAL":
            raise TerminalRejectsAbandonRequest(
                f"terminal process `{process_id}` cannot accept an abandon request",
                process_id=process_id,
            )
        await worklist.rescore(self, process_id, 0)  # a sweep acts on it now
        return record_reply(self, reply)

    async def set_process_wait(self, process_id: str, wait: WaitState) -> ProcessRecord:
        reply = await set_facet(self, process_id, "set_wait", wire_bytes(wait, WaitState, "wait"))
        if text(reply[0]) == "TERMINAL":
            raise TerminalRejectsWait(
                f"terminal process `{process_id}` cannot enter a wait state",
                process_id=process_id,
            )
        return record_reply(self, reply)

    async def clear_process_wait(self, process_id: str) -> ProcessRecord:
        return record_reply(self, await set_facet(self, process_id, "clear_wait", b""))

    async def ack_wake(self, process_id: str, sequence: int) -> None:
        """WA-2: idempotent marker; does not check the sequence."""
        require_u64(sequence, "sequence")
        keys = self.keys.process(process_id)
        reply = await self.retry.idempotent(
            f"ack wake {process_id}#{sequence}",
            lambda: self.scripts.ack_wake(keys=[keys.record, keys.acks], args=[sequence]),
        )
        if text(reply) == "NOPROC":
            raise UnknownProcess(process_id)

    # -- reads -----------------------------------------------------------------

    async def get_process(self, process_id: str) -> ProcessRecord | None:
        """RD-4: none for unknown ids, never an error."""
        fields = await self.record_fields(process_id)
        return self.record_from_fields(fields) if fields else None

    async def list_non_terminal(self) -> list[ProcessRecord]:
        """RD-6 / SW-2: running records ascending by id (repairs the worklist)."""
        return await worklist.running_records(self)

    async def due_records(self) -> tuple[int, list[ProcessRecord]]:
        """The server time and the running records a sweep is due to look at
        then (lapsed or released leases, never-claimed rows), ascending by id:
        what one pass of ``Recovery.run`` reads (store/worklist.py)."""
        return await worklist.due_records(self)

    async def defer_sweep(self, process_id: str, due_at_ms: int) -> None:
        """Have due passes look at a running row again only from ``due_at_ms``
        (server milliseconds). A hint: the next lease write on the row sets it
        again, and ``sweep_once`` reads every row whatever it says."""
        id_bytes("process id", process_id)
        await worklist.rescore(self, process_id, require_u64(due_at_ms, "due_at_ms"))

    async def list_processes(self, filter: ProcessListFilter | None = None) -> list[ProcessRecord]:
        """RD-5: status (default running), definition, waiting; ascending id."""
        if filter is not None:
            wire_bytes(filter, ProcessListFilter, "filter")
        flt = filter or ProcessListFilter()
        if flt.status == ProcessStatusFilter.RUNNING:
            records = await self.list_non_terminal()
        else:
            ids = await worklist.members(self, "all")
            records = await self.gather_records(ids)
        matched = [r for r in records if flt.matches_record(r)]
        return sorted(matched, key=lambda r: r.id.encode())
