"""The Prometheus instruments, read back from a private CollectorRegistry."""

from __future__ import annotations

import asyncio

import pytest

from lash_streams import errors
from lash_streams.model import (
    AbandonRequest,
    AwaitFailure,
    DedupeConst,
    LashSchema,
    ProcessEventSemanticsSpec,
    ProcessEventType,
    ProcessStarted,
    ProcessWakeSpec,
    SelPointer,
    ToolFailureClass,
)

from ..conformance.fixtures import S, fixture_oracle, local, ob_reg, owner, reg, req, rr_reg, scope
from ..conformance.fixtures import wake as wake_type

EXTERNAL = ToolFailureClass.EXTERNAL
W = local("live-worker", "host-a", "claimant-start")
D = local("dead-worker", "host-a", "not-the-current-process-start")


def same_wake_id(name: str) -> ProcessEventType:
    """Every event of this type carries one wake id, so the second delivery is deduped."""
    return ProcessEventType(
        name=name,
        payload_schema=LashSchema(schema={}),
        semantics=ProcessEventSemanticsSpec(
            wake=ProcessWakeSpec(input=SelPointer("/wake_input"), dedupe_key=DedupeConst("same"))
        ),
    )


async def test_every_append_call_counts_one_outcome(obs_bus, observed):
    bus = obs_bus
    await bus.register_process(reg("p"))
    await bus.append_event("p", req("process.waiting", {}))
    await bus.append_event("p", req("process.waiting", {"n": 1}, key="k"))
    await bus.append_event("p", req("process.waiting", {"n": 1}, key="k"))  # replay
    with pytest.raises(errors.ReplayConflict):
        await bus.append_event("p", req("process.waiting", {"n": 2}, key="k"))
    await bus.complete_process("p", S("done"))
    # After the terminal a request no longer plans; its replay key decides first (EV-2.3).
    await bus.complete_process("p", S("done"))  # replay
    with pytest.raises(errors.ReplayConflict):
        await bus.complete_process("p", S("other"))
    with pytest.raises(errors.AlreadyTerminal):
        await bus.complete_process("p", AwaitFailure(class_=EXTERNAL, code="x", message="m"))
    with pytest.raises(errors.UnknownProcess):
        await bus.append_event("nobody", req("process.waiting", {}))

    assert observed.value("lash_streams_appends_total", outcome="appended") == 3
    assert observed.value("lash_streams_appends_total", outcome="replayed") == 2
    assert observed.value("lash_streams_appends_total", outcome="conflict") == 2
    assert observed.value("lash_streams_appends_total", outcome="error") == 2
    assert observed.value("lash_streams_append_duration_seconds_count") == 9


async def test_pipelined_batch_items_count_as_appends(obs_bus, observed):
    bus = obs_bus
    await bus.register_process(reg("a"))
    await bus.register_process(reg("b"))
    items = [("a", req("process.waiting", {"i": i})) for i in range(3)]
    items.append(("b", req("process.waiting", {})))
    await bus.append_events(items)
    assert observed.value("lash_streams_appends_total", outcome="appended") == 4


async def test_a_repeated_keyed_batch_counts_its_items_as_replayed(obs_bus, observed):
    bus = obs_bus
    await bus.register_process(reg("a"))
    await bus.register_process(reg("b"))
    items = [(pid, req("process.waiting", {"p": pid}, key=f"k-{pid}")) for pid in ("a", "b")]
    await bus.append_events(items)
    await bus.append_events(items)
    assert observed.value("lash_streams_appends_total", outcome="appended") == 2
    assert observed.value("lash_streams_appends_total", outcome="replayed") == 2


async def test_wakes_delivered_and_deduped(obs_bus, observed):
    bus = obs_bus
    await bus.register_process(reg("p", same_wake_id("d")))
    for text in ("one", "two"):
        await bus.append_event("p", req("d", {"wake_input": text}, target=scope("s")))
    assert observed.value("lash_streams_wakes_delivered_total") == 1
    assert observed.value("lash_streams_wakes_deduped_total") == 1


async def test_dead_letters_are_counted_by_group(obs_bus, observed):
    bus = obs_bus
    await bus.register_process(reg("p", wake_type("w")))
    s = scope("poison")
    consumer = bus.wake_consumer(
        group="g", consumer="c", scopes=[s], claim_idle_ms=50, max_deliveries=1, block_ms=20
    )
    await consumer.ensure_groups()
    await bus.append_event("p", req("w", {"wake_input": "bad"}, target=s))
    for _ in range(10):
        message = await consumer.next(timeout=0.1)
        if message is not None:
            await message.nack()  # the handler fails
        await asyncio.sleep(0.06)
        if observed.value("lash_streams_wakes_dead_lettered_total", group="g"):
            break
    await consumer.aclose()
    assert observed.value("lash_streams_wakes_dead_lettered_total", group="g") == 1


async def test_consumer_lag_pending_and_oldest_age(bus, observed):
    """On every backend: the sample reads XINFO GROUPS and XPENDING per scope."""
    await bus.register_process(reg("p", wake_type("w")))
    s = scope("backlog")
    consumer = bus.wake_consumer(group="g", consumer="c", scopes=[s], batch=1, block_ms=20)
    consumer.backlog_sample_s = 0
    await consumer.ensure_groups()
    for i in range(3):
        await bus.append_event("p", req("w", {"wake_input": str(i)}, target=s))
    first = await consumer.next(timeout=1)  # sampled before its read: 3 waiting, none pending
    assert first is not None
    assert observed.value("lash_streams_wake_consumer_lag", group="g") == 3
    assert observed.value("lash_streams_wake_pending", group="g") == 0
    assert observed.value("lash_streams_wake_pel_age_seconds", group="g") == 0
    await asyncio.sleep(0.3)
    second = await consumer.next(timeout=1)  # the first is still unacknowledged
    assert second is not None
    assert observed.value("lash_streams_wake_consumer_lag", group="g") == 2
    assert observed.value("lash_streams_wake_pending", group="g") == 1
    assert observed.value("lash_streams_wake_pel_age_seconds", group="g") >= 0.25
    await consumer.aclose()
    # A group nobody here consumes any more reports nothing rather than a stale value.
    assert observed.registry.get_sample_value("lash_streams_wake_pending", {"group": "g"}) is None


async def test_lease_claims_renewals_and_losses(obs_bus, observed):
    bus = obs_bus
    bus.death_oracle = fixture_oracle
    await bus.register_process(rr_reg("p"))
    held = (await bus.claim_process_lease("p", D, 60_000)).lease
    await bus.claim_process_lease("p", W, 60_000)  # busy
    await bus.reclaim_process_lease("p", W, held, 60_000)  # D is provably dead
    with pytest.raises(errors.UnknownProcess):
        await bus.claim_process_lease("nobody", W, 60_000)
    with pytest.raises(errors.LeaseExpired):
        await bus.renew_process_lease(held, 60_000)
    current = await bus.get_process_lease("p")
    await bus.renew_process_lease(current, 60_000)

    def claims(kind: str, outcome: str) -> float:
        return observed.value("lash_streams_lease_claims_total", kind=kind, outcome=outcome)

    assert claims("claim", "acquired") == 1
    assert claims("claim", "busy") == 1
    assert claims("claim", "unknown_process") == 1
    assert claims("reclaim", "acquired") == 1
    assert observed.value("lash_streams_lease_renewals_total", outcome="renewed") == 1
    assert observed.value("lash_streams_lease_renewals_total", outcome="expired") == 1

    # Recovery gives up a terminal whose lease it cannot renew (SW-12).
    assert not await bus.recovery(W).fenced_terminal("p", held, S("late"))
    assert observed.value("lash_streams_lease_losses_total", stage="terminal") == 1


async def test_a_run_that_loses_its_lease_is_counted(obs_bus, observed):
    bus = obs_bus
    await bus.register_process(rr_reg("p"))
    gate = asyncio.Event()

    async def runner(record, lease):
        await gate.wait()
        return S("never written")

    recovery = bus.recovery(owner("w"), runner=runner, lease_ttl_ms=300, renew_every_ms=100)
    task = asyncio.create_task(recovery.execute("p"))
    await asyncio.sleep(0.05)
    held = await bus.get_process_lease("p")
    await bus.reclaim_process_lease("p", owner("successor"), held, 60_000, death_evidence=True)
    assert await asyncio.wait_for(task, 5) == "ran"
    assert observed.value("lash_streams_lease_losses_total", stage="run") == 1


async def test_a_fleet_pod_that_loses_its_scope_is_counted(obs_bus, observed):
    bus = obs_bus
    await bus.register_process(reg("p", wake_type("w")))
    await bus.append_event("p", req("w", {"wake_input": "x"}, target=scope("f")))
    async with bus.fleet_consumer(group="g", pod="pod-1", lease_ms=300, block_ms=50) as pod:
        message = await pod.next(timeout=2)
        assert message is not None
        # Another pod took the scope while this one stalled past its lease:
        # the background renewal finds out and drops the scope.
        await bus.redis.set(bus.keys.scope_owner("session:f"), "pod-2|t", px=3000)
        for _ in range(30):
            await asyncio.sleep(0.05)
            if pod.scopes == []:
                break
        assert pod.scopes == []
        assert await message.ack() is False  # lost with the scope: settling is a no-op
    assert observed.value("lash_streams_lease_losses_total", stage="fleet_scope") == 1


async def test_sweeps_rows_and_abandonments_by_writer(obs_bus, observed):
    bus = obs_bus
    bus.death_oracle = fixture_oracle
    # sweep: started owner-bound row whose holder is provably dead.
    await bus.register_process(ob_reg("dead"))
    await bus.record_first_started("dead", ProcessStarted(owner=D, started_at_ms=1))
    await bus.claim_process_lease("dead", D, 60_000)
    # reconciled_request: an externally owned row with an abandon request.
    await bus.register_process(reg("ext"))
    request = AbandonRequest(requested_by="operator", requested_at_ms=1, reason=None)
    await bus.request_process_abandon("ext", request)
    # ran: a rerunnable row.
    await bus.register_process(rr_reg("rr"))

    async def runner(record, lease):
        return S("ok")

    report = await bus.recovery(W, runner=runner).sweep_once()
    assert sorted(report.abandoned) == ["dead", "ext"] and report.ran == ["rr"]
    assert observed.value("lash_streams_sweeps_total") == 1
    assert observed.value("lash_streams_sweep_rows_total", outcome="abandoned") == 2
    assert observed.value("lash_streams_sweep_rows_total", outcome="ran") == 1
    assert observed.value("lash_streams_abandonments_total", writer="sweep") == 1
    assert observed.value("lash_streams_abandonments_total", writer="reconciled_request") == 1

    # owner_drain: this worker's own started row, at shutdown.
    await bus.register_process(ob_reg("mine"))
    await bus.record_first_started("mine", ProcessStarted(owner=W, started_at_ms=1))
    assert await bus.recovery(W).drain() == ["mine"]
    assert observed.value("lash_streams_abandonments_total", writer="owner_drain") == 1
    assert observed.value("lash_streams_sweeps_total") == 1  # a drain is no sweep


async def test_driven_passes_count_rows_as_they_finish(obs_bus, observed):
    bus = obs_bus
    await bus.register_process(rr_reg("rr"))

    async def runner(record, lease):
        return S("ok")

    stop = asyncio.Event()
    drive = asyncio.create_task(bus.recovery(W, runner=runner).run(0.05, stop=stop))
    await asyncio.wait_for(bus.await_terminal("rr", timeout=5), 6)
    await asyncio.sleep(0.15)
    stop.set()
    await drive
    assert observed.value("lash_streams_sweeps_total") >= 2
    assert observed.value("lash_streams_sweep_rows_total", outcome="ran") == 1


async def test_disabled_metrics_record_nothing(obs_bus, observed):
    from lash_streams import observability as obs

    obs.disable_metrics()
    await obs_bus.register_process(reg("p"))
    await obs_bus.append_event("p", req("process.waiting", {}))
    assert observed.value("lash_streams_appends_total", outcome="appended") == 0
    assert len(observed.spans("lash_streams.append")) == 1  # tracing stays on
    obs.enable_metrics(observed.registry)  # the same instruments, not registered twice
    await obs_bus.append_event("p", req("process.waiting", {}))
    assert observed.value("lash_streams_appends_total", outcome="appended") == 1
