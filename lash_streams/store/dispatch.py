"""Dispatch: runnable jobs handed to a free worker at once (issue 16).

A job kind (a registration's ``identity.kind``) has a ready stream read by one
consumer group, ``workers``. Registering a job that can start (rerunnable, or
owner-bound and not started) queues its id there, in the registration's own
round trip, while the stream exists: a worker of that kind creates it with its
group, so a namespace nobody dispatches for writes nothing. A job with a start
time waits in the delayed schedule (a zset scored by server milliseconds)
until a worker's ``promote_due`` queues it.

The ready stream and the schedule are hints; the lease row is the truth, as
for the worklist. A worker starts a job with ``start_job`` (one script: claim
the free lease and record ``first_started``), which refuses a terminal row, an
owner-bound row someone started and a live lease, so a duplicate or stale
entry costs a read, never a second run. A lost entry (a cluster writer killed
between the record and the queue, a crash between ``promote_due`` and the
queue) leaves the row in the worklist with a due score: a sweep pass runs it.
The schedule is also what every sweep checks before running a row
(``not_before``), so a delayed job never starts early, whoever finds it.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from redis.exceptions import ResponseError

from lash_streams import observability as obs
from lash_streams.errors import GroupMissing, InvalidValue, LashStreamsError
from lash_streams.ids import id_bytes
from lash_streams.model import (
    LeaseOwnerIdentity,
    ProcessLease,
    ProcessRecord,
    ProcessRegistration,
    RecoveryDisposition,
)
from lash_streams.model._codec import encode
from lash_streams.semantics.inputs import json_problem, require, require_u64, wire_bytes
from lash_streams.semantics.registration import prepare_registration_json
from lash_streams.store import worklist
from lash_streams.store.core import StoreCore, text
from lash_streams.store.leases import checked_ttl, lease_of_reply
from lash_streams.store.retry import server_error

#: The consumer group every worker of a kind reads the kind's ready stream in.
READY_GROUP = "workers"

#: A ready stream's approximate cap: entries over it are dropped oldest first,
#: and those jobs wait for a sweep pass instead (a hint, never the truth).
READY_MAXLEN = 100_000

#: How long after its registration a job queued for dispatch is first due for
#: sweeps, on a single server (a default worker's sweep period): a worker
#: takes it within one read, and a lost entry waits at most this long, or its
#: worker's own grace when that is longer.
DISPATCH_GRACE_MS = 5_000

#: A consumer (a worker incarnation) of a ready group with nothing pending is
#: deleted after this long idle: every worker restart adds one.
IDLE_CONSUMER_MS = 3_600_000

#: Most delayed jobs one ``promote_due`` call takes off the schedule.
PROMOTE_BATCH = 256

_MEMBER = msgspec.json.Encoder()
_MEMBER_DECODE = msgspec.json.Decoder(tuple[str, str, str])


#: Lease owners ``wire_bytes`` checked whole, by identity (a worker's stem is
#: the same object on every start), and the liveness values they hold. Only
#: frozen values: their fields cannot be rebound. Bounded, oldest out first.
_CHECKED_OWNERS: OrderedDict[int, tuple[LeaseOwnerIdentity, bytes]] = OrderedDict()
_CHECKED_LIVENESS: OrderedDict[int, Any] = OrderedDict()
_CHECKED_MAX = 256


def _refused(what: str, err: ResponseError) -> LashStreamsError:
    """A ready stream's read refused: typed, and for a missing group the way out."""
    error = server_error(what, err)
    if isinstance(error, GroupMissing):
        return GroupMissing(
            f"{error} (no worker created that kind's group yet, or the server lost it: "
            "bus.ensure_ready_group(kind) creates it; a worker does so by itself)"
        )
    return error


def owner_wire(owner: Any, name: str) -> bytes:
    """``wire_bytes(owner, LeaseOwnerIdentity, name)``, cheaper for what a
    worker sends on every start: its stem (checked once), and an attempt
    identity (``RowRuns.attempt_identity``), two plain string ids beside a
    liveness checked whole, which reads back as it is."""
    hit = _CHECKED_OWNERS.get(id(owner))
    if hit is not None and hit[0] is owner:
        return hit[1]
    if (
        type(owner) is LeaseOwnerIdentity
        and _CHECKED_LIVENESS.get(id(owner.liveness)) is owner.liveness
        and type(owner.owner_id) is str
        and type(owner.incarnation_id) is str
        and json_problem(owner.owner_id) is None
        and json_problem(owner.incarnation_id) is None
    ):
        return encode(owner)
    data = wire_bytes(owner, LeaseOwnerIdentity, name)
    _CHECKED_OWNERS[id(owner)] = (owner, data)
    _CHECKED_LIVENESS[id(owner.liveness)] = owner.liveness
    for cache in (_CHECKED_OWNERS, _CHECKED_LIVENESS):
        if len(cache) > _CHECKED_MAX:
            cache.popitem(last=False)
    return data


def runnable(disposition: RecoveryDisposition) -> bool:
    """Whether a new row of this disposition is work a worker starts
    (externally owned rows never run here, SW-5)."""
    return disposition is not RecoveryDisposition.EXTERNALLY_OWNED


def schedule_member(kind: str, process_id: str, disposition: RecoveryDisposition) -> bytes:
    """A delayed job's member: everything a worker needs to queue it."""
    return _MEMBER.encode([kind, process_id, disposition.value])


@dataclass(frozen=True)
class ReadyJob:
    """One ready-stream entry: a job a worker may start."""

    kind: str
    entry_id: str
    process_id: str
    disposition: RecoveryDisposition


StartStatus = Literal["started", "terminal", "started_elsewhere", "busy", "unknown"]


@dataclass(frozen=True)
class JobStart:
    """``start_job``'s answer: ``started`` with the lease and the record as it
    is now, or why the job must not start here."""

    status: StartStatus
    lease: ProcessLease | None = None
    record: ProcessRecord | None = None


async def queue_ready(core: StoreCore, record: ProcessRecord) -> bool:
    """Queue a registered row (a cluster's step after its record, a promoted
    delayed job, ``lash-streams retry``); False when nobody reads the kind's
    stream or the row cannot start."""
    if not runnable(record.disposition) or record.is_terminal():
        return False
    if record.disposition is RecoveryDisposition.OWNER_BOUND and record.first_started:
        return False
    stream = core.keys.ready_stream(record.identity.kind)
    args = [record.id, record.disposition.value, READY_MAXLEN]
    queued = await core.retry.idempotent(
        f"queue `{record.id}` for dispatch",
        lambda: core.scripts.ready_job(keys=[stream, stream], args=args),
    )
    return bool(queued)


class DispatchOps(StoreCore):
    async def queue_ready(self, record: ProcessRecord) -> bool:
        """Queue a running job for the workers of its kind (``retry``, a
        sweep that claimed a row it then could not run); False when no worker
        reads the kind or the row cannot start."""
        return await queue_ready(self, record)

    async def schedule_process(
        self, registration: ProcessRegistration, not_before_ms: int
    ) -> ProcessRecord:
        """Register a job that no worker or sweep starts before
        ``not_before_ms`` (server milliseconds; a time already past starts it
        at once). The schedule entry is written before the record, so no
        sweep can find the row unscheduled; registering an existing id with
        the same registration leaves its schedule as it was."""
        reg = registration
        if not isinstance(reg, ProcessRegistration):
            raise InvalidValue(f"registration must be a ProcessRegistration, got {reg!r}")
        try:
            when = require_u64(not_before_ms, "not_before_ms")
        except (TypeError, ValueError) as err:
            raise InvalidValue(f"{err} (server milliseconds)") from None
        if not runnable(reg.disposition):
            raise InvalidValue(
                f"process `{reg.id}` is externally owned: it is never started here, "
                "so it cannot be scheduled"
            )
        prepare_registration_json(reg)  # refused here, before the schedule is written
        member = schedule_member(reg.identity.kind, reg.id, reg.disposition)
        added = await self.retry.idempotent(
            f"schedule `{reg.id}`", lambda: self.redis.zadd(self.keys.delayed, {member: when})
        )
        try:
            record = await self.register_process(reg, dispatch=False)  # type: ignore[attr-defined]
        except LashStreamsError:
            if added:  # refused (a conflict): take back the entry this call wrote
                await self.redis.zrem(self.keys.delayed, member)
            raise
        assert isinstance(record, ProcessRecord)
        if record.created_at_ms > when or record.is_terminal():
            # Registered before (its schedule, if any, was already used): not ours to delay.
            await self.redis.zrem(self.keys.delayed, member)
        else:
            await worklist.rescore(self, reg.id, when)  # due passes look then, not before
            # Wake the kind's workers: each sets its next promote_due by the schedule.
            stream = self.keys.ready_stream(reg.identity.kind)
            await self.retry.idempotent(
                "wake workers for a schedule",
                lambda: self.scripts.ready_job(keys=[stream, stream], args=["", "tick", 1000]),
            )
        return record

    async def defer_sweeps(self, due_at_ms: dict[str, int]) -> None:
        """``defer_sweep`` for many rows in one pipeline (a sweep pass leaving
        a backlog of new jobs to dispatch): due passes look at each row again
        only from its time (server milliseconds). A hint, as ``defer_sweep``."""
        require(due_at_ms, dict, "due_at_ms")
        for pid, due in due_at_ms.items():
            id_bytes("process id", pid)
            require_u64(due, "due_at_ms")
        await worklist.rescore_many(self, due_at_ms)

    async def not_before(self, records: list[ProcessRecord]) -> dict[str, int]:
        """The start times of those ``records`` still on the schedule."""
        if not records:
            return {}
        members = [schedule_member(r.identity.kind, r.id, r.disposition) for r in records]
        scores = await self.retry.idempotent(
            "read job start times", lambda: self.redis.zmscore(self.keys.delayed, members)
        )
        return {r.id: int(s) for r, s in zip(records, scores, strict=True) if s is not None}

    async def promote_due(self) -> int | None:
        """Queue the delayed jobs whose time came; the milliseconds until the
        next one (None when none is scheduled)."""
        reply = await self.retry.idempotent(
            "promote delayed jobs",
            lambda: self.scripts.promote_due(keys=[self.keys.delayed], args=[PROMOTE_BATCH]),
        )
        wait = int(reply[0])
        await self._queue("queue promoted jobs", [_MEMBER_DECODE.decode(m) for m in reply[1:]])
        return None if wait < 0 else wait

    async def _queue(self, what: str, entries: list[tuple[str, str, str]]) -> None:
        """Ready entries ``(kind, process id, disposition)``, one pipeline."""
        if not entries:
            return
        pipe = self.redis.pipeline(transaction=False)
        for kind, pid, disposition in entries:
            stream = self.keys.ready_stream(kind)
            args = [pid, disposition, READY_MAXLEN]
            await self.scripts.ready_job(keys=[stream, stream], args=args, client=pipe)
        await self.retry.idempotent(what, pipe.execute)

    async def ensure_ready_group(self, kind: str) -> str:
        """Create the kind's ready stream and its worker group (idempotent)."""
        stream = self.keys.ready_stream(kind)
        try:
            await self.redis.xgroup_create(stream, READY_GROUP, id="0", mkstream=True)
        except ResponseError as err:
            if "BUSYGROUP" not in str(err):
                raise
        return stream

    async def read_ready(
        self, kinds: list[str], consumer: str, count: int, block_ms: int | None
    ) -> list[ReadyJob]:
        """Up to ``count`` new entries over the kinds' streams, one blocking
        read (every ready stream shares one slot)."""
        require(kinds, list | tuple, "kinds")
        if not kinds:
            return []
        id_bytes("consumer", consumer)
        streams = {self.keys.ready_stream(kind): kind for kind in kinds}
        client = self.blocking_for(next(iter(streams)))
        try:
            reply = await client.xreadgroup(
                READY_GROUP, consumer, dict.fromkeys(streams, ">"), count=count, block=block_ms
            )
        except ResponseError as err:  # NOGROUP: GroupMissing (ensure_ready_group)
            raise _refused(f"read the ready streams of {list(streams.values())}", err) from None
        return _jobs(reply, streams)

    async def reclaim_ready(
        self, kinds: list[str], consumer: str, min_idle_ms: int, count: int
    ) -> list[ReadyJob]:
        """Entries read by a worker that died before taking them (idle past
        ``min_idle_ms``), moved to ``consumer``; and the group's consumers
        long gone (idle an hour, nothing pending) deleted."""
        require(kinds, list | tuple, "kinds")
        id_bytes("consumer", consumer)
        found: list[ReadyJob] = []
        for kind in kinds:
            stream = self.keys.ready_stream(kind)
            try:
                reply = await self.redis.xautoclaim(
                    stream, READY_GROUP, consumer, min_idle_ms, "0-0", count=count
                )
                members = await self.redis.xinfo_consumers(stream, READY_GROUP)
            except ResponseError as err:  # NOGROUP: GroupMissing (ensure_ready_group)
                raise _refused(f"reclaim the ready entries of `{kind}`", err) from None
            found.extend(_jobs([[stream, reply[1]]], {stream: kind}))
            for member in members:
                name = text(member["name"])
                idle = int(member.get("inactive", member["idle"]))
                if name != consumer and not member["pending"] and idle > IDLE_CONSUMER_MS:
                    await self.redis.xgroup_delconsumer(stream, READY_GROUP, name)
        return found

    async def requeue_ready(self, jobs: list[ReadyJob]) -> None:
        """Put read entries back on their streams, for another worker (a
        worker stopping with jobs it read and did not start)."""
        _check_jobs(jobs)
        entries = [(job.kind, job.process_id, job.disposition.value) for job in jobs]
        await self._queue("requeue ready entries", entries)

    async def settle_ready(self, jobs: list[ReadyJob]) -> None:
        """Taken (started, or found unable to start): acknowledged and deleted."""
        _check_jobs(jobs)
        if not jobs:
            return
        by_stream: dict[str, list[str]] = {}
        for job in jobs:
            by_stream.setdefault(self.keys.ready_stream(job.kind), []).append(job.entry_id)

        async def settle(stream: str, entry_ids: list[str]) -> None:
            # Grouped: one script a stream, in the round trip of the starts
            # read with them (store/grouped.py).
            await self.retry.idempotent(
                "settle ready entries",
                lambda: self.scripts.settle_ready.together(
                    keys=[stream], args=[READY_GROUP, *entry_ids]
                ),
            )

        await asyncio.gather(*(settle(s, ids) for s, ids in by_stream.items()))

    async def start_job(
        self,
        process_id: str,
        disposition: RecoveryDisposition,
        attempt: LeaseOwnerIdentity,
        stem: LeaseOwnerIdentity,
        lease_ttl_ms: int,
    ) -> JobStart:
        """Claim a free lease and record ``first_started`` (``stem``) in one
        step, or say why not. Retried only when refused before running."""
        if not isinstance(disposition, RecoveryDisposition):
            raise InvalidValue(f"disposition must be a RecoveryDisposition, got {disposition!r}")
        keys = self.keys.process(process_id)
        index = keys.record if self.cluster else self.keys.index_of("run", process_id)
        args = [
            owner_wire(attempt, "attempt"),
            attempt.owner_id,
            attempt.incarnation_id,
            checked_ttl(lease_ttl_ms),
            secrets.token_hex(16),
            owner_wire(stem, "stem"),
            disposition.value,
            process_id,
        ]
        # A retry after a cut-off reply meets its own live lease (BUSY): the
        # attempt identity is fresh, so this is sent once.
        reply = await self.retry.once(
            f"start `{process_id}`",
            # Grouped: the starts of one read's entries share a round trip.
            lambda: self.scripts.start_job.together(
                keys=[keys.record, keys.lease, index], args=args
            ),
        )
        status = text(reply[0])
        if obs.hooks is not None:
            obs.hooks.lease_claimed("claim", "acquired" if status == "ACQUIRED" else "busy")
        if status != "ACQUIRED":
            return JobStart(_REFUSED[status])
        lease = lease_of_reply(process_id, reply)  # the claim script's reply, as it is
        fields = dict(zip(reply[6::2], reply[7::2], strict=True))
        self.remember(process_id, fields)
        if self.cluster:
            await worklist.rescore(self, process_id, lease.expires_at_epoch_ms)
        return JobStart("started", lease, self.record_from_fields(fields))


_REFUSED: dict[str, StartStatus] = {
    "NOPROC": "unknown",
    "TERMINAL": "terminal",
    "STARTED": "started_elsewhere",
    "BUSY": "busy",
}


def _check_jobs(jobs: list[ReadyJob]) -> None:
    """Jobs as ``read_ready`` returns them, checked before any write."""
    require(jobs, list | tuple, "jobs")
    for job in jobs:
        require(job, ReadyJob, "job")
        if not isinstance(job.disposition, RecoveryDisposition):
            raise InvalidValue(f"a ready job's disposition, got {job.disposition!r}")
        id_bytes("entry id", job.entry_id)
        id_bytes("job kind", job.kind)
        id_bytes("process id", job.process_id)


def _jobs(reply: Any, kinds: dict[str, str]) -> list[ReadyJob]:
    jobs: list[ReadyJob] = []
    for stream, entries in reply or []:
        kind = kinds[text(stream)]
        for entry_id, fields in entries:
            if not fields:  # deleted after it was read (XAUTOCLAIM of a settled entry)
                continue
            try:
                disposition = RecoveryDisposition(text(fields[b"d"]))
                pid = text(fields[b"id"])
            except (KeyError, ValueError, UnicodeDecodeError):
                # A schedule's wake-up (no job), or not an entry we wrote:
                # handed back with no id, settled unstarted rather than left
                # pending for ever.
                disposition, pid = RecoveryDisposition.EXTERNALLY_OWNED, ""
            jobs.append(ReadyJob(kind, text(entry_id), pid, disposition))
    return jobs
