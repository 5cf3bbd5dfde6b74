"""Section E: terminals, completion, await (CP-*, AW-*)."""

from __future__ import annotations

import asyncio

import pytest

from lash_streams import errors
from lash_streams.model import (
    AwaitFailure,
    ProcessHandleDescriptor,
    StatusCompleted,
    ToolFailureClass,
)

from .fixtures import S, owner, plain, reg, req, scope


async def test_s_aw_01_await_reads_terminal_materialized_output(bus):
    """S-AW-01 · CP-1, AW-1."""
    await bus.register_process(reg("proc-2"))
    await bus.complete_process("proc-2", S({"ok": True}))
    assert await bus.await_terminal("proc-2", timeout=1) == S({"ok": True})
    assert (await bus.get_process("proc-2")).is_terminal()


async def test_s_cp_01_complete_process_is_idempotent_and_first_terminal_wins(bus):
    """S-CP-01 · CP-1..CP-4, EV-10."""
    await bus.register_process(reg("p"))
    record = await bus.complete_process("p", S(1))
    assert record.status == StatusCompleted(await_output=S(1))
    await bus.complete_process("p", S(1))
    assert len(await bus.events_after("p", 0)) == 1
    with pytest.raises(errors.ReplayConflict):
        await bus.complete_process("p", S(2))
    with pytest.raises(errors.AlreadyTerminal):
        await bus.complete_process(
            "p", AwaitFailure(class_=ToolFailureClass.EXTERNAL, code="x", message="m")
        )
    with pytest.raises(errors.UnknownProcess):
        await bus.complete_process("missing", S(1))
    assert (await bus.get_process("p")).status == StatusCompleted(await_output=S(1))
    assert len(await bus.events_after("p", 0)) == 1


async def test_s_cp_02_exactly_one_terminal_under_concurrency(bus, reopen):
    """S-CP-02 · EV-8, EV-10, CP-3: ten clients race to complete."""
    await bus.register_process(reg("p"))
    clients = [bus, *[await reopen() for _ in range(2)]]
    outcomes = await asyncio.gather(
        *(clients[i % 3].complete_process("p", S(i)) for i in range(1, 11)),
        return_exceptions=True,
    )
    winners = [i + 1 for i, o in enumerate(outcomes) if not isinstance(o, BaseException)]
    losers = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(o, errors.ReplayConflict) for o in losers)
    terminals = [e for e in await bus.events_after("p", 0) if e.semantics.terminal]
    assert len(terminals) == 1
    assert (await bus.get_process("p")).status == StatusCompleted(await_output=S(winners[0]))


async def test_s_aw_02_awaiter_cross_task_completion_resolves_promptly(bus, reopen):
    """S-AW-02 · AW-1, AW-2, AW-6: the completer is another client."""
    await bus.register_process(reg("proc-await-cross-task"))
    waiter = asyncio.create_task(bus.await_terminal("proc-await-cross-task", timeout=10))
    await asyncio.sleep(0.05)
    other = await reopen()
    await other.complete_process("proc-await-cross-task", S({"cross": "task", "n": 7}))
    assert await asyncio.wait_for(waiter, 2) == S({"cross": "task", "n": 7})


async def test_s_aw_03_await_event_never_returns_events_at_or_before_cursor(bus):
    """S-AW-03 · AW-4."""
    await bus.register_process(reg("proc-await-cursor", plain("signal.ping")))
    await bus.append_event("proc-await-cursor", req("signal.ping", {}))
    await bus.append_event("proc-await-cursor", req("signal.ping", {}))
    got = await bus.await_event("proc-await-cursor", "signal.ping", 1, timeout=1)
    assert got.sequence == 2
    waiter = asyncio.create_task(bus.await_event("proc-await-cursor", "signal.ping", 2, timeout=10))
    await asyncio.sleep(0.15)
    assert not waiter.done()
    await bus.append_event("proc-await-cursor", req("signal.ping", {}))
    assert (await asyncio.wait_for(waiter, 2)).sequence == 3


async def test_s_aw_04_watched_decorator_preserves_registry_semantics(bus, reopen):
    """S-AW-04 · AW-7, LS-4: two independent clients see the same state."""
    other = await reopen()
    created = await bus.register_process(reg("proc-decorated", plain("producer.tick")))
    assert await other.get_process("proc-decorated") == created
    tick = await bus.append_event("proc-decorated", req("producer.tick", {}))
    assert [e.sequence for e in await other.events_after("proc-decorated", 0)] == [1]
    assert await other.events_after("proc-decorated", 0) == await bus.events_after(
        "proc-decorated", 0
    )
    assert (await other.events_after("proc-decorated", 0))[0].occurred_at == tick.event.occurred_at
    await bus.grant_handle(scope("decorator-owner"), "proc-decorated", ProcessHandleDescriptor())
    assert await other.has_handle_grant(scope("decorator-owner"), "proc-decorated")
    lease = (
        await bus.claim_process_lease("proc-decorated", owner("decorator-owner-a"), 60_000)
    ).lease
    busy = await other.claim_process_lease("proc-decorated", owner("decorator-owner-b"), 60_000)
    assert busy.holder.lease_token == lease.lease_token
    await bus.complete_process("proc-decorated", S("done"))
    assert (await other.get_process("proc-decorated")).is_terminal()
    assert await bus.list_non_terminal() == [] == await other.list_non_terminal()


async def test_s_aw_05_awaiter_behaviours(bus, reopen):
    """S-AW-05 · AW-1, AW-3, AW-5 (the applicable upstream awaiter tests)."""
    with pytest.raises(errors.UnknownProcess, match="unknown process `missing`"):
        await bus.await_terminal("missing", timeout=1)
    await bus.register_process(reg("proc"))
    from lash_streams.model import ProcessEventAppendRequest

    cancel = await bus.append_event(
        "proc", ProcessEventAppendRequest.cancel_requested("proc", "stop")
    )
    got = await bus.await_event("proc", "process.cancel_requested", 0, timeout=1)
    assert got.sequence == cancel.event.sequence
    # 16 concurrent waiters all resolve with the identical output.
    waiters = [asyncio.create_task(bus.await_terminal("proc", timeout=10)) for _ in range(16)]
    await asyncio.sleep(0.05)
    other = await reopen()
    await other.complete_process("proc", S({"raced": True}))
    results = await asyncio.wait_for(asyncio.gather(*waiters), 2)
    assert all(r == S({"raced": True}) for r in results)
    # Already terminal: returns at once.
    assert await asyncio.wait_for(bus.await_terminal("proc", timeout=5), 0.5) == S({"raced": True})
    # A bounded wait on a running process times out cleanly.
    await bus.register_process(reg("slow"))
    with pytest.raises(TimeoutError):
        await bus.await_terminal("slow", timeout=0.2)
