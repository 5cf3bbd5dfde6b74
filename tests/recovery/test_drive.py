"""``Recovery.run``: the periodic drive, like lash's ``drive_pending_processes``
(SW-3): each row is recovered on a task of its own and a pass never waits for
the runs it started; stopping hands in-flight rows back without a terminal."""

from __future__ import annotations

import asyncio

import pytest

from lash_streams.model import (
    AbandonWriter,
    AwaitAbandoned,
    LeaseOwnerIdentity,
    StatusCompleted,
)

from ..conformance.fixtures import S, ob_reg, rr_reg


def stem(name: str) -> LeaseOwnerIdentity:
    return LeaseOwnerIdentity.opaque(name, f"{name}-incarnation")


async def until(predicate, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():  # noqa: ASYNC110 - polling Redis state
            await asyncio.sleep(0.02)


async def test_a_run_awaiting_a_child_does_not_hold_up_the_pass_that_claims_it(bus):
    # The parent's run registers a child and waits for its terminal; the child
    # is claimed and run by a later pass of the same drive.
    async def runner(record, lease):
        if record.id == "parent":
            await bus.register_process(rr_reg("child"))
            return S({"child": await bus.await_terminal("child", timeout=15)})
        return S("child done")

    await bus.register_process(rr_reg("parent"))
    stop = asyncio.Event()
    recovery = bus.recovery(stem("driver"), runner=runner, lease_ttl_ms=3000, renew_every_ms=1000)
    drive = asyncio.create_task(recovery.run(every_s=0.05, stop=stop))
    try:

        async def parent_done() -> bool:
            return (await bus.get_process("parent")).is_terminal()

        await until(parent_done)
    finally:
        stop.set()
        await drive
    parent = (await bus.get_process("parent")).status
    assert isinstance(parent, StatusCompleted)
    assert isinstance((await bus.get_process("child")).status, StatusCompleted)


async def test_one_long_run_does_not_stop_other_rows_being_recovered(bus):
    gate = asyncio.Event()

    async def runner(record, lease):
        if record.id == "slow":
            await gate.wait()
        return S(record.id)

    await bus.register_process(rr_reg("slow"))
    stop = asyncio.Event()
    recovery = bus.recovery(stem("driver"), runner=runner, lease_ttl_ms=3000, renew_every_ms=1000)
    drive = asyncio.create_task(recovery.run(every_s=0.05, stop=stop))
    try:

        async def slow_leased() -> bool:
            return await bus.get_process_lease("slow") is not None

        await until(slow_leased)
        await bus.register_process(rr_reg("quick"))  # registered while "slow" runs

        async def quick_done() -> bool:
            return (await bus.get_process("quick")).is_terminal()

        await until(quick_done)
        assert not (await bus.get_process("slow")).is_terminal()
        gate.set()
    finally:
        stop.set()
        await drive


@pytest.mark.parametrize("settled", [True, False], ids=["running", "mid-claim"])
async def test_stopping_the_drive_hands_rows_back_without_a_terminal(bus, settled):
    # mid-claim stops the drive the moment its claims land, while its rows are
    # between claim and run: a cancel can then cut off a claim's reply, or be
    # dropped inside redis-py on Python 3.11; the drive must still stop and
    # hand back every lease it holds (it hung before it cancelled repeatedly).
    runs = 0

    async def never_ends(record, lease):
        nonlocal runs
        runs += 1
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    pids = ("rerun-me", "owned")
    await bus.register_process(rr_reg("rerun-me"))
    await bus.register_process(ob_reg("owned"))
    stop = asyncio.Event()
    first = bus.recovery(
        stem("first"), runner=never_ends, lease_ttl_ms=30_000, renew_every_ms=10_000
    )
    drive = asyncio.create_task(first.run(every_s=0.05, stop=stop))

    async def ready() -> bool:
        if settled:
            return runs == 2
        return all([await bus.get_process_lease(p) is not None for p in pids])

    async with asyncio.timeout(20):
        while not await ready():  # noqa: ASYNC110 - polling Redis
            await asyncio.sleep(0.02 if settled else 0)
    stop.set()
    async with asyncio.timeout(15):
        await drive
    for pid in pids:
        assert not (await bus.get_process(pid)).is_terminal()
        assert await bus.events_after(pid, 0) == []
        assert await bus.get_process_lease(pid) is None  # released, not left to lapse
    # Another worker re-runs the rerunnable row at once; the owner's drain
    # abandons the owner-bound row if it got as far as starting it (else it is
    # still unstarted and anyone may run it).
    started = (await bus.get_process("owned")).first_started is not None
    assert await first.drain() == (["owned"] if started else [])
    second = bus.recovery(stem("second"), runner=lambda r, lease: _done(r))
    report = await second.sweep_once()
    assert "rerun-me" in report.ran
    assert isinstance((await bus.get_process("rerun-me")).status, StatusCompleted)
    output = (await bus.get_process("owned")).await_output()
    if started:
        assert isinstance(output, AwaitAbandoned)
        assert output.evidence.writer is AbandonWriter.OWNER_DRAIN
    else:
        assert output == S("owned")
    if settled:
        assert started


async def _done(record):
    return S(record.id)
