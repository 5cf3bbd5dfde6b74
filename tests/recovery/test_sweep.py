"""Section K: the disposition-driven recovery sweep (ADR 0019, SW-*, AB-*)."""

from __future__ import annotations

import asyncio

import pytest

from lash_streams import errors
from lash_streams.model import (
    AbandonRequest,
    AbandonWriter,
    AwaitAbandoned,
    AwaitFailure,
    LeaseAcquired,
    OutcomeFailure,
    ProcessLeaseCompletion,
    ProcessStarted,
    StatusAbandoned,
    StatusCompleted,
)
from lash_streams.semantics.tool_output import await_output_to_tool_output

from ..conformance.fixtures import S, fixture_oracle, local, ob_reg, owner, reg, req, rr_reg

W = local("live-worker", "host-a", "claimant-start")
D = local("dead-worker", "host-a", "not-the-current-process-start")


@pytest.fixture
def sweep_bus(bus):
    bus.death_oracle = fixture_oracle
    return bus


class CountingRunner:
    def __init__(self, output=None, gate: asyncio.Event | None = None):
        self.calls: list[str] = []
        self.output = output if output is not None else S("ran")
        self.gate = gate

    async def __call__(self, record, lease):
        self.calls.append(record.id)
        if self.gate is not None:
            await self.gate.wait()
        return self.output


def request(by="operator", at=1, reason=None):
    return AbandonRequest(requested_by=by, requested_at_ms=at, reason=reason)


async def test_s_sw_01_sweep_never_claims_externally_owned_rows(sweep_bus):
    bus = sweep_bus
    await bus.register_process(reg("proc-ext"))
    report = await bus.recovery(W).sweep_once()
    assert report.skipped == ["proc-ext"]
    assert not (await bus.get_process("proc-ext")).is_terminal()
    assert await bus.get_process_lease("proc-ext") is None
    assert await bus.events_after("proc-ext", 0) == []


async def test_s_sw_02_sweep_reconciles_externally_owned_abandon_request(sweep_bus):
    bus = sweep_bus
    await bus.register_process(reg("proc-ext-abandon"))
    await bus.request_process_abandon("proc-ext-abandon", request(reason="host retired"))
    await bus.recovery(W).sweep_once()
    status = (await bus.get_process("proc-ext-abandon")).status
    assert isinstance(status, StatusAbandoned)
    evidence = status.await_output.evidence
    assert evidence.writer is AbandonWriter.RECONCILED_REQUEST and evidence.owner is None
    events = await bus.events_after("proc-ext-abandon", 0)
    assert [(e.sequence, e.event_type) for e in events] == [(1, "process.abandoned")]
    key = "process:proc-ext-abandon:terminal:process.abandoned"
    assert events[0].invocation.replay.key == key
    assert await bus.get_process_lease("proc-ext-abandon") is None


async def _started_by_dead_holder(bus, pid="proc-ob-dead"):
    await bus.register_process(ob_reg(pid))
    await bus.record_first_started(pid, ProcessStarted(owner=D, started_at_ms=1))
    return (await bus.claim_process_lease(pid, D, 60_000)).lease


async def test_s_sw_03_sweep_abandons_started_owner_bound_with_provably_dead_holder(sweep_bus):
    bus = sweep_bus
    held = await _started_by_dead_holder(bus)
    runner = CountingRunner()
    report = await bus.recovery(W, runner=runner).sweep_once()
    assert report.abandoned == ["proc-ob-dead"] and runner.calls == []
    status = (await bus.get_process("proc-ob-dead")).status
    assert isinstance(status, StatusAbandoned)
    assert status.await_output.evidence.writer is AbandonWriter.SWEEP
    assert status.await_output.evidence.owner.owner_id == "dead-worker"
    with pytest.raises(errors.AlreadyTerminal):
        await bus.complete_process("proc-ob-dead", S("revenant"))
    assert await bus.get_process_lease("proc-ob-dead") is None
    with pytest.raises(errors.LeaseExpired):
        await bus.renew_process_lease(held, 60_000)
    # The sweep held fencing 2: the next claim is the third acquisition.
    again = await bus.claim_process_lease("proc-ob-dead", owner("later"), 1000)
    assert again.lease.fencing_token == 3
    output = await bus.await_terminal("proc-ob-dead", timeout=1)
    tool = await_output_to_tool_output(output)
    assert isinstance(tool.outcome, OutcomeFailure)
    assert tool.outcome.failure.message.endswith("recovery observed the owner provably dead")


async def _started_with_silent_holder(bus, pid="proc-ob-silent"):
    await bus.register_process(ob_reg(pid))
    started = owner("started-worker")
    await bus.record_first_started(pid, ProcessStarted(owner=started, started_at_ms=1))
    return (await bus.claim_process_lease(pid, owner("other-worker"), 60_000)).lease


async def test_s_sw_04_sweep_skips_started_owner_bound_with_silent_holder(sweep_bus):
    bus = sweep_bus
    held = await _started_with_silent_holder(bus)
    await bus.recovery(W).sweep_once()
    assert not (await bus.get_process("proc-ob-silent")).is_terminal()
    lease = await bus.get_process_lease("proc-ob-silent")
    assert (lease.lease_token, lease.fencing_token) == (held.lease_token, 1)
    assert await bus.events_after("proc-ob-silent", 0) == []


async def test_s_sw_05_sweep_reconciles_started_owner_bound_after_lease_lapse(sweep_bus):
    bus = sweep_bus
    await bus.register_process(ob_reg("proc-ob-lapse"))
    lapsed = owner("lapsed-owner")
    await bus.record_first_started("proc-ob-lapse", ProcessStarted(owner=lapsed, started_at_ms=1))
    await bus.request_process_abandon("proc-ob-lapse", request(at=2))
    runner = CountingRunner()
    await bus.recovery(W, runner=runner).sweep_once()
    status = (await bus.get_process("proc-ob-lapse")).status
    assert status.await_output.evidence.writer is AbandonWriter.RECONCILED_REQUEST
    assert status.await_output.evidence.owner.owner_id == "lapsed-owner"
    assert runner.calls == [] and await bus.get_process_lease("proc-ob-lapse") is None


async def test_s_sw_06_owner_bound_unstarted_runs_once(sweep_bus):
    bus = sweep_bus
    await bus.register_process(ob_reg("proc-ob-unstarted"))
    await bus.register_process(ob_reg("placeholder"))
    runner = CountingRunner()
    recovery = bus.recovery(W, runner=runner)
    await recovery.recover(await bus.get_process("proc-ob-unstarted"))
    record = await bus.get_process("proc-ob-unstarted")
    assert record.status == StatusCompleted(await_output=S("ran")) and runner.calls == [
        "proc-ob-unstarted"
    ]
    assert record.first_started.owner == W  # the stem, not the attempt identity
    # lash's placeholder runner cannot build a runtime: process_recovery_failed.
    await bus.recovery(W).recover(await bus.get_process("placeholder"))
    failed = (await bus.get_process("placeholder")).status.await_output
    assert isinstance(failed, AwaitFailure) and failed.code == "process_recovery_failed"


async def test_s_sw_07_rerunnable_rows_rerun_after_their_owner_lease_lapsed(sweep_bus):
    bus = sweep_bus
    await bus.register_process(rr_reg("p"))
    await bus.claim_process_lease("p", owner("old"), 0)
    await bus.record_first_started("p", ProcessStarted(owner=owner("old"), started_at_ms=1))
    seen = []

    async def runner(record, lease):
        seen.append(lease.fencing_token)
        return S("ok")

    await bus.recovery(W, runner=runner).sweep_once()
    assert seen == [2]
    assert (await bus.get_process("p")).status == StatusCompleted(await_output=S("ok"))
    assert await bus.get_process_lease("p") is None


async def test_s_sw_08_death_evidence_beats_an_abandon_request(sweep_bus):
    bus = sweep_bus
    await _started_by_dead_holder(bus)
    await bus.request_process_abandon("proc-ob-dead", request(at=5))
    await bus.recovery(W).sweep_once()
    evidence = (await bus.get_process("proc-ob-dead")).status.await_output.evidence
    assert evidence.writer is AbandonWriter.SWEEP and evidence.owner.owner_id == "dead-worker"


async def test_s_sw_09_an_abandon_request_waits_for_the_live_lease_to_lapse(sweep_bus):
    bus = sweep_bus
    held = await _started_with_silent_holder(bus)
    await bus.request_process_abandon("proc-ob-silent", request(at=5))
    await bus.recovery(W).sweep_once()
    assert not (await bus.get_process("proc-ob-silent")).is_terminal()
    await bus.complete_process_lease(ProcessLeaseCompletion.from_lease(held))
    await bus.recovery(W).sweep_once()
    evidence = (await bus.get_process("proc-ob-silent")).status.await_output.evidence
    assert evidence.writer is AbandonWriter.RECONCILED_REQUEST
    assert evidence.owner.owner_id == "started-worker"


async def test_s_sw_10_externally_owned_reconciliation_never_reclaims(sweep_bus):
    bus = sweep_bus
    await bus.register_process(reg("p"))
    await bus.request_process_abandon("p", request())
    held = (await bus.claim_process_lease("p", D, 60_000)).lease
    await bus.recovery(W).sweep_once()
    assert not (await bus.get_process("p")).is_terminal()
    assert (await bus.get_process_lease("p")).lease_token == held.lease_token
    await bus.complete_process_lease(ProcessLeaseCompletion.from_lease(held))
    await bus.recovery(W).sweep_once()
    evidence = (await bus.get_process("p")).status.await_output.evidence
    assert evidence.writer is AbandonWriter.RECONCILED_REQUEST and evidence.owner is None


async def test_s_sw_11_abandon_requests_do_not_stop_rerunnable_or_unstarted_rows(sweep_bus):
    bus = sweep_bus
    await bus.register_process(rr_reg("a"))
    await bus.register_process(ob_reg("b"))
    for pid in ("a", "b"):
        await bus.request_process_abandon(pid, request())
    runner = CountingRunner(output=S(1))
    await bus.recovery(W, runner=runner).sweep_once()
    assert sorted(runner.calls) == ["a", "b"]
    for pid in ("a", "b"):
        assert (await bus.get_process(pid)).status == StatusCompleted(await_output=S(1))


async def test_s_sw_12_overlapping_sweeps_run_a_row_once(sweep_bus):
    bus = sweep_bus
    await bus.register_process(rr_reg("p"))
    gate = asyncio.Event()
    runner = CountingRunner(output=S(1), gate=gate)
    worker = bus.recovery(owner("w"), runner=runner)
    first = asyncio.create_task(worker.sweep_once())
    await asyncio.sleep(0.1)
    await worker.sweep_once()
    await bus.recovery(owner("peer"), runner=runner).sweep_once()
    gate.set()
    await first
    assert runner.calls == ["p"]
    terminals = [e for e in await bus.events_after("p", 0) if e.semantics.terminal]
    assert len(terminals) == 1


async def test_s_sw_13_the_worker_refuses_to_execute_externally_owned_rows(sweep_bus):
    bus = sweep_bus
    await bus.register_process(reg("worker-boundary-process"))
    with pytest.raises(errors.ExternallyOwnedNotExecutable, match="externally-owned"):
        await bus.recovery(W).execute("worker-boundary-process")
    assert (await bus.get_process("worker-boundary-process")).first_started is None
    with pytest.raises(errors.MissingExecutionId):
        await bus.recovery(W).execute("  ")


async def test_s_sw_14_owner_drain_abandons_only_this_owners_started_rows(sweep_bus):
    bus = sweep_bus
    mine = ProcessStarted(owner=W, started_at_ms=1)
    await bus.register_process(ob_reg("mine"))
    await bus.record_first_started("mine", mine)
    await bus.register_process(ob_reg("theirs"))
    await bus.record_first_started("theirs", ProcessStarted(owner=owner("other"), started_at_ms=1))
    await bus.register_process(ob_reg("fresh"))
    await bus.register_process(rr_reg("rr"))
    await bus.record_first_started("rr", mine)
    await bus.register_process(reg("ext"))
    await bus.register_process(ob_reg("busy"))
    await bus.record_first_started("busy", mine)
    foreign = (await bus.claim_process_lease("busy", owner("foreign"), 60_000)).lease
    drained = await bus.recovery(W).drain()
    assert drained == ["mine"]
    evidence = (await bus.get_process("mine")).status.await_output.evidence
    assert evidence.writer is AbandonWriter.OWNER_DRAIN and evidence.owner == W
    assert await bus.get_process_lease("mine") is None
    assert (await bus.get_process_lease("busy")).lease_token == foreign.lease_token
    for pid in ("theirs", "fresh", "rr", "ext", "busy"):
        assert not (await bus.get_process(pid)).is_terminal()
        assert await bus.events_after(pid, 0) == []


async def test_lease_loss_stops_the_run_and_writes_nothing(sweep_bus):
    """SW-13: a failed renewal cancels the run; no terminal, no release."""
    bus = sweep_bus
    await bus.register_process(rr_reg("p"))
    gate = asyncio.Event()
    runner = CountingRunner(gate=gate)
    recovery = bus.recovery(owner("w"), runner=runner, lease_ttl_ms=300, renew_every_ms=100)
    task = asyncio.create_task(recovery.execute("p"))
    await asyncio.sleep(0.05)
    held = await bus.get_process_lease("p")
    # Someone with death evidence takes the row over.
    taken = await bus.reclaim_process_lease(
        "p", owner("successor"), held, 60_000, death_evidence=True
    )
    assert isinstance(taken, LeaseAcquired)
    await asyncio.wait_for(task, 5)
    assert not (await bus.get_process("p")).is_terminal()
    assert (await bus.get_process_lease("p")).lease_token == taken.lease.lease_token


async def test_cancel_request_cancels_the_run(sweep_bus):
    bus = sweep_bus
    await bus.register_process(rr_reg("p"))
    runner = CountingRunner(gate=asyncio.Event())
    task = asyncio.create_task(bus.recovery(owner("w"), runner=runner).execute("p"))
    await asyncio.sleep(0.1)
    await bus.request_cancel("p", "stop")
    await asyncio.wait_for(task, 5)
    status = (await bus.get_process("p")).status
    assert type(status).__name__ == "StatusCancelled"


async def test_fenced_writes_reject_a_revenant(sweep_bus):
    """RX-12 / AB-4: a superseded lease cannot append, complete or record-start."""
    bus = sweep_bus
    await bus.register_process(rr_reg("p"))
    old = (await bus.claim_process_lease("p", owner("old"), 0)).lease
    new = (await bus.claim_process_lease("p", owner("new"), 60_000)).lease
    before = await bus.redis.hgetall(bus.keys.process("p").record)
    with pytest.raises(errors.LeaseFenced):
        await bus.append_event("p", req("process.waiting", {}), lease=old)
    with pytest.raises(errors.LeaseFenced):
        await bus.complete_process("p", S("revenant"), lease=old)
    with pytest.raises(errors.LeaseFenced):
        await bus.record_first_started(
            "p", ProcessStarted(owner=owner("old"), started_at_ms=1), lease=old
        )
    assert await bus.redis.hgetall(bus.keys.process("p").record) == before
    assert await bus.events_after("p", 0) == []
    await bus.complete_process("p", S("current"), lease=new)
    assert (await bus.get_process("p")).status == StatusCompleted(await_output=S("current"))
    assert isinstance(
        (await bus.get_process("p")).status.await_output, type(S(1))
    ) and not isinstance((await bus.get_process("p")).status.await_output, AwaitAbandoned)


def test_lease_timings_are_validated():
    from lash_streams.coordination.recovery import Recovery

    for ttl, renew in [(0, 1), (10, 0), (29, 10)]:
        with pytest.raises(ValueError, match="at least 3 x renew"):
            Recovery(None, W, lease_ttl_ms=ttl, renew_every_ms=renew)  # type: ignore[arg-type]
