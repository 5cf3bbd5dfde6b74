"""A 3-master cluster with one replica per master under a write load:
``CLUSTER FAILOVER`` on replicas, and a slot moved to another master
(``CLUSTER SETSLOT`` IMPORTING/MIGRATING + ``MIGRATE``), while appends run.
The bus's cluster client follows the new owners (MOVED, ASK, reconnects)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import pytest

import lash_streams as ls
from lash_streams import errors
from lash_streams.bus import Bus
from lash_streams.server import LocalCluster
from lash_streams.server.proc import _command

from ._tools import (
    BINARIES,
    History,
    assert_gapless,
    new_namespace,
    open_bus,
    read_log,
    register,
    request,
)

pytestmark = pytest.mark.slow

PROCESSES = 6


@pytest.fixture(scope="module", params=BINARIES)
def cluster(request: pytest.FixtureRequest) -> Iterator[LocalCluster]:
    local = LocalCluster.redis(replicas=1) if request.param == "redis" else LocalCluster(replicas=1)
    local.start()
    yield local
    local.stop()


async def _writer(bus: Bus, history: History, stop: asyncio.Event, batch_with: str) -> None:
    """Appends (single and batched, keyed and not) until ``stop``; a typed
    error marks the value unknown and the writer goes on."""
    n = 0
    while not stop.is_set():
        n += 1
        value = f"{history.pid}-{n}"
        keyed = n % 3 != 0
        try:
            if n % 5 == 0:
                # A two-process batch: this process and another (two slots).
                results = await bus.append_events(
                    [(history.pid, request(value, keyed=True)), (batch_with, request(f"{value}@"))]
                )
                history.acked[value] = results[0].event.sequence
            else:
                result = await bus.append_event(history.pid, request(value, keyed=keyed))
                history.acked[value] = result.event.sequence
        except errors.BatchPartlyApplied as err:
            first = err.outcomes[0]
            if isinstance(first, ls.ProcessEventAppendResult):
                history.acked[value] = first.event.sequence
            else:
                history.unknown.add(value)
            history.errors.append(err)
        except errors.BackendError as err:
            history.unknown.add(value)
            history.errors.append(err)
        await asyncio.sleep(0.002)


async def _under_load(
    cluster: LocalCluster, fault: Callable[[Bus], Awaitable[None]], *, transparent: bool = False
) -> None:
    """Six writers while ``fault`` runs, then the check; ``transparent``:
    no call may fail at all."""
    namespace = new_namespace()
    url = cluster.url.replace("redis://", "redis+cluster://")
    bus = await open_bus(url, namespace, retry=ls.RetryPolicy(attempts=8, max_delay_s=15))
    try:
        pids = [f"p{i}" for i in range(PROCESSES)]
        sinks = [f"sink{i}" for i in range(PROCESSES)]
        for pid in pids + sinks:
            await register(bus, pid)
        histories = [History(pid) for pid in pids]
        stop = asyncio.Event()
        writers = [
            asyncio.create_task(_writer(bus, h, stop, sink))
            for h, sink in zip(histories, sinks, strict=True)
        ]
        await asyncio.sleep(0.3)
        await fault(bus)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*writers), 60)
        for history in histories:
            verdict = await read_log(bus, history)
            assert not verdict.lost and not verdict.duplicated and not verdict.unexpected, (
                history.pid,
                verdict.lost,
                verdict.duplicated,
                history.errors,
            )
            assert_gapless(verdict.sequences)
            assert len(history.acked) > 10
            if transparent:
                assert not history.errors, (history.pid, history.errors)
        for sink in sinks:
            assert_gapless(e.sequence for e in await bus.events_after(sink, 0))
    finally:
        await bus.aclose()


async def test_cluster_failover_under_load_keeps_every_acknowledged_append(
    cluster: LocalCluster,
) -> None:
    """CLUSTER FAILOVER on the replica of two masters in turn while six
    writers append (single and batched): afterwards every acknowledged
    append is present, none twice, sequences gapless on every process; the
    writers were never stopped by a raw redis-py error."""

    async def fault(bus: Bus) -> None:
        for pid in ("p0", "p3"):
            master = cluster.master_for(bus.keys.process(pid).record)
            replica = cluster.replicas_of(master)[0]
            await cluster.afailover(replica)
            assert cluster.master_for(bus.keys.process(pid).record) is replica
            await asyncio.sleep(0.2)

    await _under_load(cluster, fault)


async def test_slot_moved_under_load_keeps_every_acknowledged_append(
    cluster: LocalCluster,
) -> None:
    """A process's slot resharded to another master (IMPORTING/MIGRATING,
    MIGRATE one key every 50 ms, SETSLOT NODE) while writers append: the
    move is transparent (ASK and TRYAGAIN are refusals before anything ran:
    the bus retries them, single appends and batches alike, so no call
    fails); every acknowledged append is present once, sequences gapless."""

    async def fault(bus: Bus) -> None:
        key = bus.keys.process("p1").record
        slot = int(_command(cluster.nodes[0].port, "CLUSTER", "KEYSLOT", key))
        source = cluster.master_for(key)
        target = next(n for n in cluster.primaries() if n is not source)
        moved = await asyncio.to_thread(cluster.move_slot, slot, target, batch=1, pause_s=0.05)
        assert moved > 0 and cluster.master_for(key) is target

    await _under_load(cluster, fault, transparent=True)


async def test_node_clients_closed_while_another_call_opens_one(cluster: LocalCluster) -> None:
    """Two calls on a cluster meet a fault at once (seen under CLUSTER
    FAILOVER): one closes the per-node clients while the other opens one
    for a node it had no client for (the new master). Neither may fail with
    a raw RuntimeError ("dictionary changed size during iteration")."""
    url = cluster.url.replace("redis://", "redis+cluster://")
    bus = await open_bus(url, new_namespace())
    try:
        keys = [bus.keys.process(f"p{i}").record for i in range(12)]
        first = cluster.master_for(keys[0])
        for key in keys:
            if cluster.master_for(key) is first:
                await bus.blocking_for(key).ping()  # clients for one node only

        async def reopen() -> None:
            for _ in range(20):
                for key in keys:
                    bus.blocking_for(key)
                await asyncio.sleep(0)

        await asyncio.gather(bus.close_node_clients(), reopen())
        for key in keys:
            assert await bus.blocking_for(key).ping()
    finally:
        await bus.aclose()


async def test_a_waiter_follows_a_slot_move_without_cutting_other_calls(
    cluster: LocalCluster,
) -> None:
    """``await_terminal`` blocked on a node while its process's slot moves
    away: the MOVED it meets makes the bus learn the new owner and read
    again there (it used to close every per-node client, cutting other
    calls' blocking reads); both waiters, moved and not, get their terminals."""
    url = cluster.url.replace("redis://", "redis+cluster://")
    bus = await open_bus(url, new_namespace())
    try:
        for pid in ("m", "stay"):
            await register(bus, pid)
        key = bus.keys.process("m").record
        source = cluster.master_for(key)
        waiters = [asyncio.create_task(bus.await_terminal(p, timeout=30)) for p in ("m", "stay")]
        await asyncio.sleep(0.3)
        slot = int(_command(cluster.nodes[0].port, "CLUSTER", "KEYSLOT", key))
        target = next(n for n in cluster.primaries() if n is not source)
        await asyncio.to_thread(cluster.move_slot, slot, target)
        for pid in ("m", "stay"):
            await bus.complete_process(pid, ls.AwaitSuccess(value=pid))
        done = await asyncio.wait_for(asyncio.gather(*waiters), 30)
        assert done == [ls.AwaitSuccess(value="m"), ls.AwaitSuccess(value="stay")]
    finally:
        await bus.aclose()


async def test_writes_that_wait_for_replicas_survive_a_cluster_failover(
    cluster: LocalCluster,
) -> None:
    """RX-13 on a cluster: with ``Durability(replicas=1)`` each append and
    each pipelined registration step waits on its own node (scripts: the
    write and its WAIT on one connection; pipelines: a probe per node), so
    after CLUSTER FAILOVER of the process's master every acknowledged
    append is on the promoted replica."""
    url = cluster.url.replace("redis://", "redis+cluster://")
    namespace = new_namespace()
    wanted = ls.Durability(replicas=1, timeout_ms=2000)
    async with ls.connect(url, namespace=namespace, durability=wanted) as bus:
        for pid in ("d0", "d1"):
            await register(bus, pid)
        for value in range(20):
            for pid in ("d0", "d1"):
                await bus.append_event(pid, request(f"{pid}-{value}", keyed=True))
        master = cluster.master_for(bus.keys.process("d0").record)
        await cluster.afailover(cluster.replicas_of(master)[0])
        for pid in ("d0", "d1"):
            got = [e.payload for e in await bus.events_after(pid, 0)]
            assert len(got) == 20, got
        probes = [k async for k in bus.redis.scan_iter(match=f"{namespace}:durability:*")]
        for probe in probes:
            assert 0 < await bus.redis.pttl(probe) <= 60_000


async def test_a_wake_consumer_follows_its_scope_to_a_new_master(cluster: LocalCluster) -> None:
    """A wake consumer reads its scope's stream with a plain client of the
    stream's node. After the slot moves, the next read goes to the new owner
    (the cluster client learns it from a MOVED answer to its own commands or,
    when only a node client's read meets it, from
    lash_streams.store.node_client's refresh), and a wake appended after the
    move is delivered."""
    from tests.conformance.fixtures import reg, req, scope, wake

    url = cluster.url.replace("redis://", "redis+cluster://")
    bus = await open_bus(url, new_namespace())
    try:
        await bus.register_process(reg("w", wake("ping")))
        consumer = bus.wake_consumer(group="g", consumer="c", scopes=[scope("s")], block_ms=100)
        await bus.append_event("w", req("ping", {"wake_input": 0}, key="before", target=scope("s")))
        first = await consumer.next(timeout=10)
        assert first is not None
        await first.ack()
        stream = bus.keys.wake_stream("session:s")
        slot = int(_command(cluster.nodes[0].port, "CLUSTER", "KEYSLOT", stream))
        source = cluster.master_for(stream)
        target = next(n for n in cluster.primaries() if n is not source)
        await asyncio.to_thread(cluster.move_slot, slot, target)
        await bus.append_event("w", req("ping", {"wake_input": 1}, key="after", target=scope("s")))
        second = await consumer.next(timeout=15)
        assert second is not None and second.delivery.input == "1"
        await second.ack()
        await consumer.aclose()
    finally:
        await bus.aclose()
