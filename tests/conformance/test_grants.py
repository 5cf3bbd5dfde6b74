"""Section H: session deletion, grants, external refs (SD-*, GR-*, XR-1)."""

from __future__ import annotations

import pytest

from lash_streams import errors
from lash_streams.model import ProcessExternalRef, ProcessHandleDescriptor

from .fixtures import S, reg, req, scope, wake

DESC = ProcessHandleDescriptor(kind="test", label="external ref")


async def test_s_sd_01_delete_session_revokes_handles_by_session(bus):
    """S-SD-01 · SD-1..SD-4, WA-3."""
    for pid in ("sole", "shared", "terminal"):
        await bus.register_process(reg(pid, wake("producer.wake"), wake_target=scope("deleted")))
        await bus.grant_handle(scope("deleted"), pid, DESC)
    await bus.grant_handle(scope("remaining"), "shared", DESC)
    await bus.complete_process("terminal", S(None))
    await bus.append_event(
        "sole", req("producer.wake", {"wake_input": "wake deleted"}, target=scope("deleted"))
    )
    shared = await bus.append_event(
        "shared", req("producer.wake", {"wake_input": "wake shared"}, target=scope("remaining"))
    )
    assert shared.event.sequence == 1
    await bus.ack_wake("shared", 1)
    assert await bus.wake_events_after("shared", 0) == []
    counts = {pid: len(await bus.events_after(pid, 0)) for pid in ("sole", "shared", "terminal")}

    report = await bus.delete_session_process_state("deleted")
    assert report.revoked_handle_count == 3
    assert report.deleted_wake_count == 0
    assert report.orphaned_process_ids == ["sole"]
    assert report.preserved_process_ids == ["shared"]
    for pid in ("sole", "shared", "terminal"):
        record = await bus.get_process(pid)
        assert record is not None and record.wake_target is None
    assert await bus.list_handle_grants(scope("deleted")) == []
    assert len(await bus.list_handle_grants(scope("remaining"))) == 1
    assert await bus.wake_events_after("shared", 0) == []
    later = await bus.append_event("sole", req("producer.wake", {"wake_input": "later"}))
    assert later.wake_delivery is None
    counts["sole"] += 1
    assert {pid: len(await bus.events_after(pid, 0)) for pid in counts} == counts


async def test_s_gr_01_handle_grant_membership_round_trip(bus):
    """S-GR-01 · GR-1, GR-3."""
    await bus.register_process(reg("proc-external-ref"))
    owner_scope = scope("grant-owner")
    assert not await bus.has_handle_grant(owner_scope, "proc-external-ref")
    await bus.grant_handle(owner_scope, "proc-external-ref", DESC)
    assert await bus.has_handle_grant(owner_scope, "proc-external-ref")
    await bus.revoke_handle(owner_scope, "proc-external-ref")
    assert not await bus.has_handle_grant(owner_scope, "proc-external-ref")
    assert await bus.list_handle_grants(owner_scope) == []


async def test_s_xr_01_external_reference_set_once_semantics(bus):
    """S-XR-01 · XR-1."""
    first_ref = ProcessExternalRef(backend="worker", id="job-123", metadata={"queue": "critical"})
    with pytest.raises(errors.UnknownProcess):
        await bus.set_external_ref("missing-process", first_ref)
    await bus.register_process(reg("proc-external-ref"))
    first = await bus.set_external_ref("proc-external-ref", first_ref)
    assert first.external_ref == first_ref
    assert await bus.set_external_ref("proc-external-ref", first_ref) == first
    for other in (
        ProcessExternalRef(backend="worker", id="job-456", metadata={"queue": "critical"}),
        ProcessExternalRef(backend="worker", id="job-123", metadata={"queue": "standard"}),
    ):
        with pytest.raises(errors.ExternalRefConflict):
            await bus.set_external_ref("proc-external-ref", other)
    assert (await bus.get_process("proc-external-ref")).external_ref == first_ref


async def test_s_gr_02_transfer_handle_grants_moves_addressability(bus):
    """S-GR-02 · GR-2."""
    await bus.register_process(reg("proc-3"))
    await bus.grant_handle(
        scope("s1"), "proc-3", ProcessHandleDescriptor(kind="tool", label="demo")
    )
    await bus.transfer_handle_grants(scope("s1"), scope("s2"), ["proc-3"])
    assert await bus.list_handle_grants(scope("s1")) == []
    moved = await bus.list_handle_grants(scope("s2"))
    assert len(moved) == 1
    assert moved[0][0].descriptor == ProcessHandleDescriptor(kind="tool", label="demo")
    assert await bus.events_after("proc-3", 0) == []


async def test_s_gr_02b_transfer_of_a_missing_grant_changes_nothing(bus):
    """GR-2 [ADAPTER]: all-or-nothing; a missing grant fails before any move."""
    await bus.register_process(reg("a"))
    await bus.register_process(reg("b"))
    await bus.grant_handle(scope("s1"), "a", DESC)
    with pytest.raises(errors.GrantMissing):
        await bus.transfer_handle_grants(scope("s1"), scope("s2"), ["a", "b"])
    assert [g.process_id for g, _ in await bus.list_handle_grants(scope("s1"))] == ["a"]
    assert await bus.list_handle_grants(scope("s2")) == []


async def test_s_gr_03_multiple_sessions_can_hold_grants(bus):
    """S-GR-03 · GR-3."""
    await bus.register_process(reg("proc-5"))
    await bus.grant_handle(scope("s1"), "proc-5", DESC)
    await bus.grant_handle(scope("s2"), "proc-5", DESC)
    assert [g.session_id for g in await bus.handle_grants_for_process("proc-5")] == ["s1", "s2"]
    await bus.transfer_handle_grants(scope("s1"), scope("s3"), ["proc-5"])
    assert [g.session_id for g in await bus.handle_grants_for_process("proc-5")] == ["s2", "s3"]
    assert await bus.events_after("proc-5", 0) == []


async def test_s_gr_04_processes_can_exist_with_zero_grants(bus):
    """S-GR-04 · GR-3."""
    await bus.register_process(reg("proc-4"))
    assert await bus.list_handle_grants(scope("s1")) == []
    assert await bus.handle_grants_for_process("proc-4") == []


async def test_s_gr_05_list_live_handle_grants_excludes_terminal_history(bus):
    """S-GR-05 · GR-3."""
    owner_scope = scope("history-owner")
    for pid in ("proc-live-grant", "proc-done-grant"):
        await bus.register_process(reg(pid))
        await bus.grant_handle(owner_scope, pid, DESC)
    await bus.complete_process("proc-done-grant", S(None))
    live = await bus.list_live_handle_grants(owner_scope)
    assert [r.id for _, r in live] == ["proc-live-grant"]
    every = await bus.list_handle_grants(owner_scope)
    assert [r.id for _, r in every] == ["proc-done-grant", "proc-live-grant"]
