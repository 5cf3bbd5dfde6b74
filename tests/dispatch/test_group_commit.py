"""A worker's round trips (issue 16, jobs started/s): the terminal, the lease
release and the worklist move are one step (``complete_job``); the starts and
terminals made in one turn of the event loop share a pipeline (group commit,
store/grouped.py); a sweep pass defers a backlog of new jobs in one pipeline."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

import lash_streams as ls
from lash_streams import errors
from lash_streams.bus import Bus
from lash_streams.store import worklist
from lash_streams.store.dispatch import JobStart

W = ls.LeaseOwnerIdentity.opaque("worker-a", "inc-1")
RERUN = ls.RecoveryDisposition.RERUNNABLE


def attempt() -> ls.LeaseOwnerIdentity:
    return ls.LeaseOwnerIdentity.opaque(f"worker-a:attempt:{uuid.uuid4().hex}", "inc-1/a")


async def started(bus: Bus, pid: str) -> ls.ProcessLease:
    await bus.submit("search", {"q": pid}, id=pid)
    start = await bus.start_job(pid, RERUN, attempt(), W, 30_000)
    assert start.status == "started" and start.lease is not None
    return start.lease


async def running_ids(bus: Bus) -> list[bytes]:
    found: list[bytes] = []
    for key in bus.keys.indexes("run"):
        found += await bus.redis.zrange(key, 0, -1)
    return found


async def test_complete_job_writes_the_terminal_and_releases_the_lease(bus: Bus) -> None:
    lease = await started(bus, "j1")
    record = await bus.complete_job("j1", ls.AwaitSuccess(value=1), lease=lease)
    assert record.is_terminal()
    assert await bus.get_process_lease("j1") is None
    assert b"j1" not in await running_ids(bus)
    # The fence outlives the release (LS-5): the next claim takes a higher one.
    again = await bus.claim_process_lease("j1", attempt(), 1_000)
    assert isinstance(again, ls.LeaseAcquired)
    assert again.lease.fencing_token == lease.fencing_token + 1


async def test_a_writer_killed_after_complete_job_leaves_nothing_behind(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a single server the worklist move is in the script: a writer that
    never gets to a second step leaves the row out of the worklist, the lease
    free. (On a cluster the move is the cross-slot step after, repaired by
    every worklist reader, as for any terminal.)"""
    lease = await started(bus, "j1")

    async def killed(*args: Any) -> None:
        raise errors.ConnectionFailed("the writer died here")

    monkeypatch.setattr(worklist, "index_terminal", killed)
    await bus.complete_job("j1", ls.AwaitSuccess(value=1), lease=lease)
    assert await bus.get_process_lease("j1") is None
    if not bus.cluster:
        assert b"j1" not in await running_ids(bus)
    monkeypatch.undo()
    assert await bus.list_non_terminal() == []
    assert b"j1" not in await running_ids(bus)


async def test_complete_job_under_a_lost_lease_writes_nothing_and_leaves_the_new_holder(
    bus: Bus,
) -> None:
    lease = await started(bus, "j1")
    await bus.complete_process_lease(ls.ProcessLeaseCompletion.from_lease(lease))
    newer = await bus.claim_process_lease("j1", attempt(), 30_000)
    assert isinstance(newer, ls.LeaseAcquired)
    with pytest.raises(errors.LeaseFenced):
        await bus.complete_job("j1", ls.AwaitSuccess(value=1), lease=lease)
    record = await bus.get_process("j1")
    assert record is not None and not record.is_terminal()
    assert await bus.get_process_lease("j1") == newer.lease
    assert b"j1" in await running_ids(bus)


async def test_complete_job_repeated_is_a_replay_and_releases(bus: Bus) -> None:
    """A retry after a cut-off reply meets its own terminal: the same record,
    the lease released."""
    lease = await started(bus, "j1")
    first = await bus.complete_job("j1", ls.AwaitSuccess(value=1), lease=lease)
    bus.forget("j1")  # as a fresh client would plan it
    again = await bus.complete_job("j1", ls.AwaitSuccess(value=1), lease=lease)
    assert again == first
    assert await bus.get_process_lease("j1") is None
    assert len(await bus.events_after("j1", 0)) == 1


async def test_complete_job_refuses_a_lease_of_another_process(bus: Bus) -> None:
    lease = await started(bus, "j1")
    await bus.submit("search", id="j2")
    with pytest.raises(errors.InvalidValue):
        await bus.complete_job("j2", ls.AwaitSuccess(value=1), lease=lease)
    record = await bus.get_process("j2")
    assert record is not None and not record.is_terminal()


# -- group commit (a single server's direct pool) --------------------------------


def counting_pipelines(bus: Bus, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many commands each round trip the group sent held."""
    group = bus.scripts.group
    if group is None:
        pytest.skip("group commit is for a client that sends calls straight to one server")
    sizes: list[int] = []
    real = group._send_many

    async def counted(commands: list[tuple[Any, ...]]) -> list[Any]:
        sizes.append(len(commands))
        return await real(commands)

    monkeypatch.setattr(group, "_send_many", counted)
    return sizes


async def test_starts_and_terminals_of_one_turn_share_one_pipeline(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids = [f"j{i}" for i in range(5)]
    for pid in pids:
        await bus.submit("search", id=pid)
    sizes = counting_pipelines(bus, monkeypatch)
    starts = await asyncio.gather(*(bus.start_job(p, RERUN, attempt(), W, 30_000) for p in pids))
    assert [s.status for s in starts] == ["started"] * 5
    assert sizes == [5]
    leases = [s.lease for s in starts]
    done = await asyncio.gather(
        *(
            bus.complete_job(p, ls.AwaitSuccess(value=p), lease=lease)
            for p, lease in zip(pids, leases, strict=True)
            if lease is not None
        )
    )
    assert all(r.is_terminal() for r in done) and sizes == [5, 5]
    for pid in pids:
        assert await bus.get_process_lease(pid) is None
        assert await bus.await_terminal(pid, timeout=0) == ls.AwaitSuccess(value=pid)


async def test_a_refusal_in_a_group_is_that_call_alone(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    for pid in ("j1", "j2", "j3"):
        await bus.submit("search", id=pid)
    await bus.redis.delete(bus.keys.process("j2").lease)
    await bus.redis.set(bus.keys.process("j2").lease, "not a hash")  # WRONGTYPE
    sizes = counting_pipelines(bus, monkeypatch)
    outcomes = await asyncio.gather(
        *(bus.start_job(p, RERUN, attempt(), W, 30_000) for p in ("j1", "j2", "j3")),
        return_exceptions=True,
    )
    assert sizes == [3]
    assert isinstance(outcomes[1], errors.ServerError)
    for outcome in (outcomes[0], outcomes[2]):
        assert isinstance(outcome, JobStart) and outcome.status == "started"


async def test_a_group_sent_after_the_server_lost_its_scripts(bus: Bus) -> None:
    if bus.scripts.group is None:
        pytest.skip("group commit is for a client that sends calls straight to one server")
    for pid in ("j1", "j2"):
        await bus.submit("search", id=pid)
    await bus.redis.script_flush()
    starts = await asyncio.gather(
        *(bus.start_job(p, RERUN, attempt(), W, 30_000) for p in ("j1", "j2"))
    )
    assert [s.status for s in starts] == ["started", "started"]


async def test_a_call_cancelled_before_its_group_is_sent_is_never_sent(bus: Bus) -> None:
    if bus.scripts.group is None:
        pytest.skip("group commit is for a client that sends calls straight to one server")
    await bus.submit("search", id="j1")
    task = asyncio.create_task(bus.start_job("j1", RERUN, attempt(), W, 30_000))
    await asyncio.sleep(0)  # the call is queued; its group goes out next turn
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)
    assert await bus.get_process_lease("j1") is None
    record = await bus.get_process("j1")
    assert record is not None and record.first_started is None


# -- a sweep pass over a backlog of new jobs ------------------------------------------


async def test_a_pass_defers_a_backlog_of_new_jobs_in_one_step(bus: Bus) -> None:
    pids = [f"j{i}" for i in range(20)]
    for pid in pids:
        await bus.submit("search", id=pid)

    async def handler(job: ls.Job[Any]) -> None:
        raise AssertionError("left to dispatch: never run by the pass")

    worker = bus.worker(ls.owner_identity("w"), {"search": handler}, sweep_every_s=60)
    report = await worker.recovery.sweep_due()
    assert report.examined == 20 and sorted(report.skipped) == sorted(pids)
    assert set(report.reasons.values()) == {"new: left to dispatch for now"}
    # Each row is due again once its grace ran out, not before.
    _, due = await bus.due_records()
    assert due == []
    for pid in pids:
        record = await bus.get_process(pid)
        assert record is not None
        score = await bus.redis.zscore(bus.keys.index_of("run", pid), pid)
        assert score == record.created_at_ms + 60_000


async def test_a_queued_job_is_not_due_for_sweeps_until_the_dispatch_grace(bus: Bus) -> None:
    """On a single server the registration that queues a job for a worker
    scores it at its registration time + DISPATCH_GRACE_MS: a worker starting
    into a backlog reads none of those rows on its first pass (a cluster's
    rows are new at 0 and deferred by the pass, as without a group)."""
    from lash_streams.store.dispatch import DISPATCH_GRACE_MS

    await bus.ensure_ready_group("search")
    pids = [f"q{i}" for i in range(20)]
    for pid in pids:
        await bus.submit("search", id=pid)
    await bus.submit("elsewhere", id="unqueued")  # no worker group: not queued

    async def handler(job: ls.Job[Any]) -> None:
        raise AssertionError("left to dispatch: never run by the pass")

    worker = bus.worker(ls.owner_identity("w"), {"search": handler}, sweep_every_s=60)
    report = await worker.recovery.sweep_due()
    for pid in pids:
        record = await bus.get_process(pid)
        assert record is not None
        score = await bus.redis.zscore(bus.keys.index_of("run", pid), pid)
        if bus.cluster:
            assert score == record.created_at_ms + 60_000  # deferred by the pass
        else:
            assert score == record.created_at_ms + DISPATCH_GRACE_MS
    if not bus.cluster:
        assert set(report.skipped) <= {"unqueued"} and "q0" not in report.reasons


async def test_defer_sweeps_checks_its_input_before_writing(bus: Bus) -> None:
    await bus.submit("search", id="j1")
    with pytest.raises(errors.InvalidValue):
        await bus.defer_sweeps({"j1": 5, "j2": -1})
    with pytest.raises(errors.LashStreamsError):
        await bus.defer_sweeps({"x" * 600: 5})
    assert await bus.redis.zscore(bus.keys.index_of("run", "j1"), "j1") == 0
    await bus.defer_sweeps({})


async def test_a_task_marked_alone_sends_its_grouped_calls_at_once(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that read one entry marks that job's task ALONE: its start
    (and terminal) go as direct calls, a turn earlier, with nothing to wait
    for; unmarked, the same calls join the group commit."""
    from lash_streams.store import grouped

    queued: list[str] = []
    real = grouped.Grouped.call

    async def counting(self: Any, script: Any, keys: Any, args: Any) -> Any:
        queued.append(script.name)
        return await real(self, script, keys, args)

    monkeypatch.setattr(grouped.Grouped, "call", counting)

    async def job(pid: str) -> None:
        lease = await started(bus, pid)
        await bus.complete_job(pid, ls.AwaitSuccess(value=1), lease=lease)

    async def alone(pid: str) -> None:
        grouped.ALONE.set(True)  # this task's own context
        await job(pid)

    await asyncio.create_task(alone("lone"))
    if bus.scripts.group is not None:  # a single server: the queue exists
        assert queued == []
        await job("shared")
        assert queued == ["start_job-3", "complete_job-10"]
    assert (await bus.get_process("lone")).is_terminal()
