"""Section A: registration and durability (RG-*, DT-1)."""

from __future__ import annotations

import msgspec
import pytest

from lash_streams import errors
from lash_streams.model import (
    DurabilityTier,
    LashSchema,
    ProcessEventSemanticsSpec,
    ProcessEventType,
    ProcessExternalRef,
    ProcessHandleDescriptor,
    ProcessTerminalSpec,
    ProcessTerminalState,
    StatusCompleted,
)

from .fixtures import S, plain, reg, req, scope, wake


async def test_s_reg_01_registration_is_idempotent_and_hash_conflicts_fail(bus):
    """S-REG-01 · RG-2, RG-4."""
    first = await bus.register_process(reg("proc-idempotent"))
    second = await bus.register_process(reg("proc-idempotent"))
    assert first.registration_hash == second.registration_hash
    with pytest.raises(errors.RegistrationConflict):
        await bus.register_process(reg("proc-idempotent", wake("producer.wake")))
    stored = await bus.get_process("proc-idempotent")
    assert stored.registration_hash == first.registration_hash
    assert "producer.wake" not in [t.name for t in stored.event_types]


async def test_s_reg_02_process_registry_reports_declared_durability(bus):
    """S-REG-02 · DT-1, RX-13: the test servers run without fsync-always AOF."""
    assert bus.durability_tier() == DurabilityTier.INLINE


async def test_s_reg_03_invalid_registrations_are_rejected_and_store_nothing(bus):
    """S-REG-03 · ID-1, RG-3, GEN-5."""
    failing_terminal = ProcessEventType(
        name="job.failed",
        payload_schema=LashSchema(schema={}),
        semantics=ProcessEventSemanticsSpec(
            terminal=ProcessTerminalSpec(state=ProcessTerminalState.FAILED)
        ),
    )
    cases = [
        reg("   "),
        reg("p", plain("x"), plain("x")),
        reg("p", plain(" ")),
        reg("p", failing_terminal),
        msgspec.structs.replace(reg("p"), env_ref="process-env:sha256:abc"),
    ]
    for registration in cases:
        with pytest.raises(errors.InvalidRegistration):
            await bus.register_process(registration)
        assert await bus.get_process("p") is None
    assert await bus.get_process("   ") is None


async def test_s_reg_04_default_event_types_are_merged(bus):
    """S-REG-04 · RG-2, RG-5, RG-6, ET-2."""
    record = await bus.register_process(msgspec.structs.replace(reg("p"), event_types=[plain("x")]))
    names = [t.name for t in record.event_types]
    assert names == [
        "x",
        "process.cancel_requested",
        "process.waiting",
        "process.resumed",
        "process.completed",
        "process.failed",
        "process.cancelled",
        "process.abandoned",
    ]
    assert record.status.__class__.__name__ == "StatusRunning"
    assert record.first_started is None and record.abandon_request is None and record.wait is None
    assert record.created_at_ms == record.updated_at_ms > 0
    assert await bus.events_after("p", 0) == []
    assert await bus.get_process_lease("p") is None


async def test_s_reg_05_reregistering_a_terminal_process_returns_it_unchanged(bus):
    """S-REG-05 · RG-4, PS-3."""
    await bus.register_process(reg("p"))
    await bus.complete_process("p", S(1))
    again = await bus.register_process(reg("p"))
    assert again.status == StatusCompleted(await_output=S(1))
    assert len(await bus.events_after("p", 0)) == 1


async def test_s_ro_01_process_registry_survives_reopen(bus, reopen):
    """S-RO-01 · DT-1, EV-6, XR-1, GR-3: a second, independent bus on the same data."""
    await bus.register_process(reg("proc-reopen", wake("producer.reopen_wake")))
    xref = ProcessExternalRef(backend="worker", id="reopen-job-123", metadata={"queue": "reopen"})
    await bus.set_external_ref("proc-reopen", xref)
    await bus.grant_handle(
        scope("reopen-session"), "proc-reopen", ProcessHandleDescriptor(kind="test", label="reopen")
    )
    request = req(
        "producer.reopen_wake",
        {"wake_input": "survived reopen"},
        key="producer:reopen",
        target=scope("reopen-session"),
    )
    first = await bus.append_event("proc-reopen", request)
    assert first.event.sequence == 1

    other = await reopen()
    reopened = await other.get_process("proc-reopen")
    assert reopened is not None and reopened.external_ref == xref
    same = await other.set_external_ref("proc-reopen", xref)
    assert same == reopened
    with pytest.raises(errors.ExternalRefConflict):
        await other.set_external_ref(
            "proc-reopen",
            ProcessExternalRef(backend="worker", id="reopen-job-456", metadata={"queue": "reopen"}),
        )
    events = await other.events_after("proc-reopen", 0)
    assert [e.sequence for e in events] == [1]
    assert len(await other.list_handle_grants(scope("reopen-session"))) == 1
    replay = await other.append_event("proc-reopen", request)
    assert replay.event.sequence == 1
    assert replay.wake_delivery == first.wake_delivery
    assert len(await other.events_after("proc-reopen", 0)) == 1
