"""Sections F and G: disposition, started fact, abandonment, wait state, lists."""

from __future__ import annotations

import pytest

from lash_streams import errors
from lash_streams.model import (
    AbandonEvidence,
    AbandonRequest,
    AbandonWriter,
    AwaitAbandoned,
    ProcessListFilter,
    ProcessStarted,
    ProcessStatusFilter,
    RecoveryDisposition,
    StatusAbandoned,
    WaitSignal,
    WaitState,
)

from .fixtures import S, ob_reg, owner, reg


async def test_s_ab_01_disposition_first_started_and_abandon_request_persist(bus, reopen):
    """S-AB-01 · DS-1, ST-1, ST-2, AB-3, LS-9."""
    record = await bus.register_process(ob_reg("proc-disposition"))
    assert record.disposition == RecoveryDisposition.OWNER_BOUND
    assert record.first_started is None and record.abandon_request is None
    assert await bus.get_process_lease("proc-disposition") is None
    first = ProcessStarted(owner=owner("starter"), started_at_ms=111)
    assert (await bus.record_first_started("proc-disposition", first)).first_started == first
    again = await bus.record_first_started(
        "proc-disposition", ProcessStarted(owner=owner("other-starter"), started_at_ms=222)
    )
    assert again.first_started == first
    lease = (await bus.claim_process_lease("proc-disposition", owner("holder"), 60_000)).lease
    stored = await bus.get_process_lease("proc-disposition")
    assert stored.lease_token == lease.lease_token
    assert stored.expires_at_epoch_ms == lease.expires_at_epoch_ms
    request = AbandonRequest(requested_by="operator", requested_at_ms=333, reason="host retired")
    assert (
        await bus.request_process_abandon("proc-disposition", request)
    ).abandon_request == request
    second = await bus.request_process_abandon(
        "proc-disposition", AbandonRequest(requested_by="second-operator", requested_at_ms=444)
    )
    assert second.abandon_request == request
    reloaded = await (await reopen()).get_process("proc-disposition")
    assert reloaded.first_started == first and reloaded.abandon_request == request
    with pytest.raises(errors.UnknownProcess):
        await bus.record_first_started("missing-process", first)
    with pytest.raises(errors.UnknownProcess):
        await bus.request_process_abandon("missing-process", request)


async def test_s_ab_02_abandoned_terminal_round_trips_and_pins_writer_rules(bus):
    """S-AB-02 · AB-1, AB-3..AB-5, CP-3, PR-1."""
    await bus.register_process(ob_reg("proc-abandoned"))
    output = AwaitAbandoned(
        evidence=AbandonEvidence(
            writer=AbandonWriter.SWEEP, owner=owner("dead-owner"), epoch_ms=999
        )
    )
    record = await bus.complete_process("proc-abandoned", output)
    assert record.status == StatusAbandoned(await_output=output)
    listed = await bus.list_processes(ProcessListFilter(status=ProcessStatusFilter.ABANDONED))
    assert [r.id for r in listed] == ["proc-abandoned"]
    with pytest.raises(errors.AlreadyTerminal):
        await bus.complete_process("proc-abandoned", S("revenant"))
    with pytest.raises(errors.TerminalRejectsAbandonRequest):
        await bus.request_process_abandon(
            "proc-abandoned", AbandonRequest(requested_by="operator", requested_at_ms=1)
        )
    report = await bus.prune_terminal_processes(2**63 - 1)
    assert report.pruned_processes == 1
    assert await bus.get_process("proc-abandoned") is None


def wait_state(pid: str) -> WaitState:
    return WaitState(
        kind=WaitSignal(
            name="ready", event_type="signal.ready", key=f"process:{pid}:signal.ready:1", ordinal=1
        ),
        since_ms=1234,
    )


async def test_s_ws_01_wait_state_round_trips_filters_and_clears_on_terminal(bus):
    """S-WS-01 · WS-1..WS-4, EV-12, RD-5."""
    pid = "proc-wait-roundtrip"
    with pytest.raises(errors.UnknownProcess):
        await bus.set_process_wait("missing-process", wait_state(pid))
    await bus.register_process(reg(pid))
    w = wait_state(pid)
    assert (await bus.set_process_wait(pid, w)).wait == w
    assert (await bus.get_process(pid)).wait == w
    waiting = await bus.list_processes(ProcessListFilter(waiting=True))
    assert pid in [r.id for r in waiting]
    assert pid not in [r.id for r in await bus.list_processes(ProcessListFilter(waiting=False))]
    assert (await bus.clear_process_wait(pid)).wait is None
    await bus.set_process_wait(pid, w)
    assert (await bus.complete_process(pid, S({"done": True}))).wait is None
    with pytest.raises(errors.TerminalRejectsWait):
        await bus.set_process_wait(pid, w)


async def test_s_rd_02_list_processes_filters_by_status_and_waiting(bus):
    """S-RD-02 · RD-5, PS-4."""
    for pid in ("proc-list-running", "proc-list-waiting", "proc-list-done"):
        await bus.register_process(reg(pid))
    await bus.set_process_wait("proc-list-waiting", wait_state("proc-list-waiting"))
    await bus.complete_process("proc-list-done", S(None))

    async def ids(**kw: object) -> list[str]:
        return [r.id for r in await bus.list_processes(ProcessListFilter(**kw))]

    assert await ids(status=ProcessStatusFilter.ANY) == [
        "proc-list-done",
        "proc-list-running",
        "proc-list-waiting",
    ]
    assert await ids() == ["proc-list-running", "proc-list-waiting"]
    assert await ids(status=ProcessStatusFilter.COMPLETED) == ["proc-list-done"]
    assert await ids(status=ProcessStatusFilter.ANY, waiting=True) == ["proc-list-waiting"]
    assert await ids(waiting=False) == ["proc-list-running"]


async def test_s_rd_03_list_non_terminal_excludes_terminal_processes(bus):
    """S-RD-03 · RD-6, SW-2."""
    await bus.register_process(reg("proc-live"))
    await bus.register_process(reg("proc-done"))
    await bus.complete_process("proc-done", S(None))
    assert [r.id for r in await bus.list_non_terminal()] == ["proc-live"]
