"""Namespace indexes split over K slots (issue 13, item 4): every index
reader sees every shard, a cluster spreads the index writes, and a namespace
keeps the shard count it was created with."""

from __future__ import annotations

import asyncio

import pytest
from redis.crc import key_slot

import lash_streams as ls
from lash_streams import errors
from lash_streams.model import ProcessListFilter, ProcessStatusFilter
from lash_streams.store import delivery

from ..conformance.fixtures import S, reg, req, rr_reg, scope, wake
from ..recovery.test_recovery_v2 import GatedRunner, stem

SHARDS = 4
PIDS = [f"p-{i:02d}" for i in range(24)]


@pytest.fixture
async def sharded(real_bus):
    """A bus whose namespace has four index shards, on every real server."""
    bus, url = real_bus
    sharded = await ls.connect(url, namespace=bus.keys.namespace, index_shards=SHARDS)
    yield sharded, url
    await sharded.aclose()


async def test_the_shard_keys_spread_over_slots_and_every_process_lands_in_its_shard(sharded):
    bus, _ = sharded
    keys = bus.keys
    assert len({key_slot(key.encode()) for key in keys.indexes("run")}) == SHARDS
    for pid in PIDS:
        await bus.register_process(rr_reg(pid))
    shards_used = set()
    for pid in PIDS:
        shard = keys.shard_of(pid)
        shards_used.add(shard)
        assert await bus.redis.zscore(keys.index("run", shard), pid) is not None
        assert await bus.redis.zscore(keys.index("all", shard), pid) is not None
    assert shards_used == set(range(SHARDS))
    with pytest.raises(ValueError, match="index shards"):
        _ = keys.index_running  # one key does not name a sharded index


async def test_readers_see_every_shard(sharded):
    bus, _ = sharded
    for pid in PIDS:
        await bus.register_process(rr_reg(pid))
    running = [r.id for r in await bus.list_non_terminal()]
    assert running == sorted(PIDS)
    await bus.complete_process("p-03", S("done"))
    await bus.complete_process("p-17", S("done"))
    listed = await bus.list_processes(ProcessListFilter(status=ProcessStatusFilter.ANY))
    assert [r.id for r in listed] == sorted(PIDS)
    assert "p-03" not in [r.id for r in await bus.list_non_terminal()]
    now = await bus.server_time_ms()
    report = await bus.prune_terminal_processes(now + 1)
    assert report.pruned_processes == 2
    listed = await bus.list_processes(ProcessListFilter(status=ProcessStatusFilter.ANY))
    assert len(listed) == len(PIDS) - 2


async def test_due_passes_and_the_drive_cover_every_shard(sharded):
    bus, _ = sharded
    for pid in PIDS:
        await bus.register_process(rr_reg(pid))
    held = PIDS[:12]
    await asyncio.gather(*(bus.claim_process_lease(p, stem("holder"), 600_000) for p in held))
    runner = GatedRunner()
    runner.gate.set()
    report = await bus.recovery(stem("w"), runner=runner).sweep_due()
    assert sorted(report.ran) == PIDS[12:]
    assert (await bus.due_records())[1] == []


async def test_the_relay_finds_pending_intents_in_every_shard(sharded, monkeypatch):
    bus, _ = sharded
    pids = PIDS[:8]
    for pid in pids:
        await bus.register_process(reg(pid, wake("w"), wake_target=scope(f"s-{pid}")))

    async def cut(core, items):
        raise ConnectionError("cut before delivery")

    monkeypatch.setattr(delivery, "deliver_wakes", cut)
    for pid in pids:
        bus.forget(pid)  # uncached: the two-step path (intent, then delivery)
        await bus.append_event(pid, req("w", {"wake_input": pid}))
    monkeypatch.undo()
    marked = [await bus.redis.zcard(key) for key in bus.keys.indexes("ob")]
    assert sum(marked) == len(pids) and sum(1 for n in marked if n) > 1
    assert await bus.relay_pending() == len(pids)
    assert [await bus.redis.zcard(key) for key in bus.keys.indexes("ob")] == [0] * SHARDS
    for pid in pids:
        assert await bus.redis.xlen(bus.keys.wake_stream(f"session:s-{pid}")) == 1


async def test_a_namespace_keeps_its_shard_count(sharded):
    bus, url = sharded
    namespace = bus.keys.namespace
    async with ls.connect(url, namespace=namespace) as reader:
        assert reader.keys.index_shards == SHARDS  # read from the namespace
    with pytest.raises(errors.InvalidValue, match="uses 4 index shard"):
        await ls.connect(url, namespace=namespace, index_shards=2)
    with pytest.raises(errors.InvalidValue, match="uses 4 index shard"):
        await ls.connect(url, namespace=namespace, index_shards=1)


async def test_a_namespace_with_single_shard_data_is_not_split(real_bus):
    bus, url = real_bus
    await bus.register_process(rr_reg("p"))
    with pytest.raises(errors.InvalidValue, match="cannot be split"):
        await ls.connect(url, namespace=bus.keys.namespace, index_shards=4)
    async with ls.connect(url, namespace=bus.keys.namespace, index_shards=1) as same:
        assert [r.id for r in await same.list_non_terminal()] == ["p"]


@pytest.mark.parametrize("bad", [0, -1, 1025, True, "4", 2.0])
async def test_a_bad_shard_count_is_refused_before_connecting(bad):
    with pytest.raises(errors.InvalidValue, match="index_shards"):
        # No server listens there: the value is refused first.
        await ls.connect("redis://127.0.0.1:1", index_shards=bad)


async def test_fleet_pods_serve_scopes_whose_notices_are_spread_over_the_shards(sharded):
    """The fleet notice stream is split as the indexes are: a scope's notices
    go to its shard, two pods read every shard, each wake is served once,
    and trimming and dropping the group cover every shard."""
    bus, _ = sharded
    await bus.register_process(reg("p", wake("w")))
    scopes = [f"s{i}" for i in range(16)]
    async with (
        bus.fleet_consumer(group="g", pod="pod-1", block_ms=50) as one,
        bus.fleet_consumer(group="g", pod="pod-2", block_ms=50) as two,
    ):
        for name in scopes:
            await bus.append_event("p", req("w", {"wake_input": name}, target=scope(name)))
        lengths = [await bus.redis.xlen(s) for s in bus.keys.fleet_streams()]
        assert sum(lengths) == len(scopes) and sum(1 for n in lengths if n) > 1
        served: list[str] = []

        async def serve(pod) -> None:
            while len(served) < len(scopes):
                message = await pod.next(timeout=0.2)
                if message is not None:
                    served.append(message.scope_id)
                    await message.ack()

        async with asyncio.timeout(30):
            await asyncio.gather(serve(one), serve(two))
            for pod in (one, two):  # the drained scopes' notices are settled
                while await pod.next(timeout=0.1) is not None:
                    pass
        assert sorted(served) == sorted(f"session:{name}" for name in scopes)
    await bus.trim_fleet_notices()
    assert [await bus.redis.xlen(s) for s in bus.keys.fleet_streams()] == [0] * SHARDS
    await bus.drop_fleet_group("g")
    for stream in bus.keys.fleet_streams():
        assert not await bus.redis.exists(stream, stream + ":groups")
