"""Recovery: the sweep that applies each row's declared disposition (ADR 0019),
and the worker run path that executes a row under a renewed, fenced lease.

One ``Recovery`` is one worker's stem identity. ``sweep_once()`` walks every
running row (the worklist index) and, per row (SW-5..SW-15):

- externally owned, no abandon request: untouched;
- externally owned with a request: plain claim (never reclaim), then
  ``abandoned{reconciled_request}`` without owner;
- otherwise claim; a busy row is reclaimed only with death evidence for its
  holder (LV-2 on this host, or fleet liveness), else left to its holder;
- rerunnable: run; owner-bound not started: run (recording ``first_started``);
  owner-bound started: never run: ``abandoned{sweep}`` with death evidence,
  else ``abandoned{reconciled_request}`` if requested, else release.

Elapsed time alone never writes a terminal. Every terminal goes through the
fenced "renew, complete under the lease, release" step (SW-12, RX-12), so many
sweepers can run at once and each abandonment is written exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from lash_streams import errors
from lash_streams import observability as obs
from lash_streams.coordination.lease_runs import (
    RUNNER_CANCEL_REPEAT_S,
    LeaseHolder,
    Runner,
    cancel_until_done,
    check_settings,
    recovery_failure,
    stopping,
)
from lash_streams.coordination.parking import ParkedRows
from lash_streams.model import (
    AbandonEvidence,
    AbandonWriter,
    AwaitAbandoned,
    AwaitCancelled,
    AwaitFailure,
    AwaitSuccess,
    LeaseAcquired,
    LeaseBusy,
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

# The name users configure predates the coordination package; kept stable.
log = logging.getLogger("lash_streams.recovery")

#: Rows examined (claimed and decided) at once by one Recovery: half the
#: connection pool, leaving room for renewals and the application.
EXAMINE_CONCURRENCY = 32

#: Rows one worker runs at once by default (``max_runs``): a run holds its slot
#: for its whole life, so a backlog spreads across the fleet instead of one
#: worker leasing every row.
DEFAULT_MAX_RUNS = 64


@dataclass
class SweepReport:
    examined: int = 0
    ran: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class Recovery:
    def __init__(
        self,
        store: Store,
        stem: LeaseOwnerIdentity,
        *,
        runner: Runner | None = None,
        lease_ttl_ms: int = 30_000,
        renew_every_ms: int = 10_000,
        fleet_liveness: bool = False,
        max_runs: int = DEFAULT_MAX_RUNS,
        unrunnable: Literal["fail", "skip"] = "fail",
    ) -> None:
        check_settings(lease_ttl_ms, renew_every_ms, max_runs, unrunnable)
        self.store = store
        self.stem = stem
        self.runner = runner
        self.lease_ttl_ms = lease_ttl_ms
        self.renew_every_ms = renew_every_ms
        self.fleet_liveness = fleet_liveness
        self.max_runs = max_runs
        self.unrunnable = unrunnable
        self._examining = asyncio.Semaphore(EXAMINE_CONCURRENCY)
        self._active: set[str] = set()  # rows this worker is at (see _attempt)
        self._runs = 0  # run slots taken (max_runs)
        self._parked = ParkedRows()
        self._live: dict[str, ProcessLease] = {}  # read at the start of a pass

    async def register(self) -> None:
        """Announce this incarnation (fleet liveness: it proves older
        incarnations of the same worker identity dead)."""
        from lash_streams.coordination.fleet_liveness import register_incarnation

        await register_incarnation(self.store, self.stem)

    async def shutdown(self) -> list[str]:
        """Graceful exit: drain own owner-bound work, then record the exit."""
        from lash_streams.coordination.fleet_liveness import record_exit

        drained = await self.drain()
        await record_exit(self.store, self.stem)
        return drained

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

    async def holder_is_dead(
        self, holder: LeaseOwnerIdentity, claimant: LeaseOwnerIdentity
    ) -> bool:
        if self.store.is_definitely_dead(holder, claimant):
            return True
        if self.fleet_liveness:
            from lash_streams.coordination.fleet_liveness import is_provably_dead

            return await is_provably_dead(self.store, holder)
        return False

    # -- the sweep ---------------------------------------------------------------

    async def sweep_once(self) -> SweepReport:
        """One pass over every running row; rows are independent (SW-3)."""
        if obs.hooks is not None:
            return await obs.hooks.sweep(self._sweep_once())
        return await self._sweep_once()

    async def _sweep_once(self) -> SweepReport:
        report = SweepReport()
        rows = await self.store.list_non_terminal()
        self._parked.keep_only(row.id for row in rows)
        self._live = await self.store.live_leases([row.id for row in rows])
        report.examined = len(rows)
        outcomes = await asyncio.gather(
            *(self.recover(row) for row in rows), return_exceptions=True
        )
        for row, outcome in zip(rows, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                log.warning("recovery of %s failed: %s", row.id, outcome)
                report.failed.append(row.id)
            else:
                getattr(report, outcome).append(row.id)
        return report

    async def run(self, every_s: float, *, stop: asyncio.Event | None = None) -> None:
        """Drive recovery every ``every_s`` seconds (and relay pending wake intents)
        until ``stop`` is set.

        As lash's ``drive_pending_processes``, every row is recovered on a task of
        its own and a pass never waits for the runs it starts: a run that awaits a
        child process registered after the pass began would otherwise hold up the
        very pass that has to claim the child, and one long run would stop every
        other row's recovery. Rows already in flight here are not started again
        (their live lease would refuse the claim anyway). On stop, in-flight runs
        are cancelled: each releases its lease and writes no terminal, so another
        worker can take the row at once (and ``shutdown()`` can drain)."""
        stop = stop or asyncio.Event()
        inflight: dict[str, asyncio.Task[str]] = {}

        def finished(pid: str, task: asyncio.Task[str]) -> None:
            inflight.pop(pid, None)
            if task.cancelled():
                return
            error = task.exception()
            if error is not None:
                log.warning("recovery of %s failed: %s", pid, error)
            if obs.hooks is not None:
                obs.hooks.row_recovered("failed" if error is not None else task.result())

        try:
            while not stop.is_set():
                if obs.hooks is not None:
                    obs.hooks.sweep_pass()
                try:
                    rows = await self.store.list_non_terminal()
                    self._parked.keep_only(row.id for row in rows)
                    self._live = await self.store.live_leases(
                        [row.id for row in rows if row.id not in inflight]
                    )
                    for row in rows:
                        if row.id not in inflight:
                            task = asyncio.create_task(self.recover(row))
                            inflight[row.id] = task
                            task.add_done_callback(functools.partial(finished, row.id))
                    await self.store.relay_pending()
                except Exception as err:
                    # Unreachable or refused (OOM, READONLY after a failover, a
                    # wrongly typed key): the next pass retries; the drive and
                    # its runs must not die of it.
                    log.warning("recovery pass failed: %s: %s", type(err).__name__, err)
                    if obs.hooks is not None:
                        obs.hooks.row_recovered("failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), every_s)
        finally:
            # Every run hands its row back (see lease_runs.cancel_until_done).
            await cancel_until_done(*inflight.values())

    async def recover(self, record: ProcessRecord) -> str:
        return await self._attempt(record.id, lambda attempt: self._recover(record, attempt))

    async def _attempt(self, pid: str, body: Callable[[LeaseOwnerIdentity], Awaitable[str]]) -> str:
        """One attempt at a row under a fresh identity (SW-4); never two at once
        from this worker (execute, a sweep and the drive share the guard)."""
        if pid in self._active:
            return "skipped"
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

    async def _evidence_may_exist(self, record: ProcessRecord, held: ProcessLease) -> bool:
        """Whether a claim could displace the live ``held`` (never for
        externally owned rows: plain claims only, SW-6)."""
        external = record.disposition is RecoveryDisposition.EXTERNALLY_OWNED
        return not external and await self.holder_is_dead(held.owner, self.stem)

    def _may_run(self, record: ProcessRecord) -> bool:
        """Whether recovering this row (as listed) would run it (SW-9, SW-10)."""
        if record.disposition is RecoveryDisposition.RERUNNABLE:
            return True
        return record.disposition is RecoveryDisposition.OWNER_BOUND and not record.first_started

    async def _hand_back(self, pid: str, attempt: LeaseOwnerIdentity) -> None:
        async def release() -> None:
            lease = await self.store.get_process_lease(pid)
            if lease is not None and lease.owner.same_incarnation(attempt):
                await self.store.complete_process_lease(ProcessLeaseCompletion.from_lease(lease))

        task = asyncio.ensure_future(release())
        # Shielded: a repeated stop request must not cut the release short.
        with contextlib.suppress(asyncio.CancelledError, errors.LashStreamsError):
            await asyncio.shield(task)

    async def _recover(self, record: ProcessRecord, attempt: LeaseOwnerIdentity) -> str:
        runs = self._may_run(record)
        if runs and self.runner is None and self.unrunnable == "skip":
            return "skipped"  # nothing here can run it; left for a worker that can
        if runs and self._runs >= self.max_runs:
            return "skipped"  # every run slot is taken: left to the next pass or worker
        starter = self._parked.parked(record)
        if starter is not None and not await self.holder_is_dead(starter.owner, self.stem):
            return "skipped"  # unchanged since a pass left it running: no claim
        held = self._live.pop(record.id, None)
        if held is not None and not await self._evidence_may_exist(record, held):
            return "skipped"  # SW-7: a live holder without death evidence keeps it
        # Bounded (100k rows would queue 100k callers on the pool); the examine
        # slot is given back before the run, a run slot is held for its life.
        async with self._examining:
            decision = await self._examine(record, attempt)
        if isinstance(decision, str):
            return decision
        current, lease = decision
        unrunnable = self.runner is None and self.unrunnable == "skip"
        if unrunnable or self._runs >= self.max_runs:
            # Filled by rows examined meanwhile (no reservation above: rows that
            # turn out busy would hold slots).
            await self.store.complete_process_lease(ProcessLeaseCompletion.from_lease(lease))
            return "skipped"
        self._runs += 1
        try:
            await self.run_under_lease(current, lease)  # SW-9, SW-10, SW-15
        finally:
            self._runs -= 1
        return "ran"

    async def _examine(
        self, record: ProcessRecord, attempt: LeaseOwnerIdentity
    ) -> str | tuple[ProcessRecord, ProcessLease]:
        """Claim and decide; the row to run comes back with its lease."""
        store, pid = self.store, record.id
        if record.disposition is RecoveryDisposition.EXTERNALLY_OWNED:
            if record.abandon_request is None:
                return "skipped"  # SW-5
            outcome = await store.claim_process_lease(pid, attempt, self.lease_ttl_ms)
            if not isinstance(outcome, LeaseAcquired):
                return "skipped"  # SW-6: plain claim only
            lease = outcome.lease
            if await self.became_terminal(pid, lease):
                return "skipped"
            output = await self.abandoned_output(AbandonWriter.RECONCILED_REQUEST, None)
            await self.fenced_terminal(pid, lease, output)
            return "abandoned"
        outcome = await store.claim_process_lease(pid, attempt, self.lease_ttl_ms)
        evidence: LeaseOwnerIdentity | None = None
        if isinstance(outcome, LeaseBusy):
            holder = outcome.holder
            if not await self.holder_is_dead(holder.owner, attempt):
                return "skipped"  # SW-7: left to its holder
            outcome = await store.reclaim_process_lease(
                pid, attempt, holder, self.lease_ttl_ms, death_evidence=True
            )
            if not isinstance(outcome, LeaseAcquired):
                return "skipped"
            evidence = holder.owner
        if not isinstance(outcome, LeaseAcquired):
            return "skipped"
        lease = outcome.lease
        if await self.became_terminal(pid, lease):
            return "skipped"  # SW-8
        current = await store.get_process(pid)
        assert current is not None
        if record.disposition is RecoveryDisposition.RERUNNABLE or current.first_started is None:
            return current, lease
        if evidence is None and await self.holder_is_dead(current.first_started.owner, attempt):
            # Only the starter may ever run the row (DS-3), so its death is
            # evidence even after its lease lapsed or passed through an attempt
            # that failed before the abandonment: derived from the durable
            # first_started, never lost with the lease.
            evidence = current.first_started.owner
        if evidence is not None:  # SW-11: death evidence wins
            output = await self.abandoned_output(AbandonWriter.SWEEP, evidence)
        elif current.abandon_request is not None:
            output = await self.abandoned_output(
                AbandonWriter.RECONCILED_REQUEST, current.first_started.owner
            )
        else:
            await store.complete_process_lease(ProcessLeaseCompletion.from_lease(lease))
            self._parked.park(current)
            return "skipped"
        await self.fenced_terminal(pid, lease, output)
        return "abandoned"

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
        await self.run_under_lease(current, outcome.lease)
        return "ran"

    def _refuse_external(self, record: ProcessRecord) -> None:
        if record.disposition is RecoveryDisposition.EXTERNALLY_OWNED:
            raise errors.ExternallyOwnedNotExecutable(
                f"process `{record.id}` is externally-owned and must not be executed by lash",
                process_id=record.id,
            )

    async def run_under_lease(self, record: ProcessRecord, lease: ProcessLease) -> None:
        """SW-13/SW-14/ST-3: record ``first_started`` (stem identity), run while
        renewing, stop on lease loss or cancel request, write the outcome fenced."""
        self._refuse_external(record)
        pid = record.id
        now = await self.store.server_time_ms()
        await self.store.record_first_started(
            pid, ProcessStarted(owner=self.stem, started_at_ms=now), lease=lease
        )
        holder = LeaseHolder(
            self.store, lease, ttl_ms=self.lease_ttl_ms, renew_every_ms=self.renew_every_ms
        )
        run = asyncio.create_task(self._call_runner(record, lease))
        renewer = asyncio.create_task(holder.keep(run))
        watcher = asyncio.create_task(self._watch_cancel(pid, run))
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
            renewer.cancel()
            watcher.cancel()
        if holder.lost:
            return  # lease lost: a newer owner is the single writer (SW-13)
        if output is None:
            output = AwaitCancelled(message="process cancel requested")
        await self.fenced_terminal(pid, holder.lease, output)

    async def _call_runner(self, record: ProcessRecord, lease: ProcessLease) -> ProcessAwaitOutput:
        if self.runner is None:
            return recovery_failure(f"no runner can execute process `{record.id}`")
        try:
            output = await self.runner(record, lease)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            return recovery_failure(str(err) or type(err).__name__)
        if not isinstance(output, AwaitSuccess | AwaitFailure | AwaitCancelled | AwaitAbandoned):
            # Never stored as something else (issue 15): the run failed, visibly.
            return recovery_failure(
                f"the runner returned {type(output).__name__}, not an await output "
                "(AwaitSuccess, AwaitFailure, AwaitCancelled or AwaitAbandoned)"
            )
        return output

    async def _watch_cancel(self, pid: str, run: asyncio.Task[ProcessAwaitOutput]) -> None:
        """CN-4: any cancel request, even one older than the run, cancels it."""
        with contextlib.suppress(errors.LashStreamsError):
            await self.store.await_event(pid, "process.cancel_requested", 0)
            await cancel_until_done(run, every_s=RUNNER_CANCEL_REPEAT_S)

    async def fenced_terminal(
        self, pid: str, lease: ProcessLease, output: ProcessAwaitOutput
    ) -> bool:
        """SW-12: renew; on failure write nothing and keep hands off the lease;
        else complete under the lease and release it."""
        try:
            lease = await self.store.renew_process_lease(lease, self.lease_ttl_ms)
        except errors.LeaseExpired:
            if obs.hooks is not None:
                obs.hooks.lease_lost("terminal")
            return False
        try:
            await self.store.complete_process(pid, output, lease=lease)
        except (errors.ReplayConflict, errors.AlreadyTerminal, errors.LeaseFenced) as err:
            log.info("terminal for %s not written: %s", pid, err)
        else:
            if obs.hooks is not None:
                obs.hooks.terminal_written(output)
        await self.store.complete_process_lease(ProcessLeaseCompletion.from_lease(lease))
        return True

    # -- graceful drain ----------------------------------------------------------

    async def drain(self) -> list[str]:
        """AB-2 owner_drain: abandon this worker's own started owner-bound rows
        under a fresh lease; busy rows are deferred (coordination/drain.py)."""
        from lash_streams.coordination.drain import owner_drain

        return await owner_drain(self)
