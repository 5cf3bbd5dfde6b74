"""Fuzz targets: jobs (``submit``, workers, the ready streams), wake and fleet
consumers, recovery, wakes delivery and trimming, health."""

from __future__ import annotations

from hypothesis import strategies as st

from lash_streams.bus import Bus
from lash_streams.model import ProcessWakeDelivery, RecoveryDisposition
from lash_streams.store.dispatch import ReadyJob

from .harness import call, fresh, is_text_id, target, unique
from .strategies import id_text, ids, numbers, payloads, scopes
from .targets_leases import owners
from .targets_processes import registered

dispositions = st.sampled_from([*RecoveryDisposition, "rerunnable", None])


@target("submit")
async def fuzz_submit(bus: Bus, data: st.DataObject) -> None:
    kind = data.draw(st.just("k") | ids, "kind")
    payload = data.draw(payloads, "payload")
    job_id = data.draw(st.none() | ids, "id")
    job_id = unique(job_id) if job_id is not None else None
    session = data.draw(st.none() | scopes, "session")
    delay = data.draw(st.none() | numbers, "delay_s")
    label = data.draw(st.none() | ids, "label")
    disposition = data.draw(dispositions, "disposition")
    record, err = await call(
        bus,
        lambda: bus.submit(
            kind,
            payload,
            id=job_id,
            session=session,
            delay_s=delay,
            label=label,
            disposition=disposition,
        ),
    )
    if err is None:
        assert await bus.get_process(record.id) == record
        if job_id is not None:
            assert record.id == job_id and is_text_id(job_id)


@target("wake_consumer")
async def fuzz_wake_consumer(bus: Bus, data: st.DataObject) -> None:
    group, consumer = data.draw(ids, "group"), data.draw(ids, "consumer")
    chosen = data.draw(st.lists(scopes, max_size=3) | scopes, "scopes")
    knobs = {
        name: data.draw(st.just(default) | numbers, name)
        for name, default in (("claim_idle_ms", 50), ("max_deliveries", 2), ("batch", 4))
    }
    block = data.draw(st.sampled_from([0, 1, -1, float("nan"), "1"]), "block_ms")
    made, err = await call(
        bus,
        lambda: bus.wake_consumer(
            group=group, consumer=consumer, scopes=chosen, block_ms=block, **knobs
        ),
    )
    if err is None:
        try:
            await call(bus, lambda: made.next(timeout=0.01))
        finally:
            await made.aclose()


@target("fleet_consumer", "trim_fleet_notices", "drop_fleet_group")
async def fuzz_fleet(bus: Bus, data: st.DataObject) -> None:
    group, pod = unique(data.draw(ids, "group")), data.draw(ids, "pod")
    knobs = {
        name: data.draw(st.just(default) | numbers, name)
        for name, default in (("lease_ms", 1000), ("max_scopes", 2), ("max_deliveries", 2))
    }
    block = data.draw(st.sampled_from([0, 1, -1, float("nan"), "1"]), "block_ms")
    made, err = await call(
        bus, lambda: bus.fleet_consumer(group=group, pod=pod, block_ms=block, **knobs)
    )
    if err is None:
        try:
            await call(bus, lambda: made.next(timeout=0.01))
        finally:
            await made.aclose()
    await call(bus, lambda: bus.drop_fleet_group(group))
    await call(bus, bus.trim_fleet_notices)


@target("recovery", "sweeper")
async def fuzz_recovery(bus: Bus, data: st.DataObject) -> None:
    stem = owners(data)
    knobs = {
        "lease_ttl_ms": data.draw(st.just(3000) | numbers),
        "renew_every_ms": data.draw(st.just(1000) | numbers),
        "max_runs": data.draw(st.just(4) | numbers),
        "unrunnable": data.draw(st.sampled_from(["fail", "skip", "other", None])),
        "fleet_liveness": data.draw(st.sampled_from([False, True, "yes"])),
    }
    for make in (bus.recovery, bus.sweeper):
        made, err = await call(bus, lambda make=make: make(stem, **knobs))
        if err is None:
            await call(bus, lambda made=made: made.sweep_once())


@target("worker")
async def fuzz_worker(bus: Bus, data: st.DataObject) -> None:
    identity = owners(data)

    async def handler(job: object) -> None:
        return None

    kinds = data.draw(st.lists(id_text | st.binary(max_size=3) | st.integers(), max_size=2))
    handlers = data.draw(st.sampled_from(["dict", "none", "junk"]))
    chosen = {"dict": {k: handler for k in kinds}, "none": None, "junk": 5}[handlers]
    knobs = {
        "concurrency": data.draw(st.just(2) | numbers),
        "lease_ttl_ms": data.draw(st.just(3000) | numbers),
        "renew_every_ms": data.draw(st.just(1000) | numbers),
        "sweep_every_s": data.draw(st.just(1.0) | numbers),
        "block_ms": data.draw(st.just(10) | numbers),
    }
    made, err = await call(bus, lambda: bus.worker(identity, chosen, **knobs))
    if err is None:
        job_id = unique(data.draw(ids))
        await call(bus, lambda: made.execute(job_id))


@target(
    "read_ready",
    "reclaim_ready",
    "ensure_ready_group",
    "requeue_ready",
    "settle_ready",
    "queue_ready",
    "not_before",
    "start_job",
    "promote_due",
)
async def fuzz_ready_streams(bus: Bus, data: st.DataObject) -> None:
    kinds = data.draw(st.lists(st.just("k") | ids, max_size=2) | ids, "kinds")
    consumer = data.draw(ids, "consumer")
    # Counts stay valid: these are the workers' own plumbing, fed by the
    # worker's checked settings; the ids are what a user chooses.
    n, block = data.draw(st.integers(1, 5), "count"), None
    for kind in kinds if isinstance(kinds, list) else [kinds]:
        if data.draw(st.booleans(), "grouped"):  # else a read is GroupMissing
            await call(bus, lambda kind=kind: bus.ensure_ready_group(kind))
    await call(bus, lambda: bus.read_ready(kinds, consumer, n, block))
    await call(bus, lambda: bus.reclaim_ready(kinds, consumer, n, n))
    await call(bus, bus.promote_due)
    record = await bus.submit("k", id=fresh("job"))
    job = ReadyJob(
        kind=data.draw(st.just("k") | ids),
        entry_id=data.draw(st.just("0-1") | ids),
        process_id=unique(data.draw(ids)),
        disposition=data.draw(dispositions),
    )
    await call(bus, lambda: bus.requeue_ready([job]))
    await call(bus, lambda: bus.settle_ready([job]))
    await call(bus, lambda: bus.queue_ready(record))
    await call(bus, lambda: bus.not_before([record]), write=False)
    ttl = data.draw(numbers, "lease_ttl_ms")
    pid, attempt, stem = data.draw(st.just(record.id) | ids), owners(data), owners(data)
    await call(bus, lambda: bus.start_job(pid, job.disposition, attempt, stem, ttl))


@target("deliver_wake", "deliver_wakes", "relay_pending", "trim_wakes")
async def fuzz_wake_delivery(bus: Bus, data: st.DataObject) -> None:
    pid = await registered(bus)
    scope = data.draw(scopes, "scope")
    session = data.draw(ids, "session")
    delivery = ProcessWakeDelivery(
        wake_id=data.draw(ids, "wake id"),
        target_session_id=session,
        target_scope_id=data.draw(id_text),
        process_id=pid,
        sequence=data.draw(numbers),
        dedupe_key=data.draw(ids, "dedupe key"),
        input=data.draw(st.just("wake") | ids),
        created_at_ms=data.draw(numbers),
    )
    outbox = data.draw(st.none() | ids, "outbox id")
    await call(bus, lambda: bus.deliver_wake(delivery, outbox))
    await call(bus, lambda: bus.deliver_wakes([(delivery, outbox)]))
    chunk = data.draw(st.just(500) | numbers, "chunk")
    await call(bus, lambda: bus.relay_pending(chunk))
    await call(bus, lambda: bus.trim_wakes(scope))


@target("health")
async def fuzz_health(bus: Bus, data: st.DataObject) -> None:
    timeout = data.draw(numbers, "timeout")
    result, err = await call(bus, lambda: bus.health(timeout), write=False)
    if err is None:
        assert result.ok or timeout < 0.1  # a tiny timeout may pass before PONG
