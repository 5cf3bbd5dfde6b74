"""Running one row: a worker's attempts under a fresh identity, the run under
a renewed, fenced lease, and the fenced terminal write (SW-4, SW-12..SW-15,
ST-3). ``Recovery`` (recovery.py) is this plus the sweep that finds rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from lash_streams import errors
from lash_streams import observability as obs
from lash_streams.coordination.lease_runs import (
    RUNNER_CANCEL_REPEAT_S,
    LeaseHolder,
    Runner,
    cancel_until_done,
    recovery_failure,
    runner_failure,
    stopping,
)
from lash_streams.model import (
    AbandonEvidence,
    AbandonWriter,
    AwaitAbandoned,
    AwaitCancelled,
    AwaitFailure,
    AwaitSuccess,
    LeaseAcquired,
    LeaseOwnerIdentity,
    ProcessAwaitOutput,
    ProcessLease,
    ProcessLeaseCompletion,
    ProcessRecord,
    ProcessStarted,
    RecoveryDisposition,
)

if TYPE_CHECKING:
    from lash_streams.store import Store

log = logging.getLogger("lash_streams.recovery")

T = TypeVar("T")


def _drop_outcome(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


#: How far into a run its cancel watch begins (see ``_watch_cancel``).
WATCH_CANCEL_AFTER_S = 0.25

_NOT_STARTED = {
    "terminal": "terminal already",
    "busy": "held by a live owner",
    "started_elsewhere": "owner-bound and started by a worker already: never run twice",
    "unknown": "no such process",
}


@dataclass(frozen=True)
class Started:
    """A dispatched job this worker started (``RowRuns.start_dispatched``)."""

    process_id: str
    attempt: LeaseOwnerIdentity
    record: ProcessRecord
    lease: ProcessLease


class RowRuns:
    """What ``Recovery`` runs a row with; its settings are set there."""

    store: Store
    stem: LeaseOwnerIdentity
    runner: Runner | None
    lease_ttl_ms: int
    renew_every_ms: int
    _active: set[str]  # rows this worker is at (see _attempt)
    _runs: int  # run slots taken (Recovery.max_runs), explicit executes included
    _why: dict[str, str]  # why a row was skipped, until a report takes it

    def _skip(self, pid: str, reason: str) -> str:
        self._why[pid] = reason
        return "skipped"

    def attempt_identity(self) -> LeaseOwnerIdentity:
        """SW-4: a fresh identity per attempt, so an earlier attempt's live lease
        fences a later pass instead of being re-entered. The incarnation keeps
        the stem's in front (``<stem incarnation>/<attempt>``) so fleet liveness
        can tell whose attempt it was."""
        attempt = uuid.uuid4().hex
        return LeaseOwnerIdentity(
            owner_id=f"{self.stem.owner_id}:recovery:{attempt}",
            incarnation_id=f"{self.stem.incarnation_id}/{attempt}",
            liveness=self.stem.liveness,
        )

    async def _attempt(self, pid: str, body: Callable[[LeaseOwnerIdentity], Awaitable[T]]) -> T:
        """One attempt at a row under a fresh identity (SW-4); never two at once
        from this worker (execute, a sweep, dispatch and the drive share the
        guard: callers check ``_active`` first)."""
        attempt = self.attempt_identity()
        self._active.add(pid)
        try:
            return await body(attempt)
        except BaseException:
            # Hand back what this attempt holds (even a claim whose reply was
            # cut off) so the next pass can claim at once (evidence: _examine).
            await self._hand_back(pid, attempt)
            raise
        finally:
            self._active.discard(pid)

    async def _hand_back(self, pid: str, attempt: LeaseOwnerIdentity) -> None:
        async def release() -> None:
            lease = await self.store.get_process_lease(pid)
            if lease is not None and lease.owner.same_incarnation(attempt):
                await self.store.complete_process_lease(ProcessLeaseCompletion.from_lease(lease))

        task = asyncio.ensure_future(release())
        # Shielded: a repeated stop request must not cut the release short.
        with contextlib.suppress(asyncio.CancelledError, errors.LashStreamsError):
            await asyncio.shield(task)

    async def became_terminal(self, pid: str, lease: ProcessLease) -> bool:
        record = await self.store.get_process(pid)
        if record is None or record.is_terminal():
            await self.store.complete_process_lease(ProcessLeaseCompletion.from_lease(lease))
            return True
        return False

    async def abandoned_output(
        self, writer: AbandonWriter, owner: LeaseOwnerIdentity | None
    ) -> ProcessAwaitOutput:
        now = await self.store.server_time_ms()
        return AwaitAbandoned(evidence=AbandonEvidence(writer=writer, owner=owner, epoch_ms=now))

    # -- running a row -----------------------------------------------------------

    async def execute(self, process_id: str) -> str:
        """Claim and run one row now (a worker picking up work it was given)."""
        if not process_id.strip():
            raise errors.MissingExecutionId("missing process execution id")
        record = await self.store.get_process(process_id)
        if record is None:
            raise errors.UnknownProcess(process_id)
        self._refuse_external(record)
        # A fresh attempt identity: a second execute() of the same row meets the
        # first one's live lease (or this worker's guard) instead of re-entering.
        if process_id in self._active:
            return "skipped"
        return await self._attempt(process_id, lambda attempt: self._execute(process_id, attempt))

    async def _execute(self, process_id: str, attempt: LeaseOwnerIdentity) -> str:
        outcome = await self.store.claim_process_lease(process_id, attempt, self.lease_ttl_ms)
        if not isinstance(outcome, LeaseAcquired):
            return "skipped"
        if await self.became_terminal(process_id, outcome.lease):
            return "skipped"
        current = await self.store.get_process(process_id)
        assert current is not None
        if current.disposition is RecoveryDisposition.OWNER_BOUND and current.first_started:
            await self.store.complete_process_lease(
                ProcessLeaseCompletion.from_lease(outcome.lease)
            )
            return "skipped"  # started by someone: never executed again (DS-3)
        # Asked for explicitly, so never refused for want of a slot; but it
        # holds one, so this worker's passes take that many fewer rows.
        self._runs += 1
        try:
            await self.run_under_lease(current, outcome.lease)
        finally:
            self._runs -= 1
        return "ran"

    async def run_dispatched(
        self, process_id: str, disposition: RecoveryDisposition
    ) -> tuple[str, ProcessAwaitOutput | None]:
        """A dispatched job: start it in one step (``Store.start_job``) and run
        it under its lease. The caller holds its run slot. ``("ran", output)``
        with the terminal written (None: the lease was lost first), else why
        it did not start."""
        begun = await self.start_dispatched(process_id, disposition)
        if isinstance(begun, str):
            return begun, None
        return await self.run_started(begun)

    async def start_dispatched(
        self, process_id: str, disposition: RecoveryDisposition
    ) -> Started | str:
        """``run_dispatched``'s first step, for a caller that runs the job
        elsewhere (a worker starts a lone job in its reading task, a loop turn
        sooner, and runs it in a task of its own): the started job, which
        ``run_started`` must be given, or why it did not start. The row stays
        this worker's (``_active``) from here until ``run_started`` ends."""
        if process_id in self._active:
            return "running here already"
        attempt = self.attempt_identity()
        self._active.add(process_id)
        try:
            start = await self.store.start_job(
                process_id, disposition, attempt, self.stem, self.lease_ttl_ms
            )
        except BaseException:
            await self._let_go(process_id, attempt)  # as _attempt does
            raise
        if start.status != "started":
            self._active.discard(process_id)
            return _NOT_STARTED[start.status]
        assert start.record is not None and start.lease is not None
        return Started(process_id, attempt, start.record, start.lease)

    async def run_started(self, begun: Started) -> tuple[str, ProcessAwaitOutput | None]:
        """``run_dispatched``'s second step: the started job run under its
        lease (``_attempt``'s hand-back on an error, the row released after)."""
        try:
            output = await self.run_under_lease(begun.record, begun.lease, started=True)
        except BaseException:
            await self._let_go(begun.process_id, begun.attempt)
            raise
        self._active.discard(begun.process_id)
        return "ran", output

    async def release_started(self, begun: Started) -> None:
        """A started job that will not run here after all (its worker is
        stopping): its lease handed back at once, the row no longer ours."""
        await self._let_go(begun.process_id, begun.attempt)

    async def _let_go(self, pid: str, attempt: LeaseOwnerIdentity) -> None:
        """Hand back what ``attempt`` holds; the row is no longer this worker's."""
        try:
            await self._hand_back(pid, attempt)
        finally:
            self._active.discard(pid)

    def _refuse_external(self, record: ProcessRecord) -> None:
        if record.disposition is RecoveryDisposition.EXTERNALLY_OWNED:
            raise errors.ExternallyOwnedNotExecutable(
                f"process `{record.id}` is externally-owned and must not be executed by lash",
                process_id=record.id,
            )

    async def run_under_lease(
        self, record: ProcessRecord, lease: ProcessLease, *, started: bool = False
    ) -> ProcessAwaitOutput | None:
        """SW-13/SW-14/ST-3: record ``first_started`` (stem identity; done
        already when ``started``), run while renewing, stop on lease loss or
        cancel request, write the outcome fenced. The outcome written, or None
        when the lease was lost first (a newer owner writes it)."""
        self._refuse_external(record)
        pid = record.id
        if not started:
            now = await self.store.server_time_ms()
            await self.store.record_first_started(
                pid, ProcessStarted(owner=self.stem, started_at_ms=now), lease=lease
            )
        holder = LeaseHolder(
            self.store, lease, ttl_ms=self.lease_ttl_ms, renew_every_ms=self.renew_every_ms
        )
        run = asyncio.create_task(self._call_runner(record, lease))
        # The renewer and the cancel watch start only for a run still going
        # by the earlier of their first moves: a short job pays for no task.
        helpers: list[asyncio.Task[None]] = []
        after_s = min(WATCH_CANCEL_AFTER_S, self.renew_every_ms / 1000)

        def start_helpers() -> None:
            if not run.done():
                helpers.append(asyncio.create_task(holder.keep(run, since_s=after_s)))
                watch = self._watch_cancel(pid, run, WATCH_CANCEL_AFTER_S - after_s)
                helpers.append(asyncio.create_task(watch))

        starting = asyncio.get_running_loop().call_later(after_s, start_helpers)
        try:
            output = await run
        except asyncio.CancelledError:
            if stopping():
                # The worker is stopping, not the process: hand the row back
                # (no terminal) so another owner can take it now.
                run.cancel()
                await self._hand_back(pid, holder.lease.owner)
                raise
            output = None  # the run itself was cancelled: lease lost or cancel requested
        finally:
            starting.cancel()
            for helper in helpers:
                # Not awaited: a cancel landing inside redis-py's blocking read
                # can be dropped (lease_runs.cancel_until_done), and the
                # terminal must not wait for that read to time out. What a
                # helper ends with (a closed bus, at worst) is read and dropped.
                helper.cancel()
                helper.add_done_callback(_drop_outcome)
        if holder.lost:
            return None  # lease lost: a newer owner is the single writer (SW-13)
        if output is None:
            output = AwaitCancelled(message="process cancel requested")
        written = await self.fenced_terminal(pid, holder.lease, output, renew=not started)
        return output if written else None

    async def _call_runner(self, record: ProcessRecord, lease: ProcessLease) -> ProcessAwaitOutput:
        if self.runner is None:
            return recovery_failure(f"no runner can execute process `{record.id}`")
        try:
            output = await self.runner(record, lease)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.exception("the runner of process `%s` raised", record.id)
            return runner_failure(err)
        if not isinstance(output, AwaitSuccess | AwaitFailure | AwaitCancelled | AwaitAbandoned):
            # Never stored as something else (issue 15): the run failed, visibly.
            return recovery_failure(
                f"the runner returned {type(output).__name__}, not an await output "
                "(AwaitSuccess, AwaitFailure, AwaitCancelled or AwaitAbandoned)"
            )
        return output

    async def _watch_cancel(
        self, pid: str, run: asyncio.Task[ProcessAwaitOutput], wait_s: float
    ) -> None:
        """CN-4: any cancel request, even one older than the run, cancels it.
        Watched from ``WATCH_CANCEL_AFTER_S`` into the run (``wait_s`` from
        now): the watch reads the stream from its start, so it misses no
        request, and a short run never pays for it."""
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        with contextlib.suppress(errors.LashStreamsError):
            await self.store.await_event(pid, "process.cancel_requested", 0)
            await cancel_until_done(run, every_s=RUNNER_CANCEL_REPEAT_S)

    async def fenced_terminal(
        self, pid: str, lease: ProcessLease, output: ProcessAwaitOutput, *, renew: bool = True
    ) -> bool:
        """SW-12: renew; on failure write nothing and keep hands off the lease;
        else complete under the lease and release it, one step
        (``Store.complete_job``). Whether ``output`` is the row's terminal
        now (False: the lease was lost, or another terminal was there first).

        ``renew=False`` (a dispatched job): no renewal first. The terminal
        append checks the lease in its own script (the current, live
        acquisition, RX-12), so a lost lease writes nothing either way; the
        renewal only costs a round trip."""
        if renew:
            try:
                lease = await self.store.renew_process_lease(lease, self.lease_ttl_ms)
            except errors.LeaseExpired:
                if obs.hooks is not None:
                    obs.hooks.lease_lost("terminal")
                return False
        try:
            # Written, the lease released and (a single server) the worklist
            # left, in one script: a worker killed after it leaves nothing.
            # complete_job, without the record it would build and we drop.
            await self.store._job_terminal(pid, output, lease)
        except errors.LeaseFenced as err:
            if renew:
                log.info("terminal for %s not written: %s", pid, err)
            elif obs.hooks is not None:
                obs.hooks.lease_lost("terminal")
            if not renew:
                return False  # not ours any more: hands off the lease
        except (errors.ReplayConflict, errors.AlreadyTerminal) as err:
            log.info("terminal for %s not written: %s", pid, err)
        else:
            if obs.hooks is not None:
                obs.hooks.terminal_written(output)
            return True
        # Not written: release by token (a no-op when the script released it).
        await self.store.complete_process_lease(
            ProcessLeaseCompletion.from_lease(lease), terminal=False
        )
        return False
