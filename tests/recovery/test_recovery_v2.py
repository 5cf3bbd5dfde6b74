"""Recovery v2 (issue 13): never abandon a live owner, never run one row twice,
a drive that survives server errors, a bounded share of the work per worker,
and waiters that do not pin a connection each.

Each test is named for the defect it covers."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys

import pytest
from redis.asyncio import Redis

from lash_streams import errors
from lash_streams.coordination import fleet_liveness
from lash_streams.coordination.liveness import owner_identity
from lash_streams.model import (
    AbandonRequest,
    AbandonWriter,
    LeaseOwnerIdentity,
    ProcessLeaseCompletion,
    ProcessStarted,
    StatusAbandoned,
    StatusCompleted,
    StatusFailed,
)

from ..conformance.fixtures import S, fixture_oracle, local, ob_reg, rr_reg

W = local("live-worker", "host-a", "claimant-start")
D = local("dead-worker", "host-a", "not-the-current-process-start")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def stem(name: str, incarnation: str | None = None) -> LeaseOwnerIdentity:
    return LeaseOwnerIdentity.opaque(name, incarnation or f"{name}-incarnation")


async def until(predicate, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():  # noqa: ASYNC110 - polling Redis state
            await asyncio.sleep(0.02)


class GatedRunner:
    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.calls: list[str] = []
        self.running = 0
        self.most = 0

    async def __call__(self, record, lease):
        self.calls.append(record.id)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.gate.wait()
        finally:
            self.running -= 1
        return S(record.id)


# -- 1. death evidence that cannot lie ----------------------------------------


def _unshare_problem() -> str | None:
    """Why a new PID namespace cannot be made here, or None when it can."""
    if shutil.which("unshare") is None:
        return "needs util-linux unshare"
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True
    )
    if probe.returncode != 0:
        return f"unshare --pid is not permitted here: {probe.stderr.decode().strip()}"
    return None


UNSHARE_PROBLEM = _unshare_problem()


@pytest.mark.skipif(UNSHARE_PROBLEM is not None, reason=str(UNSHARE_PROBLEM))
async def test_a_live_holder_in_another_pid_namespace_is_never_declared_dead(standalone_bus):
    """LV-2 across PID namespaces: a holder started under ``unshare --pid``
    shares the host name and boot id but not /proc; its pid means another
    process here, so without the namespace in its identity it looked dead."""
    bus, url = standalone_bus
    pid = "ob-in-a-container"
    await bus.register_process(ob_reg(pid))
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    holder = await asyncio.create_subprocess_exec(
        "unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
        sys.executable, "-m", "tests.recovery._ns_holder", url, bus.namespace, pid,
        stdout=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        line = await asyncio.wait_for(holder.stdout.readline(), 30)
        assert line.strip() == b"ready", line
        held = await bus.get_process_lease(pid)
        assert held is not None
        sweeper = bus.recovery(owner_identity("sweeper"))
        report = await sweeper.sweep_once()
        assert report.skipped == [pid], report
        assert not (await bus.get_process(pid)).is_terminal()
        lease = await bus.get_process_lease(pid)
        assert lease is not None and lease.lease_token == held.lease_token
    finally:
        holder.kill()
        await holder.wait()


def test_the_local_identity_names_the_pid_namespace() -> None:
    me = owner_identity("w").liveness
    namespace = os.readlink("/proc/self/ns/pid")
    assert me.host_id.endswith(namespace), me.host_id


async def test_a_worker_restarted_while_the_old_one_records_its_exit_stays_alive(bus):
    """Rolling restart: the old pod's exit record landing after the new pod
    registered must not overwrite the new registration (every sweeper then
    took the live pod for dead)."""
    store = bus
    old = stem("pod-0", "inc-old")
    new = stem("pod-0", "inc-new")
    await fleet_liveness.register_incarnation(store, old)
    # The old pod's exit runs after the new pod's registration, as it does when
    # the new pod starts before the old one stops.
    await fleet_liveness.register_incarnation(store, new)
    await fleet_liveness.record_exit(store, old)
    assert await fleet_liveness.is_provably_dead(store, old)
    assert not await fleet_liveness.is_provably_dead(store, new)


async def test_an_exit_read_then_written_cannot_overwrite_a_newer_registration(bus, monkeypatch):
    """The race itself: the new pod registers between the old pod's read and
    write of its exit record."""
    store = bus
    old = stem("pod-1", "inc-old")
    new = stem("pod-1", "inc-new")
    await fleet_liveness.register_incarnation(store, old)
    raced = False
    real_time = type(store).server_time_ms

    async def time_then_register(self):
        nonlocal raced
        if not raced:
            raced = True
            await fleet_liveness.register_incarnation(store, new)
        return await real_time(self)

    monkeypatch.setattr(type(store), "server_time_ms", time_then_register)
    await fleet_liveness.record_exit(store, old)
    monkeypatch.undo()
    if not raced:
        await fleet_liveness.register_incarnation(store, new)
    assert not await fleet_liveness.is_provably_dead(store, new)
    assert await fleet_liveness.is_provably_dead(store, old)


async def test_an_incarnation_is_dead_only_when_it_exited_or_a_newer_one_registered(bus):
    store = bus
    first = stem("pod-2", "inc-1")
    second = stem("pod-2", "inc-2")
    stranger = stem("pod-2", "never-registered")
    await fleet_liveness.register_incarnation(store, first)
    assert not await fleet_liveness.is_provably_dead(store, first)
    await fleet_liveness.register_incarnation(store, second)
    assert await fleet_liveness.is_provably_dead(store, first)
    assert not await fleet_liveness.is_provably_dead(store, second)
    # An incarnation nobody registered cannot be ordered against the others.
    assert not await fleet_liveness.is_provably_dead(store, stranger)
    # Registering an older incarnation again does not make it newer.
    await fleet_liveness.register_incarnation(store, first)
    assert not await fleet_liveness.is_provably_dead(store, second)
    await fleet_liveness.record_exit(store, second)
    assert await fleet_liveness.is_provably_dead(store, second)


# -- 2. one run per row ---------------------------------------------------------


async def test_execute_twice_from_one_worker_runs_the_row_once(bus):
    """SW-4: ``execute`` claimed with the stem identity, so a second call
    re-entered the first call's lease and ran the row again."""
    await bus.register_process(rr_reg("twice"))
    runner = GatedRunner()
    recovery = bus.recovery(stem("worker"), runner=runner, lease_ttl_ms=30_000)
    first = asyncio.create_task(recovery.execute("twice"))

    async def started() -> bool:
        return runner.calls == ["twice"]

    await until(started)
    assert await recovery.execute("twice") == "skipped"
    runner.gate.set()
    assert await first == "ran"
    assert runner.calls == ["twice"]
    status = (await bus.get_process("twice")).status
    assert isinstance(status, StatusCompleted)
    # The row records the worker's stem, not the attempt (SW-4, ST-3).
    assert (await bus.get_process("twice")).first_started.owner == stem("worker")


async def test_death_evidence_survives_an_error_right_after_the_reclaim(bus):
    """SW-7/SW-11: an error between the reclaim and the abandonment left the
    lease with the failed attempt; once it lapsed the claim carried no evidence
    and the row of a provably dead owner stayed running for ever."""
    bus.death_oracle = fixture_oracle
    pid = "ob-evidence"
    await bus.register_process(ob_reg(pid))
    await bus.record_first_started(pid, ProcessStarted(owner=D, started_at_ms=1))
    await bus.claim_process_lease(pid, D, 60_000)
    store = bus
    reclaimed = False
    real_reclaim, real_get = store.reclaim_process_lease, store.get_process

    async def reclaim(*args, **kwargs):
        nonlocal reclaimed
        outcome = await real_reclaim(*args, **kwargs)
        reclaimed = True
        return outcome

    async def get_process(process_id):
        nonlocal reclaimed
        if reclaimed:
            reclaimed = False
            raise errors.ConnectionFailed("injected: the connection dropped after the reclaim")
        return await real_get(process_id)

    store.reclaim_process_lease = reclaim
    store.get_process = get_process
    try:
        recovery = bus.recovery(W, lease_ttl_ms=300, renew_every_ms=100)
        report = await recovery.sweep_once()
        assert report.failed == [pid]
    finally:
        del store.reclaim_process_lease
        del store.get_process
    await asyncio.sleep(0.4)  # whatever the failed attempt kept has lapsed
    report = await recovery.sweep_once()
    assert report.abandoned == [pid], report
    status = (await bus.get_process(pid)).status
    assert isinstance(status, StatusAbandoned)
    assert status.await_output.evidence.writer is AbandonWriter.SWEEP
    assert status.await_output.evidence.owner.owner_id == "dead-worker"


async def test_an_error_after_acquiring_hands_the_lease_back(bus):
    await bus.register_process(rr_reg("hand-back"))
    store = bus
    real_get = store.get_process
    calls = 0

    async def get_process(process_id):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise errors.ConnectionFailed("injected")
        return await real_get(process_id)

    store.get_process = get_process
    try:
        report = await bus.recovery(stem("w"), lease_ttl_ms=60_000).sweep_once()
    finally:
        del store.get_process
    assert report.failed == ["hand-back"]
    assert await bus.get_process_lease("hand-back") is None


# -- 3. a drive that survives ---------------------------------------------------


async def test_the_drive_survives_a_wrongly_typed_index_and_an_out_of_memory_server(
    standalone_bus,
):
    """``Recovery.run`` died on server errors (OOM, WRONGTYPE, ...) and took
    every run of the worker with it."""
    bus, url = standalone_bus
    runner = GatedRunner()
    runner.gate.set()
    await bus.register_process(rr_reg("before"))
    admin = Redis.from_url(url)
    policy = next(iter((await admin.config_get("maxmemory-policy")).values()))
    stop = asyncio.Event()
    recovery = bus.recovery(stem("driver"), runner=runner, lease_ttl_ms=3000, renew_every_ms=1000)
    drive = asyncio.create_task(recovery.run(every_s=0.05, stop=stop))
    try:

        async def done(pid: str) -> bool:
            return (await bus.get_process(pid)).is_terminal()

        await until(lambda: done("before"))
        # A key of the namespace holding another type: every pass reads it.
        index = bus.keys.index_running
        saved = await admin.dump(index)
        await admin.delete(index)
        await admin.set(index, "not a set")
        await asyncio.sleep(0.3)
        assert not drive.done()
        await admin.delete(index)
        if saved is not None:
            await admin.restore(index, 0, saved)
        # A server at maxmemory refuses every claim.
        await admin.config_set("maxmemory-policy", "noeviction")
        await admin.config_set("maxmemory", 1)
        await asyncio.sleep(0.3)
        assert not drive.done()
        await admin.config_set("maxmemory", 0)
        await bus.register_process(rr_reg("after"))
        await until(lambda: done("after"))
        assert not drive.done()
    finally:
        await admin.config_set("maxmemory", 0)
        await admin.config_set("maxmemory-policy", policy)
        await admin.aclose()
        stop.set()
        await drive


async def test_one_worker_runs_at_most_max_runs_rows(bus):
    """With 150 rows one worker leased all 150; ``max_runs`` bounds it, so a
    backlog spreads across the fleet."""
    pids = [f"row-{i}" for i in range(6)]
    for pid in pids:
        await bus.register_process(rr_reg(pid))
    first, second = GatedRunner(), GatedRunner()
    stop = asyncio.Event()
    a = bus.recovery(stem("a"), runner=first, lease_ttl_ms=30_000, max_runs=2)
    b = bus.recovery(stem("b"), runner=second, lease_ttl_ms=30_000, max_runs=4)
    drive_a = asyncio.create_task(a.run(every_s=0.05, stop=stop))
    try:

        async def a_full() -> bool:
            return first.running == 2

        await until(a_full)
        await asyncio.sleep(0.3)  # more passes: still two
        assert first.most == 2 and len(first.calls) == 2
        drive_b = asyncio.create_task(b.run(every_s=0.05, stop=stop))

        async def b_full() -> bool:
            return second.running == 4

        await until(b_full)
        assert sorted(first.calls + second.calls) == sorted(pids)
        first.gate.set()
        second.gate.set()

        async def all_done() -> bool:
            return all([(await bus.get_process(p)).is_terminal() for p in pids])

        await until(all_done)
    finally:
        stop.set()
        await drive_a
        if "drive_b" in locals():
            await drive_b


async def test_an_executed_row_holds_a_run_slot(bus):
    """execute() runs the row it is given even with every slot taken, and the
    slot it holds is one a pass of the same worker does not fill."""
    for pid in ["given", "other"]:
        await bus.register_process(rr_reg(pid))
    runner = GatedRunner()
    worker = bus.recovery(stem("w"), runner=runner, max_runs=1)
    given = asyncio.create_task(worker.execute("given"))

    async def running() -> bool:
        return runner.running == 1

    await until(running)
    report = await worker.sweep_due()
    assert report.skipped == ["other"] and runner.calls == ["given"]
    runner.gate.set()
    assert await given == "ran"
    assert (await worker.sweep_due()).ran == ["other"]


def test_max_runs_must_be_positive(bus):
    with pytest.raises(ValueError, match="max_runs"):
        bus.recovery(stem("w"), max_runs=0)


async def test_many_waiters_share_one_blocked_connection_and_keep_their_deadlines(
    standalone_bus,
):
    """Each waiter held one of 64 blocking connections: beyond 64, waits
    returned seconds late (0.5 s -> 5.6 s) and every run's cancel watcher
    pinned a connection."""
    bus, url = standalone_bus
    pids = [f"wait-{i}" for i in range(150)]
    for pid in pids:
        await bus.register_process(rr_reg(pid))
    admin = Redis.from_url(url)
    loop = asyncio.get_running_loop()
    try:
        waits = [asyncio.create_task(bus.await_terminal(pid, timeout=30)) for pid in pids]
        await asyncio.sleep(0.3)
        info = await admin.info("clients")
        assert info["blocked_clients"] <= 2, info
        started = loop.time()
        for pid in pids:
            await bus.complete_process(pid, S(pid))
        outputs = await asyncio.gather(*waits)
        assert outputs == [S(pid) for pid in pids]
        assert loop.time() - started < 10
        # Deadlines hold with many waiters at once.
        await bus.register_process(rr_reg("never"))
        started = loop.time()
        timeouts = await asyncio.gather(
            *(bus.await_terminal("never", timeout=0.5) for _ in range(150)),
            return_exceptions=True,
        )
        assert all(isinstance(t, TimeoutError) for t in timeouts)
        assert loop.time() - started < 3
    finally:
        await admin.aclose()


async def test_a_cancel_request_still_cancels_runs_sharing_the_reader(bus):
    """CN-4 through the shared reader: every run's cancel watcher waits on it."""
    pids = [f"cancel-{i}" for i in range(5)]
    for pid in pids:
        await bus.register_process(rr_reg(pid))
    runner = GatedRunner()
    stop = asyncio.Event()
    recovery = bus.recovery(stem("c"), runner=runner, lease_ttl_ms=30_000)
    drive = asyncio.create_task(recovery.run(every_s=0.05, stop=stop))
    try:

        async def all_running() -> bool:
            return runner.running == len(pids)

        await until(all_running)
        for pid in pids:
            await bus.request_cancel(pid, "stop")

        async def all_terminal() -> bool:
            return all([(await bus.get_process(p)).is_terminal() for p in pids])

        await until(all_terminal)
    finally:
        stop.set()
        await drive


# -- 5. the CLI sweep never fails runnable work unless asked ----------------------


async def test_a_sweep_without_a_runner_leaves_runnable_rows_alone_unless_asked(bus):
    await bus.register_process(rr_reg("queued"))
    recovery = bus.recovery(stem("cli"), unrunnable="skip")
    report = await recovery.sweep_once()
    assert report.skipped == ["queued"] and report.ran == []
    assert not (await bus.get_process("queued")).is_terminal()
    assert await bus.get_process_lease("queued") is None
    # Asked: lash's placeholder runner (SW-14) fails it.
    report = await bus.recovery(stem("cli")).sweep_once()
    assert report.ran == ["queued"]
    assert isinstance((await bus.get_process("queued")).status, StatusFailed)


def test_unrunnable_takes_fail_or_skip(bus):
    with pytest.raises(ValueError, match="unrunnable"):
        bus.recovery(stem("w"), unrunnable="maybe")


# -- 4. rows left running on purpose are not claimed again each pass ---------------


async def test_a_row_left_running_is_not_claimed_again_until_something_changes(bus):
    """Each pass claimed (and so fenced: an AOF write) every started owner-bound
    row it then left running; now only a change brings it back: an abandon
    request, or the starter provably dead."""
    starter = stem("starter", "inc-1")
    pids = ["parked-dead", "parked-request"]  # ascending, as a sweep lists them
    for pid in pids:
        await bus.register_process(ob_reg(pid))
        await bus.record_first_started(pid, ProcessStarted(owner=starter, started_at_ms=1))
    recovery = bus.recovery(W, fleet_liveness=True)
    await fleet_liveness.register_incarnation(bus, starter)
    assert (await recovery.sweep_once()).skipped == pids  # claimed, released: fencing 1
    for _ in range(3):
        assert (await recovery.sweep_once()).skipped == pids  # no claim
    probe = await bus.claim_process_lease("parked-request", stem("probe"), 1000)
    assert probe.lease.fencing_token == 2  # one claim before this one, not four
    await bus.complete_process_lease(ProcessLeaseCompletion.from_lease(probe.lease))
    # A change: an abandon request on one row.
    await bus.request_process_abandon(
        "parked-request", AbandonRequest(requested_by="operator", requested_at_ms=5)
    )
    assert (await recovery.sweep_once()).abandoned == ["parked-request"]
    # The starter restarts: its old incarnation is provably dead.
    await fleet_liveness.register_incarnation(bus, stem("starter", "inc-2"))
    assert (await recovery.sweep_once()).abandoned == ["parked-dead"]
    status = (await bus.get_process("parked-dead")).status
    assert status.await_output.evidence.writer is AbandonWriter.SWEEP
    assert status.await_output.evidence.owner == starter


async def test_a_pass_claims_no_row_a_live_holder_keeps(bus):
    """A pass read every row and sent a claim script to each (6 commands per row
    at 10k rows held by live holders); now one pipelined lease read tells it
    which leases are live, and only rows it could act on are claimed."""
    held = [f"held-{i}" for i in range(5)]
    for pid in [*held, "lapsed"]:
        await bus.register_process(rr_reg(pid))
    for pid in held:
        await bus.claim_process_lease(pid, stem("holder"), 60_000)
    await bus.claim_process_lease("lapsed", stem("holder"), 1)
    await asyncio.sleep(0.01)
    claims: list[str] = []
    real_claim = bus.claim_process_lease

    async def counting_claim(pid, *args, **kwargs):
        claims.append(pid)
        return await real_claim(pid, *args, **kwargs)

    bus.claim_process_lease = counting_claim
    try:
        runner = GatedRunner()
        runner.gate.set()
        report = await bus.recovery(W, runner=runner).sweep_once()
    finally:
        del bus.claim_process_lease
    assert claims == ["lapsed"]
    assert report.ran == ["lapsed"] and sorted(report.skipped) == held
    # A live holder with death evidence is still reclaimed (SW-7).
    bus.death_oracle = fixture_oracle
    await bus.register_process(ob_reg("dead-held"))
    await bus.record_first_started("dead-held", ProcessStarted(owner=D, started_at_ms=1))
    await bus.claim_process_lease("dead-held", D, 60_000)
    report = await bus.recovery(W).sweep_once()
    assert report.abandoned == ["dead-held"]
