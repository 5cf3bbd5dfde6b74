"""Workers as OS processes: SIGKILL mid-work, a restarted incarnation as death
evidence, and a SIGSTOPped worker fenced when it resumes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid

import msgspec
import pytest

from lash_streams.coordination.fleet_liveness import is_provably_dead, worker_of
from lash_streams.model import (
    AbandonWriter,
    LeaseOwnerIdentity,
    StatusAbandoned,
    StatusCompleted,
)

from ..conformance.fixtures import ob_reg, plain, rr_reg

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TYPES = [plain("run.started"), plain("run.finished")]


async def start_worker(url, namespace, owner_id):
    incarnation = uuid.uuid4().hex[:8]
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.recovery._worker", url, namespace, owner_id, incarnation,
        stdout=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"ready"
    return proc, f"{owner_id}/{incarnation}"


async def runs_in_progress(bus, pids):
    """Per process, who has started and not finished."""
    busy = {}
    for pid in pids:
        open_runs = []
        for event in await bus.events_after(pid, 0):
            if event.event_type == "run.started":
                open_runs.append(event.payload["by"])
            elif event.event_type == "run.finished":
                open_runs.remove(event.payload["by"])
        busy[pid] = open_runs
    return busy


def assert_one_live_owner_at_a_time(events_by_pid, unfinished_by: str) -> None:
    """From the run log: every run but ``unfinished_by``'s (killed or stopped
    mid-run, so it has no run.finished) finished before the next one started."""
    for pid, events in events_by_pid.items():
        current = None
        for event in events:
            by = event.payload.get("by") if isinstance(event.payload, dict) else None
            if event.event_type == "run.started":
                assert current is None or current == unfinished_by, (pid, current, by)
                current = by
            elif event.event_type == "run.finished":
                assert by == current
                current = None


async def run_logs(bus, pids):
    return {pid: await bus.events_after(pid, 0) for pid in pids}


async def until_all_terminal(bus, pids, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not all([(await bus.get_process(p)).is_terminal() for p in pids]):
        assert loop.time() < deadline, await runs_in_progress(bus, pids)
        await asyncio.sleep(0.1)


async def stop_all(procs) -> None:
    for proc in procs:
        if proc.returncode is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        await proc.wait()


async def register_rows(bus) -> tuple[list[str], list[str]]:
    """Four owner-bound and four rerunnable rows."""
    owner_bound = [f"ob-{i}" for i in range(4)]
    rerunnable = [f"rr-{i}" for i in range(4)]
    for pid in owner_bound:
        await bus.register_process(msgspec.structs.replace(ob_reg(pid), event_types=TYPES))
    for pid in rerunnable:
        await bus.register_process(msgspec.structs.replace(rr_reg(pid), event_types=TYPES))
    return owner_bound, rerunnable


async def test_fleet_recovery_with_killed_and_paused_workers(real_bus, namespace):
    bus, url = real_bus
    owner_bound, rerunnable = await register_rows(bus)
    pids = owner_bound + rerunnable
    victim, victim_id = await start_worker(url, namespace, "w1")
    # Let the victim start work on every row it can get.
    await asyncio.sleep(0.5)
    victim.send_signal(signal.SIGKILL)
    await victim.wait()
    killed_mid_run = {pid for pid, who in (await runs_in_progress(bus, pids)).items() if who}
    assert killed_mid_run, "the victim should have been mid-run"
    # w1 comes back as a new incarnation: proof the old one is dead.
    reborn, _ = await start_worker(url, namespace, "w1")
    helper, _ = await start_worker(url, namespace, "w2")
    workers = [reborn, helper]
    try:
        await until_all_terminal(bus, pids)
        for pid in owner_bound:
            status = (await bus.get_process(pid)).status
            if pid in killed_mid_run:
                assert isinstance(status, StatusAbandoned)
                evidence = status.await_output.evidence
                assert evidence.writer is AbandonWriter.SWEEP
                # The dead incarnation: its attempt's lease, or (the lease
                # lapsed before a due pass looked) the stem that started it.
                owner = evidence.owner
                assert owner.owner_id == "w1" or owner.owner_id.startswith("w1:recovery:")
                assert owner.incarnation_id.split("/")[0] == victim_id.split("/")[1]
            else:
                assert isinstance(status, StatusCompleted)
        for pid in rerunnable:
            assert isinstance((await bus.get_process(pid)).status, StatusCompleted)
        assert_one_live_owner_at_a_time(await run_logs(bus, pids), unfinished_by=victim_id)
    finally:
        await stop_all(workers)


async def test_paused_worker_is_fenced_when_it_resumes(real_bus, namespace):
    bus, url = real_bus
    await bus.register_process(msgspec.structs.replace(rr_reg("slow"), event_types=TYPES))
    paused, paused_id = await start_worker(url, namespace, "p1")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not (await runs_in_progress(bus, ["slow"]))["slow"]:
        assert loop.time() < deadline
        await asyncio.sleep(0.02)
    paused.send_signal(signal.SIGSTOP)
    other, other_id = await start_worker(url, namespace, "p2")
    try:
        deadline = loop.time() + 30
        while not (await bus.get_process("slow")).is_terminal():
            assert loop.time() < deadline
            await asyncio.sleep(0.1)
        status = (await bus.get_process("slow")).status
        assert status == StatusCompleted(await_output=status.await_output)
        assert status.await_output.value == other_id
        paused.send_signal(signal.SIGCONT)
        fenced_key = f"testlog:{namespace}:fenced"
        deadline = loop.time() + 20
        while not await bus.redis.llen(fenced_key):
            assert loop.time() < deadline, "the resumed worker was not fenced"
            await asyncio.sleep(0.1)
        assert (await bus.redis.lrange(fenced_key, 0, -1)) == [f"{paused_id}|slow".encode()]
        terminals = [e for e in await bus.events_after("slow", 0) if e.semantics.terminal]
        assert len(terminals) == 1
        finished_by = [
            e.payload["by"]
            for e in await bus.events_after("slow", 0)
            if e.event_type == "run.finished"
        ]
        assert finished_by == [other_id]
        await bus.redis.delete(fenced_key)
    finally:
        await stop_all([paused, other])


async def test_rolling_restart_with_overlap_abandons_no_live_owners_row(real_bus, namespace):
    """Issue 13: new pods start before the old ones stop; an old pod stops
    gracefully (hands its runs back, drains its own started owner-bound rows,
    records its exit) and comes back under the same identity. No live worker's
    row is abandoned, no row runs twice at once, and the old incarnation's exit
    never makes the new one look dead."""
    bus, url = real_bus
    owner_bound, rerunnable = await register_rows(bus)
    pids = owner_bound + rerunnable
    old, old_id = await start_worker(url, namespace, "w1")
    workers = [old]
    try:
        await asyncio.sleep(0.5)
        surge, _ = await start_worker(url, namespace, "w2")  # the overlap
        workers.append(surge)
        old.send_signal(signal.SIGTERM)
        assert old.stdout is not None
        line = await asyncio.wait_for(old.stdout.readline(), 30)
        assert line.strip() == b"exited", line
        await old.wait()
        new, new_id = await start_worker(url, namespace, "w1")  # same identity, new incarnation
        workers.append(new)
        await until_all_terminal(bus, pids)
        for pid in pids:
            status = (await bus.get_process(pid)).status
            if isinstance(status, StatusAbandoned):
                # Only rows the old incarnation started and left without an
                # outcome: by its own drain, or (when the drain found the row
                # busy with another worker's claim) by a sweep that saw its
                # exit record. Never a live worker's row.
                evidence = status.await_output.evidence
                assert pid in owner_bound, status
                assert evidence.writer in (AbandonWriter.OWNER_DRAIN, AbandonWriter.SWEEP)
                assert worker_of(evidence.owner) == tuple(old_id.split("/")), status
            else:
                assert isinstance(status, StatusCompleted), (pid, status)
        # A run the graceful stop cancelled has no run.finished.
        assert_one_live_owner_at_a_time(await run_logs(bus, pids), unfinished_by=old_id)
        w1, incarnation = new_id.split("/")
        assert not await is_provably_dead(bus, LeaseOwnerIdentity.opaque(w1, incarnation))
        await bus.redis.delete(f"testlog:{namespace}:fenced")
    finally:
        await stop_all(workers)
