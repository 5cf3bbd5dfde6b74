"""Dispatch (issue 16, deliver 2): a job that can start is queued on its kind's
ready stream when it is registered, a delayed job waits on the schedule, and
``start_job`` starts a job in one step or says why not (DS-3, LS-4, ST-2)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

import lash_streams as ls
from lash_streams.bus import Bus
from lash_streams.model._codec import encode
from lash_streams.store.dispatch import READY_GROUP

W = ls.LeaseOwnerIdentity.opaque("worker-a", "inc-1")


def attempt() -> ls.LeaseOwnerIdentity:
    return ls.LeaseOwnerIdentity.opaque(f"worker-a:attempt:{uuid.uuid4().hex}", "inc-1/a")


async def ready_ids(bus: Bus, kind: str) -> list[str]:
    entries = await bus.redis.xrange(bus.keys.ready_stream(kind))
    return [fields[b"id"].decode() for _, fields in entries if fields.get(b"id")]


async def test_registering_a_runnable_job_queues_it_for_the_kind_workers(bus: Bus) -> None:
    await bus.ensure_ready_group("search")
    record = await bus.submit("search", {"q": "x"}, id="j1")
    assert await ready_ids(bus, "search") == ["j1"]
    assert record.identity.kind == "search"
    owner_bound = ls.job_registration(
        "search", id="j2", disposition=ls.RecoveryDisposition.OWNER_BOUND
    )
    await bus.register_process(owner_bound)
    assert await ready_ids(bus, "search") == ["j1", "j2"]


async def test_nothing_is_queued_while_no_worker_reads_the_kind(bus: Bus) -> None:
    await bus.submit("search", {"q": "x"}, id="j1")
    assert not await bus.redis.exists(bus.keys.ready_stream("search"))


async def test_externally_owned_rows_are_never_queued(bus: Bus) -> None:
    await bus.ensure_ready_group("external")
    await bus.register_process(ls.ProcessRegistration.external("x1"))
    assert await ready_ids(bus, "external") == []


async def test_start_job_claims_and_records_first_started_in_one_step(bus: Bus) -> None:
    await bus.submit("search", id="j1", disposition=ls.RecoveryDisposition.OWNER_BOUND)
    started = await bus.start_job("j1", ls.RecoveryDisposition.OWNER_BOUND, attempt(), W, 5_000)
    assert started.status == "started"
    assert started.lease is not None and started.record is not None
    first = started.record.first_started
    assert first is not None and first.owner == W
    # Byte for byte what ST-2's facet write would have stored (lash's serde JSON).
    stored = await bus.redis.hget(bus.keys.process("j1").record, "started")
    assert stored == encode(ls.ProcessStarted(owner=W, started_at_ms=first.started_at_ms))
    lease = await bus.get_process_lease("j1")
    assert lease == started.lease
    # DS-3: started owner-bound work is never started again, even once released.
    await bus.complete_process_lease(ls.ProcessLeaseCompletion.from_lease(started.lease))
    again = await bus.start_job("j1", ls.RecoveryDisposition.OWNER_BOUND, attempt(), W, 5_000)
    assert again.status == "started_elsewhere"


async def test_start_job_refuses_a_live_lease_a_terminal_and_an_unknown_id(bus: Bus) -> None:
    await bus.submit("search", id="j1")
    rerun = ls.RecoveryDisposition.RERUNNABLE
    first = await bus.start_job("j1", rerun, attempt(), W, 5_000)
    assert first.status == "started"
    assert (await bus.start_job("j1", rerun, attempt(), W, 5_000)).status == "busy"
    assert first.lease is not None
    await bus.complete_process("j1", ls.AwaitSuccess(value=1), lease=first.lease)
    assert (await bus.start_job("j1", rerun, attempt(), W, 5_000)).status == "terminal"
    assert (await bus.start_job("nope", rerun, attempt(), W, 5_000)).status == "unknown"


async def test_a_delayed_job_is_not_queued_nor_run_by_a_full_sweep_before_its_time(
    bus: Bus,
) -> None:
    await bus.ensure_ready_group("search")
    ran: list[str] = []

    async def runner(record: ls.ProcessRecord, lease: ls.ProcessLease) -> ls.ProcessAwaitOutput:
        ran.append(record.id)
        return ls.AwaitSuccess(value=None)

    record = await bus.submit("search", {"q": "later"}, id="late", delay_s=1.0)
    assert await ready_ids(bus, "search") == []  # only the schedule's wake-up
    report = await bus.recovery(W, runner=runner).sweep_once()
    assert ran == [] and "late" in report.skipped
    assert report.reasons["late"].startswith("delayed: starts in")
    assert await bus.promote_due() is not None  # still scheduled: ms until it is due
    await asyncio.sleep(1.1)
    assert await bus.promote_due() is None  # nothing left on the schedule
    assert await ready_ids(bus, "search") == ["late"]
    report = await bus.recovery(W, runner=runner).sweep_once()
    assert ran == ["late"]
    assert (await bus.get_process(record.id)).is_terminal()  # type: ignore[union-attr]


async def test_a_schedule_entry_is_used_once(bus: Bus) -> None:
    """A repeat submit of a job already run does not put it back on the schedule."""
    await bus.submit("search", id="j1")
    await bus.complete_process("j1", ls.AwaitSuccess(value=1))
    await bus.submit("search", id="j1", delay_s=5)
    assert await bus.redis.zcard(bus.keys.delayed) == 0


async def test_entries_of_a_dead_reader_are_taken_over(bus: Bus) -> None:
    await bus.ensure_ready_group("search")
    await bus.submit("search", id="j1")
    read = await bus.read_ready(["search"], "dead-worker", 10, None)
    assert [job.process_id for job in read] == ["j1"]
    await asyncio.sleep(0.05)
    taken = await bus.reclaim_ready(["search"], "live-worker", 10, 10)
    assert [job.process_id for job in taken] == ["j1"]
    await bus.settle_ready(taken)
    assert await bus.redis.xlen(bus.keys.ready_stream("search")) == 0
    pending = await bus.redis.xpending(bus.keys.ready_stream("search"), READY_GROUP)
    assert pending["pending"] == 0


async def test_bad_schedules_are_refused(bus: Bus) -> None:
    with pytest.raises(ls.errors.InvalidValue, match="delay_s"):
        await bus.submit("search", delay_s=-1)
    with pytest.raises(ls.errors.InvalidValue, match="externally owned"):
        await bus.schedule_process(ls.ProcessRegistration.external("x"), 0)
    with pytest.raises(ls.errors.InvalidValue, match="not_before_ms"):
        await bus.schedule_process(ls.job_registration("k", id="y"), -5)
    with pytest.raises(ls.errors.InvalidValue, match="job kind"):
        await bus.submit("", {"q": 1})
    with pytest.raises(ls.errors.InvalidValue, match="session"):
        await bus.submit("k", session=42)  # type: ignore[arg-type]
    with pytest.raises(ls.errors.InvalidValue, match="not JSON"):
        await bus.submit("k", object())
    with pytest.raises(ls.errors.InvalidValue, match="rerunnable or owner-bound"):
        await bus.submit("k", disposition=ls.RecoveryDisposition.EXTERNALLY_OWNED)
    assert await bus.list_processes() == []


async def test_read_entries_a_stopping_worker_did_not_start_go_back(bus: Bus) -> None:
    await bus.ensure_ready_group("search")
    await bus.submit("search", id="j1")
    read = await bus.read_ready(["search"], "stopping-worker", 10, None)
    await bus.settle_ready(read)
    assert await ready_ids(bus, "search") == []
    await bus.requeue_ready(read)
    again = await bus.read_ready(["search"], "other-worker", 10, None)
    assert [job.process_id for job in again] == ["j1"]
