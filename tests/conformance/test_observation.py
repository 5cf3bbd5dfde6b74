"""Sections E/M remainder: inbox idempotency, observed facts, and the
scenarios whose mechanism this adapter replaces (with the reason)."""

from __future__ import annotations

import asyncio

import pytest

from lash_streams.model import (
    AbandonEvidence,
    AbandonWriter,
    AwaitAbandoned,
    AwaitCancelled,
    AwaitFailure,
    ProcessWakeDelivery,
    ToolFailureClass,
    status_label,
)
from lash_streams.semantics.tool_output import observed_error

from .fixtures import S, owner, reg, scope


async def test_s_wk_06_inbox_enqueue_is_source_key_idempotent_and_claimed_once(bus):
    """S-WK-06 · WK-11, RX-7, RX-8: the scope's stream is the session inbox."""
    d = ProcessWakeDelivery(
        wake_id="wake-1",
        target_session_id="root",
        target_scope_id="session:root",
        process_id="process-1",
        sequence=7,
        dedupe_key="wake-dedupe-1",
        input="wake payload",
        created_at_ms=1,
    )
    assert await bus.deliver_wake(d) is True
    assert await bus.deliver_wake(d) is False  # same source: nothing new
    stream = bus.keys.wake_stream("session:root")
    entries = await bus.redis.xrange(stream)
    assert len(entries) == 1
    assert entries[0][1][b"src"] == b"process:process-1:event:7:wake"
    consumer = bus.wake_consumer(group="session", consumer="worker", scopes=[scope("root")])
    message = await consumer.next(timeout=2)
    assert message is not None and message.delivery == d
    assert await consumer.next(timeout=0.2) is None  # claimed once
    await message.ack()
    pending = await bus.redis.xpending(stream, "session")
    assert pending["pending"] == 0
    await consumer.aclose()


async def test_s_ob_02_observed_process_exposes_raw_facts(bus):
    """S-OB-02 · OB-4, TO-4, PS-1."""
    await bus.register_process(reg("failed"))
    await bus.complete_process(
        "failed",
        AwaitFailure(class_=ToolFailureClass.EXTERNAL, code="boom", message="failed loudly"),
    )
    await bus.register_process(reg("cancelled"))
    await bus.complete_process("cancelled", AwaitCancelled(message="cancelled intentionally"))
    await bus.register_process(reg("abandoned"))
    await bus.complete_process(
        "abandoned",
        AwaitAbandoned(evidence=AbandonEvidence(writer=AbandonWriter.SWEEP, epoch_ms=1)),
    )
    for pid, label, error in [
        ("failed", "failed", "failed loudly"),
        ("cancelled", "cancelled", "cancelled intentionally"),
        ("abandoned", "abandoned", None),
    ]:
        record = await bus.get_process(pid)
        assert status_label(record.status) == label and record.is_terminal()
        assert observed_error(record.await_output()) == error
    await bus.register_process(reg("running"))
    lease = (await bus.claim_process_lease("running", owner("holder"), 1)).lease
    await asyncio.sleep(0.01)
    seen = await bus.get_process_lease("running")
    assert seen.owner == lease.owner and seen.expires_at_epoch_ms == lease.expires_at_epoch_ms
    assert status_label((await bus.get_process("running")).status) == "running"
    assert S(1).value == 1


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [
        (
            "S-NT-01",
            "lash's in-process change hub is replaced by the process stream itself: waiters "
            "block on XREAD from the last entry they saw (RX-15); prune writes no event, so "
            "nobody is woken by it (tests: S-AW-02/03, tail across OS processes)",
        ),
        (
            "S-NT-02",
            "a terminal event stored while the record says running cannot happen: the event "
            "and the status projection are written by one script (EV-8)",
        ),
        (
            "S-OB-01",
            "no best-effort event sink is offered; tail_events/await_event read the durable "
            "stream, which is the truth lash's sink consumers reconcile from (OB-1)",
        ),
    ],
)
def test_not_applicable_to_this_adapter(scenario: str, reason: str) -> None:
    pytest.skip(f"{scenario}: {reason}")
