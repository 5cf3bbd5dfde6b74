"""Recovery: the sweep that applies each row's declared disposition (ADR 0019);
the worker run path it runs rows with is ``row_runs.RowRuns``.

One ``Recovery`` is one worker's stem identity. ``sweep_once()`` walks every
running row (the worklist index); ``run()`` drives passes that read only the
rows due for a look (``sweep_due()``: lapsed or released leases, never-claimed
rows; store/worklist.py). Per row (SW-5..SW-15):

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
import math
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from lash_streams import observability as obs
from lash_streams.coordination.lease_runs import (
    Runner,
    cancel_until_done,
    check_settings,
)
from lash_streams.coordination.parking import ParkedRows
from lash_streams.coordination.row_runs import RowRuns
from lash_streams.model import (
    AbandonWriter,
    LeaseAcquired,
    LeaseBusy,
    LeaseOwnerIdentity,
    ProcessLease,
    ProcessLeaseCompletion,
    ProcessRecord,
    RecoveryDisposition,
)
from lash_streams.store.delivery import FULL_RELAY_EVERY_S

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

_LEFT_RUNNING = (
    "started by a worker not known to be dead and no abandon was requested: left running"
)


@dataclass
class SweepReport:
    examined: int = 0
    ran: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    #: Why each skipped row was left as it is, in plain words.
    reasons: dict[str, str] = field(default_factory=dict)


class Recovery(RowRuns):
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
        can_run: Callable[[ProcessRecord], str | None] | None = None,
        dispatch_grace_ms: int = 0,
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
        #: Why this worker cannot run a row (None: it can): a worker leaves a
        #: job kind it has no handler for to one that has (coordination/worker.py).
        self.can_run = can_run
        #: A worker's sweep leaves a new, never started row this long to
        #: dispatch, which starts it in one step (coordination/worker.py).
        self.dispatch_grace_ms = dispatch_grace_ms
        self._not_before: dict[str, int] = {}  # start times of listed rows (dispatch)
        self._examining = asyncio.Semaphore(EXAMINE_CONCURRENCY)
        self._active: set[str] = set()  # rows this worker is at (see _attempt)
        self._runs = 0  # run slots taken (max_runs)
        self._parked = ParkedRows()
        self._live: dict[str, ProcessLease] = {}  # read at the start of a pass
        self._now = 0  # the server time a pass listed its rows at
        self._due_pass = False  # whether the last pass listed due rows only
        self._why: dict[str, str] = {}  # why a row was skipped, until reported
        self._shared_identity = False  # another live worker registered our identity

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
        """One pass over every running row (lash's sweep); rows are independent
        (SW-3). A live lease whose holder is provably dead is reclaimed here
        before it lapses."""
        return await self._sweep(due=False)

    async def sweep_due(self) -> SweepReport:
        """One pass as ``run`` makes it: only the rows due for a look (lapsed or
        released leases, never-claimed rows, rows whose deferral ran out), so
        its cost follows those, not the running rows (store/worklist.py)."""
        return await self._sweep(due=True)

    async def _sweep(self, *, due: bool) -> SweepReport:
        if obs.hooks is not None:
            return await obs.hooks.sweep(self._sweep_rows(due=due))
        return await self._sweep_rows(due=due)

    async def _sweep_rows(self, *, due: bool) -> SweepReport:
        report = SweepReport()
        rows = await self._listed(due=due)
        report.examined = len(rows)
        rows, deferred = await self._defer_listed(rows)
        for pid in deferred:
            report.skipped.append(pid)
            report.reasons[pid] = self._why.pop(pid)
        outcomes = await asyncio.gather(
            *(self.recover(row) for row in rows), return_exceptions=True
        )
        for row, outcome in zip(rows, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                log.warning("recovery of %s failed: %s", row.id, outcome)
                report.failed.append(row.id)
            else:
                getattr(report, outcome).append(row.id)
            reason = self._why.pop(row.id, None)
            if outcome == "skipped":
                report.reasons[row.id] = reason or "being recovered by this worker already"
        return report

    async def _listed(self, *, due: bool, busy: Container[str] = ()) -> list[ProcessRecord]:
        """The rows a pass examines (every running row, or the due ones) less
        ``busy``, with the live leases among them read in one pipeline."""
        self._due_pass = due
        if due:
            self._now, rows = await self.store.due_records()
        else:
            rows = await self.store.list_non_terminal()
            self._now = await self.store.server_time_ms()
            self._parked.keep_only(row.id for row in rows)
        rows = [row for row in rows if row.id not in busy]
        # Independent reads: overlapped, so the schedule costs a pass no round trip.
        self._live, self._not_before = await asyncio.gather(
            self.store.live_leases([row.id for row in rows], self._now),
            self.store.not_before([r for r in rows if self._may_run(r)]),
        )
        return rows

    def _left_for_later(self, record: ProcessRecord) -> tuple[int, str] | None:
        """When a pass is next to look at a row it must not start yet, and
        why: a delayed job, or a new one left to dispatch (a worker's grace).
        None: the row is recovered now (``_before_claim`` decides the rest)."""
        if not self._may_run(record):
            return None
        start_at = self._not_before.get(record.id, 0)
        if start_at > self._now:  # a delayed job (store/dispatch.py): looked at then
            return start_at, f"delayed: starts in {(start_at - self._now) / 1000:.1f} s"
        if self._cannot_run(record) is not None:
            return None
        fresh_until = record.created_at_ms + self.dispatch_grace_ms
        # Only a worker has a grace, and only a pass knows the time.
        dispatching = self.dispatch_grace_ms > 0 and self._now > 0
        fresh = dispatching and fresh_until > self._now and record.first_started is None
        if fresh and record.id not in self._live:
            return fresh_until, "new: left to dispatch for now"
        return None

    async def _defer_listed(
        self, rows: list[ProcessRecord]
    ) -> tuple[list[ProcessRecord], list[str]]:
        """The listed rows a pass leaves for later (``_left_for_later``),
        deferred in one pipeline (a backlog of new jobs costs a pass one round
        trip, not one per job) with their reasons in ``_why``; and the rows
        left to recover."""
        deferred: dict[str, int] = {}
        left: list[ProcessRecord] = []
        for row in rows:
            later = None if row.id in self._active else self._left_for_later(row)
            if later is None:
                left.append(row)
            else:
                deferred[row.id], self._why[row.id] = later
        await self.store.defer_sweeps(deferred)
        return left, list(deferred)

    async def _defer(self, pid: str, due_at_ms: int | None = None) -> None:
        """Left as it is on purpose: due passes look again at ``due_at_ms``
        (default: one lease TTL from now, the bound on noticing a starter's
        death, SW-11)."""
        if due_at_ms is None:
            due_at_ms = self._now + self.lease_ttl_ms
        await self.store.defer_sweep(pid, due_at_ms)

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
        loop = asyncio.get_running_loop()
        # The second pass relays over every process (an intent nobody marked,
        # store/delivery.py), not the first: a worker starting into a backlog
        # serves it before that scan.
        full_relay_at = loop.time() + every_s

        def finished(pid: str, task: asyncio.Task[str]) -> None:
            inflight.pop(pid, None)
            self._why.pop(pid, None)
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
                    rows, deferred = await self._defer_listed(
                        await self._listed(due=True, busy=inflight)
                    )
                    for pid in deferred:
                        self._why.pop(pid, None)
                        if obs.hooks is not None:
                            obs.hooks.row_recovered("skipped")
                    for row in rows:
                        task = asyncio.create_task(self.recover(row))
                        inflight[row.id] = task
                        task.add_done_callback(functools.partial(finished, row.id))
                    full = loop.time() >= full_relay_at
                    await self.store.relay_pending(full=full)
                    await self._check_identity()
                    if full:
                        # Only a cluster can leave an intent unmarked (store/delivery.py).
                        full_relay_at = loop.time() + (
                            FULL_RELAY_EVERY_S if self.store.cluster else math.inf
                        )
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

    async def _check_identity(self) -> None:
        """With fleet liveness, a newer incarnation of this worker's identity
        while this one runs means two live workers share it: each registration
        proves the other dead, so their work is abandoned under them (issue 16:
        silently). Said once, as an error, by the worker that can tell."""
        if not self.fleet_liveness or self._shared_identity:
            return
        from lash_streams.coordination.fleet_liveness import is_provably_dead

        if await is_provably_dead(self.store, self.stem):
            self._shared_identity = True
            log.error(
                "worker `%s` (incarnation `%s`) is alive, but a newer incarnation of its "
                "identity registered: two workers share this identity, and sweepers treat "
                "this one as dead (its started owner-bound rows get abandoned). Give each "
                "worker its own identity (docs/recovery.md).",
                self.stem.owner_id,
                self.stem.incarnation_id,
            )

    async def recover(self, record: ProcessRecord) -> str:
        if record.id in self._active:
            return "skipped"
        # Decided without a claim, so outside the guard: a dispatched start of
        # the row on this worker meanwhile is not refused for it.
        early = await self._before_claim(record)
        if early is not None:
            return early
        if record.id in self._active:
            return "skipped"
        return await self._attempt(record.id, lambda attempt: self._recover(record, attempt))

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

    def _cannot_run(self, record: ProcessRecord) -> str | None:
        if self.runner is None and self.unrunnable == "skip":
            return "no runner here: left for a worker that can run it"
        return None if self.can_run is None else self.can_run(record)

    async def _before_claim(self, record: ProcessRecord) -> str | None:
        """The skips that need no claim: a delayed or new job, a kind this
        worker cannot run, no free slot, a parked row, a live holder."""
        runs = self._may_run(record)
        later = self._left_for_later(record)
        if later is not None:
            await self._defer(record.id, later[0])
            return self._skip(record.id, later[1])
        cannot = self._cannot_run(record) if runs else None
        if cannot is not None:
            return self._skip(record.id, cannot)
        if runs and self._runs >= self.max_runs:
            return self._skip(record.id, "every run slot of this worker is taken")
        starter = self._parked.parked(record)
        if starter is not None and not await self.holder_is_dead(starter.owner, self.stem):
            await self._defer(record.id)
            return self._skip(record.id, _LEFT_RUNNING)
        held = self._live.pop(record.id, None)
        if held is not None and not await self._evidence_may_exist(record, held):
            if self._due_pass:  # listed as due early: a lost rescore, repaired here
                await self._defer(record.id, held.expires_at_epoch_ms)
            return self._skip(record.id, "held by a live owner")  # SW-7
        return None

    async def _recover(self, record: ProcessRecord, attempt: LeaseOwnerIdentity) -> str:
        # Bounded (100k rows would queue 100k callers on the pool); the examine
        # slot is given back before the run, a run slot is held for its life.
        async with self._examining:
            decision = await self._examine(record, attempt)
        if isinstance(decision, str):
            return decision
        current, lease = decision
        cannot = self._cannot_run(current)
        if cannot is not None or self._runs >= self.max_runs:
            # Slots filled by rows examined meanwhile (no reservation above:
            # rows that turn out busy would hold slots).
            await self.store.complete_process_lease(ProcessLeaseCompletion.from_lease(lease))
            # A worker that read the row's ready entry while this claim held
            # it dropped the entry: queue it again for the kind's workers.
            await self.store.queue_ready(current)
            return self._skip(record.id, cannot or "every run slot of this worker is taken")
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
                await self._defer(pid)  # an abandon request makes it due at once
                return self._skip(pid, "externally owned, no abandon request")  # SW-5
            outcome = await store.claim_process_lease(pid, attempt, self.lease_ttl_ms)
            if not isinstance(outcome, LeaseAcquired):
                return self._skip(pid, "held by a live owner")  # SW-6: plain claim only
            lease = outcome.lease
            if await self.became_terminal(pid, lease):
                return self._skip(pid, "terminal already")
            output = await self.abandoned_output(AbandonWriter.RECONCILED_REQUEST, None)
            await self.fenced_terminal(pid, lease, output)
            return "abandoned"
        outcome = await store.claim_process_lease(pid, attempt, self.lease_ttl_ms)
        evidence: LeaseOwnerIdentity | None = None
        if isinstance(outcome, LeaseBusy):
            holder = outcome.holder
            if not await self.holder_is_dead(holder.owner, attempt):
                return self._skip(pid, "held by a live owner")  # SW-7
            outcome = await store.reclaim_process_lease(
                pid, attempt, holder, self.lease_ttl_ms, death_evidence=True
            )
            if not isinstance(outcome, LeaseAcquired):
                return self._skip(pid, "taken by another worker meanwhile")
            evidence = holder.owner
        if not isinstance(outcome, LeaseAcquired):
            return self._skip(pid, "taken by another worker meanwhile")
        lease = outcome.lease
        if await self.became_terminal(pid, lease):
            return self._skip(pid, "terminal already")  # SW-8
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
            await self._defer(pid)
            return self._skip(pid, _LEFT_RUNNING)
        await self.fenced_terminal(pid, lease, output)
        return "abandoned"

    # -- graceful drain ----------------------------------------------------------

    async def drain(self) -> list[str]:
        """AB-2 owner_drain: abandon this worker's own started owner-bound rows
        under a fresh lease; busy rows are deferred (coordination/drain.py)."""
        from lash_streams.coordination.drain import owner_drain

        return await owner_drain(self)
