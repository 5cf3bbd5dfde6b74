"""The namespace indexes (RX-2): ``all`` (every known id), ``running`` (the
worklist) and ``terminal`` (the prune index, scored by ``updated_at``).

They live in other slots than the records, so every move is a second,
idempotent step after the record's own script: a writer killed before it
leaves the id in the worklist, where every reader re-checks and repairs it.
Functions over the core, shared by registration, appends, reads and prune.
"""

from __future__ import annotations

from typing import Any

from lash_streams.model import ProcessRecord
from lash_streams.store.core import StoreCore, text


async def index_running(core: StoreCore, pid: str) -> None:
    ks = core.keys

    async def run() -> None:
        pipe = core.redis.pipeline(transaction=False)
        pipe.zadd(ks.index_all, {pid: 0})
        pipe.zadd(ks.index_running, {pid: 0})
        await pipe.execute()

    await core.retry.idempotent("index process", run)


async def index_terminal(core: StoreCore, pid: str, updated_at_ms: int) -> None:
    """Move the id from the worklist to the prune index, then read the record:
    a writer that stalled here may wake after the id was pruned and
    registered again, so a running record moves straight back.

    Why the read after the move is enough: a re-registration indexes the id
    after its record exists (RX-2). If that happened after our ``ZREM``, the
    id is back already; if before, our read sees the running record."""
    ks = core.keys
    record_key = ks.process(pid).record

    async def run() -> None:
        pipe = core.redis.pipeline(transaction=False)
        pipe.zadd(ks.index_terminal, {pid: updated_at_ms})
        pipe.zrem(ks.index_running, pid)
        if not core.cluster:  # one connection: the read runs after the move
            pipe.hmget(record_key, ["hash", "term"])
        replies: list[Any] = await pipe.execute()
        state = (
            replies[2] if not core.cluster else await core.redis.hmget(record_key, ["hash", "term"])
        )
        if state[0] is not None and state[1] != b"1":
            pipe = core.redis.pipeline(transaction=False)
            pipe.zadd(ks.index_running, {pid: 0})
            pipe.zrem(ks.index_terminal, pid)
            await pipe.execute()

    await core.retry.idempotent("index terminal process", run)


async def members(core: StoreCore, key: str) -> list[str]:
    found: list[bytes] = await core.retry.idempotent(
        "read process index", lambda: core.redis.zrange(key, 0, -1)
    )
    return [text(m) for m in found]


async def running_records(core: StoreCore) -> list[ProcessRecord]:
    """RD-6 / SW-2: running records ascending by id; terminal ids found in the
    worklist (a writer died between its two steps) are repaired."""
    ids = await members(core, core.keys.index_running)
    records = await core.gather_records(ids)
    running: list[ProcessRecord] = []
    for record in records:
        if record.is_terminal():
            await index_terminal(core, record.id, record.updated_at_ms)
        else:
            running.append(record)
    return sorted(running, key=lambda r: r.id.encode())


async def unindex(core: StoreCore, pid: str) -> None:
    """Drop a pruned id from every index; if it was registered again in the
    meantime, put it back (RX-2)."""
    ks = core.keys
    record_key = ks.process(pid).record

    async def run() -> None:
        pipe = core.redis.pipeline(transaction=False)
        pipe.zrem(ks.index_all, pid)
        pipe.zrem(ks.index_terminal, pid)
        pipe.zrem(ks.index_running, pid)
        await pipe.execute()
        if await core.redis.exists(record_key):
            await core.redis.zadd(ks.index_all, {pid: 0})
            await core.redis.zadd(ks.index_running, {pid: 0})

    await core.retry.idempotent("unindex pruned process", run)
