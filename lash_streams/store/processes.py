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

logger = logging.getLogger("lash_streams.store")


class ProcessOps(StoreCore):
    async def register_process(
        self, registration: ProcessRegistration, *, dispatch: bool = True
    ) -> ProcessRecord:
        """RG-2..RG-6, and a job that can start is queued for the workers of
        its kind (store/dispatch.py; ``dispatch=False``: it waits for a sweep
        or its start time). One atomic script call on a single server. On a
        cluster the index and the record live on different nodes, so the
        steps go one after the other: the id enters the worklist index before
        the record exists and again after (RX-2), so a concurrent prune can
        never leave a registered running process out of the index."""
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
            reply = await self._register_local(
                prepared, keys.record, script_args, target_key, dispatch
            )
        fields = pairs(reply)
        existing_hash = text(fields[b"hash"])
        if existing_hash != reg_hash:
            if self.cluster:  # a single server's script wrote nothing
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
            await dispatching.queue_ready(self, record)  # the script did it on a single server
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

    async def _register_local(
        self,
        prepared: ProcessRegistration,
        record_key: str,
        script_args: list[Any],
        target_key: str | None,
        dispatch_it: bool,
    ) -> list[Any]:
        """A single server: one script call does the record, its indexes and
        the dispatch hint atomically (register_local-5), so a registration is
        one round trip and a refused one (OOM) writes nothing."""
        ks, pid = self.keys, prepared.id
        stream = (
            ks.ready_stream(prepared.identity.kind)
            if dispatch_it and dispatching.runnable(prepared.disposition)
            else record_key
        )
        keys = [
            record_key,
            ks.index_of("all", pid),
            ks.index_of("run", pid),
            target_key or record_key,
            stream,
        ]
        args = [
            *script_args,
            pid,
            prepared.disposition.value,
            dispatching.READY_MAXLEN,
            dispatching.DISPATCH_GRACE_MS,
        ]
        reply: list[Any] = await self.retry.idempotent(
            f"register process `{pid}`",
            lambda: self.scripts.register_local(keys=keys, args=args),
        )
        return reply

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
        except ServerError as err:  # the record exists: only a hint is lost
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
