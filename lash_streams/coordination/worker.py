"""A worker (issue 16): handlers per job kind, a bounded number of jobs at
once, retries with backoff, and dispatch, so a registered job reaches a free
worker within one blocking read (store/dispatch.py).

A ``Worker`` is a ``Recovery`` (the sweep that finds lapsed and undispatched
work, and the fenced run path) plus a dispatch loop over the ready streams of
its kinds. Both take run slots from one count, ``concurrency``: a read asks
for as many jobs as there are free slots, and each job it got takes a slot
before it starts, so when a sweep took one meanwhile the job waits here for
the next free slot rather than run over the bound. Slots are not reserved
across the blocking read: an idle worker's sweep must be able to run the
work of a dead one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from lash_streams import errors
from lash_streams import observability as obs
from lash_streams.coordination.gauges import publish as publish_gauges
from lash_streams.coordination.jobs import (
    NO_RETRY,
    Handler,
    HandlerSpec,
    Job,
    JobFailed,
    JobOutcome,
    JobRetry,
    decode_payload,
    output_of,
    spec_of,
    status_of,
)
from lash_streams.coordination.lease_runs import cancel_until_done, runner_failure
from lash_streams.coordination.recovery import Recovery
from lash_streams.coordination.row_runs import Started
from lash_streams.coordination.wake_streams import Outage
from lash_streams.model import (
    AwaitFailure,
    LeaseOwnerIdentity,
    ProcessAwaitOutput,
    ProcessLease,
    ProcessRecord,
    RecoveryDisposition,
)
from lash_streams.store import grouped
from lash_streams.store.dispatch import ReadyJob

if TYPE_CHECKING:
    from lash_streams.store import Store

log = logging.getLogger("lash_streams.worker")

#: How long a read entry may stay untaken (its reader died between the read
#: and the start) before another worker takes it over, at least.
RECLAIM_IDLE_MIN_MS = 5_000


class Worker:
    """Runs jobs of the kinds in ``handlers`` (``bus.worker(...)``)."""

    def __init__(
        self,
        store: Store,
        identity: LeaseOwnerIdentity,
        handlers: Mapping[str, Handler | HandlerSpec] | None = None,
        *,
        concurrency: int = 8,
        retry: JobRetry | None = None,
        lease_ttl_ms: int = 30_000,
        renew_every_ms: int = 10_000,
        sweep_every_s: float = 5.0,
        block_ms: int = 1_000,
        fleet_liveness: bool = True,
    ) -> None:
        if not isinstance(identity, LeaseOwnerIdentity):
            raise errors.InvalidValue(
                f"identity must be a LeaseOwnerIdentity (ls.owner_identity()), got {identity!r}"
            )
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise errors.InvalidValue(
                f"concurrency must be a positive integer, got {concurrency!r}"
            )
        if retry is not None and not isinstance(retry, JobRetry):
            raise errors.InvalidValue(f"retry must be a JobRetry, got {retry!r}")
        if not isinstance(sweep_every_s, int | float) or not sweep_every_s > 0:
            raise errors.InvalidValue(f"sweep_every_s must be > 0, got {sweep_every_s!r}")
        if isinstance(block_ms, bool) or not isinstance(block_ms, int) or block_ms < 1:
            raise errors.InvalidValue(f"block_ms must be a positive integer, got {block_ms!r}")
        self.store = store
        self.identity = identity
        self.concurrency = concurrency
        self.retry = retry or NO_RETRY
        self.sweep_every_s = float(sweep_every_s)
        self.block_ms = block_ms
        self.handlers: dict[str, HandlerSpec] = {}
        if handlers is not None and not isinstance(handlers, Mapping):
            raise errors.InvalidType(
                f"handlers is a mapping of job kind -> handler, got {type(handlers).__name__}"
            )
        for kind, fn in (handlers or {}).items():
            self._add(kind, fn)
        try:
            self.recovery = Recovery(
                store,
                identity,
                runner=self._run_job,
                lease_ttl_ms=lease_ttl_ms,
                renew_every_ms=renew_every_ms,
                fleet_liveness=fleet_liveness,
                max_runs=concurrency,
                can_run=self._cannot_run,
                # A job whose ready entry was lost waits at most this long.
                dispatch_grace_ms=round(self.sweep_every_s * 1000),
            )
        except ValueError as err:
            raise errors.InvalidValue(str(err)) from None
        self.consumer = f"{identity.owner_id}/{identity.incarnation_id}"
        # The attempt each job started by dispatch or execute() is at (a job a
        # sweep runs is not here: nobody reads its count).
        self._attempts: dict[str, int] = {}
        # Lone jobs started in the reading task whose own task has not begun
        # yet: handed back by run() if stopping cancels that task first.
        self._begun: dict[str, Started] = {}
        self._freed = asyncio.Event()  # a run slot was given back
        self._outage = Outage(f"worker `{identity.owner_id}`", "workers")

    # -- handlers ----------------------------------------------------------------

    def _add(self, kind: str, fn: Handler | HandlerSpec) -> None:
        if not isinstance(kind, str) or not kind.strip():
            raise errors.InvalidValue(f"a job kind is a non-empty string, got {kind!r}")
        self.handlers[kind] = spec_of(fn)

    def handle(self, kind: str, *, retry: JobRetry | None = None) -> Callable[[Handler], Handler]:
        """Decorator form: ``@worker.handle("web_search")``."""

        def register(fn: Handler) -> Handler:
            self._add(kind, spec_of(fn, retry))
            return fn

        return register

    def _cannot_run(self, record: ProcessRecord) -> str | None:
        kind = record.identity.kind
        if kind in self.handlers:
            return None
        return f"no handler for job kind `{kind}` here: left for a worker that has one"

    # -- running one job -----------------------------------------------------------

    async def _run_job(self, record: ProcessRecord, lease: ProcessLease) -> ProcessAwaitOutput:
        """The runner: the kind's handler, attempted per its retry policy. The
        lease is renewed and a cancel request honoured around it (RowRuns).
        Counted here by what the handler came to, whoever started the job."""
        output = await self._attempt_all(record, lease)
        if obs.hooks is not None:
            obs.hooks.job_done(record.identity.kind, status_of(output))
        return output

    async def _attempt_all(self, record: ProcessRecord, lease: ProcessLease) -> ProcessAwaitOutput:
        spec = self.handlers.get(record.identity.kind)
        if spec is None:  # checked before the claim; a concurrent rebind is not possible
            return runner_failure(LookupError(f"no handler for `{record.identity.kind}`"))
        policy = spec.retry or self.retry
        attempt = 0
        while True:
            attempt += 1
            if record.id in self._attempts:
                self._attempts[record.id] = attempt
            try:
                payload = decode_payload(spec, record)
                job = Job(
                    id=record.id,
                    kind=record.identity.kind,
                    payload=payload,
                    record=record,
                    attempt=attempt,
                    lease=lease,
                    _store=self.store,
                )
                return output_of(await spec.fn(job))
            except JobFailed as err:
                return AwaitFailure(
                    class_=err.failure_class,
                    code=err.code,
                    message=err.message,
                    raw={"attempts": attempt},
                )
            except Exception as err:
                if attempt >= policy.attempts:
                    log.exception(
                        "job `%s` (%s) failed on attempt %d of %d",
                        record.id,
                        record.identity.kind,
                        attempt,
                        policy.attempts,
                    )
                    failure = runner_failure(err)
                    raw = dict(failure.raw) if isinstance(failure.raw, dict) else {}
                    return AwaitFailure(
                        class_=failure.class_,
                        code="job_failed",
                        message=failure.message,
                        raw={**raw, "attempts": attempt},
                    )
                wait = policy.backoff(attempt)
                log.warning(
                    "job `%s` (%s) attempt %d of %d raised %s: %s; retrying in %.2f s",
                    record.id,
                    record.identity.kind,
                    attempt,
                    policy.attempts,
                    type(err).__name__,
                    err,
                    wait,
                )
                if obs.hooks is not None:
                    obs.hooks.job_retried(record.identity.kind)
                await asyncio.sleep(wait)

    async def execute(self, process_id: str) -> JobOutcome:
        """Start and run one job now, whatever dispatch does (it holds a run
        slot, never refused for want of one, as ``Recovery.execute``)."""
        record = await self.store.get_process(process_id)
        if record is None:
            raise errors.UnknownProcess(process_id)
        self.recovery._refuse_external(record)
        cannot = self._cannot_run(record)
        if cannot is not None:
            return JobOutcome(process_id, "not_started", reason=cannot)
        self.recovery._runs += 1
        try:
            return await self._run_ready(process_id, record.disposition, record.identity.kind)
        finally:
            self._give_back()

    async def _run_ready(
        self,
        process_id: str,
        disposition: RecoveryDisposition,
        kind: str,
        begun: Started | str | None = None,
    ) -> JobOutcome:
        """``begun``: the job's start, made already (``_start_alone``)."""
        self._attempts[process_id] = 0
        try:
            if begun is None:
                status, output = await self.recovery.run_dispatched(process_id, disposition)
            elif isinstance(begun, str):
                status, output = begun, None
            else:
                status, output = await self.recovery.run_started(begun)
        finally:
            attempts = self._attempts.pop(process_id, 0)
        if status != "ran":
            return JobOutcome(process_id, "not_started", reason=status)
        if output is None:
            if obs.hooks is not None:
                obs.hooks.job_done(kind, "lost")
            return JobOutcome(process_id, "lost", attempts=attempts)
        return JobOutcome(process_id, status_of(output), output, attempts)

    def _give_back(self) -> None:
        self.recovery._runs -= 1
        self._freed.set()
        self._report_busy()

    def _report_busy(self) -> None:
        if obs.hooks is not None:
            obs.hooks.jobs_busy(self.identity.owner_id, self.recovery._runs)

    # -- serving -------------------------------------------------------------------

    async def run(self, *, stop: asyncio.Event | None = None) -> None:
        """Serve until ``stop`` is set: dispatch, and a sweep every
        ``sweep_every_s`` (lapsed leases, jobs no dispatch reached). On stop,
        running jobs are handed back unfinished (no terminal), so another
        worker takes them at once."""
        if not self.handlers:
            raise errors.InvalidValue("a worker needs at least one handler")
        stop = stop or asyncio.Event()
        if self.recovery.fleet_liveness:
            await self.recovery.register()
        kinds = list(self.handlers)
        for kind in kinds:
            await self.store.ensure_ready_group(kind)
        sweep = asyncio.create_task(self.recovery.run(self.sweep_every_s, stop=stop))
        gauges = asyncio.create_task(publish_gauges(self.store, stop))
        inflight: set[asyncio.Task[JobOutcome]] = set()
        try:
            await self._dispatch(kinds, stop, inflight)
        finally:
            stop.set()
            await cancel_until_done(*inflight)
            for begun in list(self._begun.values()):  # cancelled before they began
                self._begun.pop(begun.process_id, None)
                await self.recovery.release_started(begun)
                self._give_back()
            await sweep
            await gauges

    async def _dispatch(
        self, kinds: list[str], stop: asyncio.Event, inflight: set[asyncio.Task[JobOutcome]]
    ) -> None:
        loop = asyncio.get_running_loop()
        promote_at = reclaim_at = loop.time()
        reclaim_idle = max(RECLAIM_IDLE_MIN_MS, self.recovery.lease_ttl_ms)
        stopping = asyncio.create_task(stop.wait())
        inflight_settles: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                free = self.concurrency - self.recovery._runs
                if free <= 0:
                    await self._slot_freed(stopping)
                    continue
                jobs: list[ReadyJob] = []
                try:
                    now = loop.time()
                    if now >= promote_at:
                        wait_ms = await self.store.promote_due()
                        next_ms = self.block_ms if wait_ms is None else min(self.block_ms, wait_ms)
                        promote_at = now + next_ms / 1000
                    if now >= reclaim_at:
                        reclaim_at = now + reclaim_idle / 1000
                        jobs = await self.store.reclaim_ready(
                            kinds, self.consumer, reclaim_idle, free
                        )
                    if not jobs:
                        # Woken by a new entry, or when a delayed job is due.
                        block = max(1, min(self.block_ms, int((promote_at - now) * 1000)))
                        jobs = await self.store.read_ready(kinds, self.consumer, free, block)
                    self._outage.over()
                except (RedisError, OSError, errors.BackendError) as err:
                    if isinstance(err, errors.GroupMissing):
                        for kind in kinds:  # the server lost the streams (restart, flush)
                            with contextlib.suppress(RedisError, OSError):
                                await self.store.ensure_ready_group(kind)
                    else:
                        self._outage.fault(err)
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(asyncio.shield(stopping), 1.0)
                    jobs = []
                if any(not job.process_id for job in jobs):
                    promote_at = loop.time()  # a job was scheduled: read the schedule again

                def settle_them(jobs: list[ReadyJob] = jobs) -> None:
                    # Settled (acknowledged and deleted) as they start, in one
                    # round trip: an entry is a hint, the lease the truth.
                    settle = asyncio.create_task(self._settle(jobs))
                    inflight_settles.add(settle)
                    settle.add_done_callback(inflight_settles.discard)

                # Several: the settle shares the starts' round trip. One: its
                # start goes first (the settle is off the job's path).
                if len(jobs) > 1:
                    settle_them()
                for n, job in enumerate(jobs):
                    while self.recovery._runs >= self.concurrency and not stop.is_set():
                        await self._slot_freed(stopping)  # a sweep run took the slot
                    if stop.is_set():
                        # Read, settled and not started: hand them to the other workers.
                        await self._requeue(jobs[n:])
                        break
                    self.recovery._runs += 1  # the job's slot, given back when it ends
                    self._report_busy()
                    begun: Started | str | None = None
                    if len(jobs) == 1 and job.process_id:
                        # A lone entry starts here, before the loop runs
                        # whatever else is ready: its start is on the
                        # register -> start path (store/grouped.py ALONE).
                        try:
                            begun = await self._start_alone(job)
                        except BaseException:  # cancelled: no task will give it back
                            self._give_back()
                            raise
                        if isinstance(begun, Started):
                            self._begun[job.process_id] = begun
                    # A lone entry's terminal goes at once too, not a turn
                    # later with nothing to share its round trip.
                    alone = grouped.ALONE.set(len(jobs) == 1)
                    try:
                        task = asyncio.create_task(self._take(job, begun))
                    finally:
                        grouped.ALONE.reset(alone)
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                if len(jobs) == 1:
                    settle_them()
        finally:
            stopping.cancel()
            await asyncio.gather(*inflight_settles, return_exceptions=True)

    async def _slot_freed(self, stopping: asyncio.Task[Any]) -> None:
        """Until a run slot is given back (a sweep's runs give theirs back
        without a word: looked at again every 50 ms) or the worker stops."""
        self._freed.clear()
        freed = asyncio.create_task(self._freed.wait())
        await asyncio.wait({freed, stopping}, timeout=0.05, return_when=asyncio.FIRST_COMPLETED)
        freed.cancel()

    async def _start_alone(self, job: ReadyJob) -> Started | str:
        """A lone entry's start, or why it did not start (a failed start is
        logged, as ``_take`` logs one)."""
        alone = grouped.ALONE.set(True)  # sent at once: nothing to group with
        try:
            return await self.recovery.start_dispatched(job.process_id, job.disposition)
        except Exception as err:
            return _start_failed(job, err)
        finally:
            grouped.ALONE.reset(alone)

    async def _take(self, job: ReadyJob, begun: Started | str | None = None) -> JobOutcome:
        """One read entry: start (unless ``begun``) and run its job in the
        slot taken for it (the entry is settled with its read's batch,
        whatever comes of it)."""
        try:
            if not job.process_id:
                return JobOutcome("", "not_started", reason="not a ready entry")
            self._begun.pop(job.process_id, None)
            return await self._run_ready(job.process_id, job.disposition, job.kind, begun)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            return JobOutcome(job.process_id, "not_started", reason=_start_failed(job, err))
        finally:
            self._give_back()

    async def _requeue(self, jobs: list[ReadyJob]) -> None:
        with contextlib.suppress(RedisError, OSError, errors.BackendError):
            await self.store.requeue_ready([job for job in jobs if job.process_id])

    async def _settle(self, jobs: list[ReadyJob]) -> None:
        with contextlib.suppress(RedisError, OSError, errors.BackendError):
            await self.store.settle_ready(jobs)

    async def shutdown(self) -> list[str]:
        """Graceful exit after ``run`` returned: abandon this worker's own
        started owner-bound jobs and record the exit (``Recovery.shutdown``)."""
        return await self.recovery.shutdown()


def _start_failed(job: ReadyJob, err: Exception) -> str:
    log.warning("job `%s`: start failed: %s: %s", job.process_id, type(err).__name__, err)
    return str(err)
