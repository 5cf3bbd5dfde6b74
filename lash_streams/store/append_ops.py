"""The append surface of the store: ``append_event``, signals and cancel
requests (SG-*, CN-*) and completion (CP-*), over the append path
(``store/append.py``)."""

from __future__ import annotations

from typing import Any

from lash_streams import observability as obs
from lash_streams.errors import InvalidValue
from lash_streams.ids import id_bytes
from lash_streams.model import (
    LeaseOwnerIdentity,
    ProcessAwaitOutput,
    ProcessEventAppendRequest,
    ProcessEventAppendResult,
    ProcessLease,
    ProcessRecord,
)
from lash_streams.semantics.append import complete_request
from lash_streams.semantics.inputs import json_problem, require, require_u64, wire_bytes
from lash_streams.store.append import Appended, append, appended
from lash_streams.store.batch import BatchOps
from lash_streams.store.core import StoreCore


class AppendOps(StoreCore):
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
        require(request, ProcessEventAppendRequest, "request")
        if (
            lease is None
            and not self.cluster
            and isinstance(self, BatchOps)  # the Store: its batch script
            and self._wakes(process_id, request)
        ):
            return await _append_waking(self, process_id, request)
        return await append(self, process_id, request, lease)

    def _wakes(self, process_id: str, request: ProcessEventAppendRequest) -> bool:
        """Whether the request's event type wakes, by the cached registration
        (an uncached process takes the ordinary path, which caches it)."""
        state = self.cached_state(process_id)
        if state is None:
            return False
        for declared in state.registration.event_types:
            if declared.name == request.event_type:
                return declared.semantics.wake is not None
        return False

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

        if reason is not None:
            require(reason, str, "reason")
            if json_problem(reason) is not None:
                raise InvalidValue(
                    f"process `{process_id}` cancel reason is not valid UTF-8 (a lone surrogate)",
                    process_id=process_id,
                )

        return await self.append_event(process_id, cancel_requested_request(process_id, reason))

    async def complete_process(
        self,
        process_id: str,
        await_output: ProcessAwaitOutput,
        *,
        lease: ProcessLease | None = None,
    ) -> ProcessRecord:
        """CP-1..CP-4: a keyed terminal append; the record comes back from the
        same script. ``lease`` fences it (RX-12, lash's later
        ``complete_process_with_lease``)."""
        # Exactly one of the four await outputs, as given (never a dict that
        # would be read back as something else).
        wire_bytes(await_output, ProcessAwaitOutput, "await_output")
        request = complete_request(process_id, await_output)
        done = await appended(self, process_id, request, lease)
        if done.record_fields:
            return self.record_from_fields(done.record_fields)
        return await self.require_record(process_id)  # a replay found outside the script

    async def complete_job(
        self, process_id: str, await_output: ProcessAwaitOutput, *, lease: ProcessLease
    ) -> ProcessRecord:
        """A worker's terminal (SW-12): ``complete_process`` under ``lease``,
        and in the same step, once the row is terminal, the lease released
        (LS-8) and, on a single server, the id moved out of the worklist
        (``lua/complete_job-10.lua``). ``LeaseFenced`` as ``complete_process``
        (nothing written, the lease left alone). After ``ReplayConflict`` or
        ``AlreadyTerminal`` the lease may still be held (a cached terminal
        state refuses before the script): release it."""
        done = await self._job_terminal(process_id, await_output, lease)
        if done.record_fields:
            return self.record_from_fields(done.record_fields)
        return await self.require_record(process_id)

    async def _job_terminal(
        self, process_id: str, await_output: ProcessAwaitOutput, lease: ProcessLease
    ) -> Appended:
        """``complete_job`` without building the record from its reply (a
        worker drops it: tens of microseconds a job). Private because ``Bus``
        inherits the store: a public name here would be a user API."""
        wire_bytes(await_output, ProcessAwaitOutput, "await_output")
        # What the script is sent of the lease (a worker's own, from its
        # claim: checked, not round-tripped as ``wire_bytes`` would).
        require(lease, ProcessLease, "lease")
        if lease.process_id != process_id:
            raise InvalidValue(
                f"the lease is of process `{lease.process_id}`, not `{process_id}`",
                process_id=process_id,
            )
        require(lease.owner, LeaseOwnerIdentity, "lease owner")
        id_bytes("lease token", lease.lease_token)
        id_bytes("lease owner id", lease.owner.owner_id)
        id_bytes("lease incarnation id", lease.owner.incarnation_id)
        require_u64(lease.fencing_token, "fencing token")
        request = complete_request(process_id, await_output)
        return await appended(self, process_id, request, lease, release=True)


async def _append_waking(
    store: BatchOps, process_id: str, request: ProcessEventAppendRequest
) -> ProcessEventAppendResult:
    """A waking append on a single server: the batch script appends the event
    and delivers its wake in one step, one round trip (store/inline_wakes.py),
    where the ordinary path writes a delivery intent and delivers it in a
    second call. The same result and the same errors as one append."""

    async def call() -> ProcessEventAppendResult:
        return (await store.append_events([(process_id, request)]))[0]

    if obs.hooks is None:
        return await call()
    return await obs.hooks.append(call(), process_id, request.event_type, False)
