"""The append path (EV-2, RX-3, RX-4) and event reads (RD-1..RD-3, WA-1).

Validation and materialization run here, in the client, against the cached
registration; the ``append_event`` script then does existence, replay lookup,
the terminal check and the insert atomically, guarded by a compare-and-set on
(registration hash, last sequence). A lost race is re-planned, never
duplicated.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import msgspec

from lash_streams import observability as obs
from lash_streams.errors import (
    AlreadyTerminal,
    BackendError,
    LashStreamsError,
    PayloadTooLarge,
    ReplayConflict,
    UnknownProcess,
)
from lash_streams.model import (
    ProcessAwaitOutput,
    ProcessEvent,
    ProcessEventAppendRequest,
    ProcessEventAppendResult,
    ProcessLease,
    ProcessRecord,
    SessionScope,
    SystemTime,
)
from lash_streams.model._codec import decode, encode
from lash_streams.semantics.append import complete_request, plan_append
from lash_streams.semantics.canonical import payload_hash
from lash_streams.semantics.wake import build_wake_delivery
from lash_streams.store.base import ProcessState, fence_args, fenced_error, text
from lash_streams.store.delivery import DeliveryOps
from lash_streams.store.keys import encode_id

#: Largest encoded event accepted (payload included), in bytes. Larger events
#: belong in a blob store with a reference in the payload.
MAX_EVENT_BYTES = 4 * 1024 * 1024
_OCCURRED_PLACEHOLDER = b'{"secs_since_epoch":0,"nanos_since_epoch":0}}'
_MAX_CAS_ROUNDS = 2000


def _event_from_entry(entry: Any) -> ProcessEvent:
    fields = entry[1]
    return decode(fields[b"e"], ProcessEvent)


class AppendOps(DeliveryOps):
    async def append_event(
        self,
        process_id: str,
        request: ProcessEventAppendRequest,
        *,
        lease: ProcessLease | None = None,
    ) -> ProcessEventAppendResult:
        """EV-1/EV-2. Retried on connection faults only when the request has a
        replay key (then a retry is an idempotent replay, RX-18).

        With ``lease`` the write is fenced (RX-12): it lands only while that
        lease is the process's current, live acquisition, else ``LeaseFenced``."""
        if obs.hooks is not None:
            return await obs.hooks.append(
                self._append_event(process_id, request, lease),
                process_id,
                request.event_type,
                lease is not None,
            )
        return await self._append_event(process_id, request, lease)

    async def _append_event(
        self, process_id: str, request: ProcessEventAppendRequest, lease: ProcessLease | None
    ) -> ProcessEventAppendResult:
        state = await self.state(process_id)
        for attempt in range(_MAX_CAS_ROUNDS):
            outcome = await self._try_append(process_id, request, state, lease)
            if isinstance(outcome, ProcessEventAppendResult):
                return outcome
            state = outcome
            if attempt > 8:
                await asyncio.sleep(random.uniform(0, 0.002 * min(attempt, 50)))
        raise BackendError(
            f"append to process `{process_id}` lost {_MAX_CAS_ROUNDS} sequence races in a row",
            process_id=process_id,
        )

    def _prepare(
        self,
        process_id: str,
        request: ProcessEventAppendRequest,
        state: ProcessState,
        seq: int,
        *,
        requires_link: str = "",
        leaves_link: str = "",
        lease: ProcessLease | None = None,
    ) -> tuple[Any, list[str], list[Any]]:
        """Plan an insert at ``seq + 1`` and the script call that commits it.
        Raises the typed validation errors (EV-2 steps 4-7)."""
        keys = self.keys.process(process_id)
        has_key = request.replay is not None
        replay_key = request.replay.key if request.replay is not None else ""
        plan = plan_append(state.planning_record(), request, sequence=seq + 1, occurred_at_ms=0)
        event_json = encode(plan.event)
        if len(event_json) > MAX_EVENT_BYTES:
            raise PayloadTooLarge(
                f"process `{process_id}` event `{request.event_type}` encodes to "
                f"{len(event_json)} bytes; the limit is {MAX_EVENT_BYTES}",
                process_id=process_id,
            )
        assert event_json.endswith(_OCCURRED_PLACEHOLDER)
        args = [
            state.registration_hash,
            seq,
            replay_key,
            "1" if has_key else "0",
            plan.payload_hash,
            event_json[: -len(_OCCURRED_PLACEHOLDER)],
            "1" if plan.status_update is not None else "0",
            encode(plan.status_update) if plan.status_update is not None else b"",
            encode_id(request.event_type),
            "1" if plan.event.semantics.wake is not None else "0",
            requires_link,
            leaves_link,
            encode(request.wake_target_scope) if request.wake_target_scope is not None else b"",
            *fence_args(lease),
        ]
        script_keys = [
            keys.record,
            keys.events,
            keys.replay,
            keys.types,
            keys.wakes,
            keys.outbox,
            keys.lease,
        ]
        return plan, script_keys, args

    async def _try_append(
        self,
        process_id: str,
        request: ProcessEventAppendRequest,
        state: ProcessState,
        lease: ProcessLease | None = None,
    ) -> ProcessEventAppendResult | ProcessState:
        try:
            plan, script_keys, args = self._prepare(
                process_id, request, state, state.seq, lease=lease
            )
        except LashStreamsError:
            # EV-2.3: an existing replay key decides before any validation.
            if request.replay is not None:
                replayed = await self._replay_lookup(process_id, request, request.replay.key)
                if replayed is not None:
                    return replayed
            raise

        def call() -> Any:
            return self.scripts.append_event(keys=script_keys, args=args)

        what = f"append `{request.event_type}` to process `{process_id}`"
        keyed = request.replay is not None
        reply = await (self.retry.idempotent(what, call) if keyed else self.retry.once(what, call))
        outcome = self._settle(process_id, request, state, plan, reply)
        if isinstance(outcome, ProcessEventAppendResult):
            if text(reply[0]) == "OK":
                if outcome.event.semantics.terminal is not None:
                    await self.index_terminal(process_id, int(reply[2]))
                if outcome.wake_delivery is not None and reply[4]:
                    await self.deliver_wake(outcome.wake_delivery, reply[4])
            return outcome
        if outcome is None:
            return await self.load_state(process_id)
        return outcome

    def _settle(
        self,
        process_id: str,
        request: ProcessEventAppendRequest,
        state: ProcessState,
        plan: Any,
        reply: list[Any],
    ) -> ProcessEventAppendResult | ProcessState | None:
        """Interpret the script's answer: a result, a state to re-plan with, or
        None when the registration changed and must be reloaded."""
        status = text(reply[0])
        if status == "OK":
            seq, now_ms, wt = int(reply[1]), int(reply[2]), reply[3]
            event = msgspec.structs.replace(
                plan.event,
                occurred_at=SystemTime(
                    secs_since_epoch=now_ms // 1000, nanos_since_epoch=(now_ms % 1000) * 1_000_000
                ),
            )
            state.seq = seq
            if plan.status_update is not None:
                state.terminal = True
            if obs.hooks is not None:
                obs.hooks.append_settled("appended")
            return self._result(state, event, request, wt)
        if status == "REPLAY":
            if obs.hooks is not None:
                obs.hooks.append_settled("replayed")
            return self._result(state, decode(reply[2], ProcessEvent), request, reply[4])
        if status == "CONFLICT":
            if obs.hooks is not None:
                obs.hooks.append_settled("conflict")
            key = request.replay.key if request.replay is not None else ""
            raise ReplayConflict(
                f"process `{process_id}` event replay key `{key}` conflicts with an existing event",
                process_id=process_id,
            )
        if status == "TERMINAL":
            state.terminal = True
            raise AlreadyTerminal(
                f"process `{process_id}` is already terminal", process_id=process_id
            )
        if status == "NOPROC":
            self.forget(process_id)
            raise UnknownProcess(process_id)
        if status == "FENCED":
            raise fenced_error(process_id, request.event_type)
        if status == "RETRY":
            state.seq = int(reply[1])
            state.terminal = reply[2] == b"1"
            state.wake_target = decode(reply[3], SessionScope) if reply[3] else None
            return state
        # STALE: the registration changed under us (prune + re-register).
        self.forget(process_id)
        return None

    def _result(
        self,
        state: ProcessState,
        event: ProcessEvent,
        request: ProcessEventAppendRequest,
        stored_wake_target: bytes,
    ) -> ProcessEventAppendResult:
        if event.semantics.wake is None:
            return ProcessEventAppendResult(event=event)  # no wake, no delivery (WK-8)
        # WK-5 / EV-6: the request's scope, else the record's current target.
        target = request.wake_target_scope
        if target is None and stored_wake_target:
            target = decode(stored_wake_target, SessionScope)
        record = state.planning_record()
        delivery = build_wake_delivery(record, event, target)
        return ProcessEventAppendResult(event=event, wake_delivery=delivery)

    async def _replay_lookup(
        self, process_id: str, request: ProcessEventAppendRequest, replay_key: str
    ) -> ProcessEventAppendResult | None:
        keys = self.keys.process(process_id)

        async def run() -> list[Any]:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hget(keys.replay, replay_key)
            pipe.hmget(keys.record, ["wt"])
            result: list[Any] = await pipe.execute()
            return result

        stored, (wt,) = await self.retry.idempotent("replay lookup", run)
        if stored is None:
            return None
        seq_text, _, stored_hash = text(stored).partition("|")
        if stored_hash != payload_hash(request.event_type, request.payload):
            if obs.hooks is not None:
                obs.hooks.append_settled("conflict")
            raise ReplayConflict(
                f"process `{process_id}` event replay key `{replay_key}` conflicts with an "
                "existing event",
                process_id=process_id,
            )
        entries = await self.retry.idempotent(
            "read replayed event",
            lambda: self.redis.xrange(keys.events, f"{seq_text}-0", f"{seq_text}-0"),
        )
        state = await self.state(process_id)
        if obs.hooks is not None:
            obs.hooks.append_settled("replayed")
        return self._result(state, _event_from_entry(entries[0]), request, wt or b"")

    async def send_signal(
        self, process_id: str, signal_name: str, signal_id: str, payload: Any
    ) -> ProcessEventAppendResult:
        """SG-1..SG-3: append ``signal.<name>`` keyed by the caller's signal id,
        so re-sending the same id and payload is an idempotent replay."""
        from lash_streams.model import RuntimeReplay
        from lash_streams.semantics.signals import signal_event_type

        event_type = signal_event_type(signal_name)
        request = ProcessEventAppendRequest(
            event_type=event_type,
            payload=payload,
            replay=RuntimeReplay(key=f"process:{process_id}:{event_type}:{signal_id}"),
        )
        return await self.append_event(process_id, request)

    async def request_cancel(
        self, process_id: str, reason: str | None = None
    ) -> ProcessEventAppendResult:
        """CN-1..CN-3: durable, keyed by reason, never terminal by itself."""
        from lash_streams.semantics.signals import cancel_requested_request

        return await self.append_event(process_id, cancel_requested_request(process_id, reason))

    async def complete_process(
        self,
        process_id: str,
        await_output: ProcessAwaitOutput,
        *,
        lease: ProcessLease | None = None,
    ) -> ProcessRecord:
        """CP-1..CP-4: a keyed terminal append, then the re-read record.
        ``lease`` fences it (RX-12, lash's later ``complete_process_with_lease``)."""
        request = complete_request(process_id, await_output)
        await self.append_event(process_id, request, lease=lease)
        return await self.require_record(process_id)

    # -- reads -----------------------------------------------------------------

    async def _range(
        self, process_id: str, command: str, *args: Any, **kwargs: Any
    ) -> list[ProcessEvent]:
        keys = self.keys.process(process_id)

        async def run() -> list[Any]:
            pipe = self.redis.pipeline(transaction=False)
            pipe.exists(keys.record)
            getattr(pipe, command)(keys.events, *args, **kwargs)
            result: list[Any] = await pipe.execute()
            return result

        exists, entries = await self.retry.idempotent(f"read events of `{process_id}`", run)
        if not exists:
            raise UnknownProcess(process_id)
        return [_event_from_entry(entry) for entry in entries]

    async def events_after(self, process_id: str, after_sequence: int) -> list[ProcessEvent]:
        """RD-1: one XRANGE from the entry after the cursor (ids are ``<seq>-0``)."""
        return await self._range(process_id, "xrange", f"{after_sequence + 1}-0", "+")

    async def recent_events(self, process_id: str, limit: int) -> list[ProcessEvent]:
        """RD-3: the last ``limit`` events, ascending."""
        if limit <= 0:
            await self.require_record(process_id)
            return []
        events = await self._range(process_id, "xrevrange", "+", "-", count=limit)
        events.reverse()
        return events

    async def count_events_through(
        self, process_id: str, event_type: str, up_to_sequence: int
    ) -> int:
        """RD-2: one ZLEXCOUNT over the per-type index."""
        keys = self.keys.process(process_id)
        prefix = encode_id(event_type) + "\0"
        upto = min(up_to_sequence, 10**20 - 1)

        async def run() -> list[Any]:
            pipe = self.redis.pipeline(transaction=False)
            pipe.exists(keys.record)
            pipe.zlexcount(keys.types, f"[{prefix}", f"[{prefix}{upto:020d}")
            result: list[Any] = await pipe.execute()
            return result

        exists, count = await self.retry.idempotent("count events", run)
        if not exists:
            raise UnknownProcess(process_id)
        return int(count)

    async def wake_events_after(self, process_id: str, after_sequence: int) -> list[ProcessEvent]:
        """WA-1: wake events after the cursor whose sequence is not acknowledged."""
        keys = self.keys.process(process_id)

        async def run() -> list[Any]:
            pipe = self.redis.pipeline(transaction=False)
            pipe.exists(keys.record)
            pipe.zrangebyscore(keys.wakes, f"({after_sequence}", "+inf")
            pipe.smembers(keys.acks)
            result: list[Any] = await pipe.execute()
            return result

        exists, wake_seqs, acks = await self.retry.idempotent("read wake events", run)
        if not exists:
            raise UnknownProcess(process_id)
        pending = [int(s) for s in wake_seqs if s not in acks]
        if not pending:
            return []

        async def fetch() -> list[Any]:
            pipe = self.redis.pipeline(transaction=False)
            for seq in pending:
                pipe.xrange(keys.events, f"{seq}-0", f"{seq}-0")
            result: list[Any] = await pipe.execute()
            return result

        entries = await self.retry.idempotent("read wake events", fetch)
        return [_event_from_entry(e[0]) for e in entries if e]
