"""Section J: retention (PR-*)."""

from __future__ import annotations

import asyncio

import pytest

from lash_streams import errors
from lash_streams.model import LeaseAcquired, ProcessHandleDescriptor, ProcessPruneReport

from .fixtures import S, owner, plain, reg, req, scope, wake

DESC = ProcessHandleDescriptor()


async def test_s_pr_01_prune_respects_leases_grants_and_wake_acks(bus):
    """S-PR-01 · PR-1..PR-4, LS-5, WA-3."""
    owner_scope = scope("prune-retention-owner")
    for pid in ("proc-old", "proc-recent"):
        await bus.register_process(reg(pid, wake("producer.wake")))
        await bus.grant_handle(owner_scope, pid, DESC)
    await bus.register_process(reg("proc-live-retained"))
    for text in ("old one", "old two"):
        await bus.append_event(
            "proc-old", req("producer.wake", {"wake_input": text}, target=owner_scope)
        )
    await bus.ack_wake("proc-old", 1)
    lease = await bus.claim_process_lease("proc-old", owner("prune-lease-holder"), 60_000)
    assert lease.lease.fencing_token == 1
    old = await bus.complete_process("proc-old", S({"n": 1}))
    assert len(await bus.events_after("proc-old", 0)) == 3
    assert [e.sequence for e in await bus.wake_events_after("proc-old", 0)] == [2]
    await asyncio.sleep(0.01)
    await bus.append_event(
        "proc-recent", req("producer.wake", {"wake_input": "recent"}, target=owner_scope)
    )
    recent = await bus.complete_process("proc-recent", S({"n": 2}))
    assert recent.updated_at_ms > old.updated_at_ms

    report = await bus.prune_terminal_processes(recent.updated_at_ms)
    assert report == ProcessPruneReport(pruned_processes=1, pruned_events=3)
    assert await bus.get_process("proc-old") is None
    with pytest.raises(errors.UnknownProcess):
        await bus.wake_events_after("proc-old", 0)
    assert [r.id for _, r in await bus.list_handle_grants(owner_scope)] == ["proc-recent"]
    assert [r.id for r in await bus.list_non_terminal()] == ["proc-live-retained"]
    assert len(await bus.wake_events_after("proc-recent", 0)) == 1
    again = await bus.prune_terminal_processes(recent.updated_at_ms)
    assert again == ProcessPruneReport(pruned_processes=0, pruned_events=0)
    await bus.register_process(reg("proc-old"))
    successor = await bus.claim_process_lease("proc-old", owner("prune-lease-successor"), 60_000)
    assert isinstance(successor, LeaseAcquired) and successor.lease.fencing_token == 1


async def test_s_pr_02_prune_never_touches_non_terminal_rows(bus):
    """S-PR-02 · PR-1."""
    await bus.register_process(reg("proc-live-old"))
    await bus.register_process(reg("proc-term-old"))
    await bus.complete_process("proc-term-old", S(None))
    report = await bus.prune_terminal_processes(2**63 - 1)
    assert report.pruned_processes == 1
    assert await bus.get_process("proc-term-old") is None
    live = await bus.get_process("proc-live-old")
    assert live is not None and not live.is_terminal()


async def test_s_pr_03_prune_removes_terminal_processes_older_than_cutoff(bus):
    """S-PR-03 · PR-1, PR-3: strict cutoff; grants go with the process."""
    owner_scope = scope("prune-owner")
    for pid in ("proc-prune-old", "proc-prune-fresh", "proc-prune-live"):
        await bus.register_process(reg(pid))
    await bus.grant_handle(owner_scope, "proc-prune-old", DESC)
    await bus.complete_process("proc-prune-old", S({"n": 1}))
    await asyncio.sleep(0.01)
    fresh = await bus.complete_process("proc-prune-fresh", S({"n": 2}))
    report = await bus.prune_terminal_processes(fresh.updated_at_ms)
    assert report == ProcessPruneReport(pruned_processes=1, pruned_events=1)
    assert await bus.get_process("proc-prune-old") is None
    with pytest.raises(errors.UnknownProcess):
        await bus.events_after("proc-prune-old", 0)
    with pytest.raises(errors.UnknownProcess):
        await bus.handle_grants_for_process("proc-prune-old")
    assert not await bus.has_handle_grant(owner_scope, "proc-prune-old")
    kept = await bus.get_process("proc-prune-fresh")
    assert kept.is_terminal() and len(await bus.events_after("proc-prune-fresh", 0)) == 1
    assert not (await bus.get_process("proc-prune-live")).is_terminal()


async def test_s_pr_04_post_terminal_appends_delay_prune_eligibility(bus):
    """S-PR-04 · PR-5, EV-9, RG-8."""
    await bus.register_process(reg("p", plain("x")))
    t1 = (await bus.complete_process("p", S(None))).updated_at_ms
    await asyncio.sleep(0.01)
    await bus.append_event("p", req("x", {}))
    t2 = (await bus.get_process("p")).updated_at_ms
    assert t2 > t1
    assert (await bus.prune_terminal_processes(t2)).pruned_processes == 0
    assert await bus.get_process("p") is not None
    report = await bus.prune_terminal_processes(t2 + 1)
    assert report == ProcessPruneReport(pruned_processes=1, pruned_events=2)
