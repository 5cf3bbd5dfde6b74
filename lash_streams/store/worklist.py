"""The namespace indexes (RX-2): ``all`` (every known id), ``running`` (the
worklist) and ``terminal`` (the prune index, scored by ``updated_at``).

The worklist's score says when a sweep is next due to look at the row (server
milliseconds; 0 = now): the lease's expiry while a lease is held, 0 once it is
released or the row is new, later for a row a sweep left running on purpose.
A drive's pass reads only the due rows (``due_records``), so its cost follows
the lapsed and never-claimed rows, not the running ones (issue 13).

The score is a hint; the lease row is the truth. It is written after each
lease script, as a step of its own (on a cluster the two live in different
slots), and every way it can go wrong errs early or late by a bounded time:
a lost or reordered write leaves a score earlier than the expiry (the row is
read, its live lease seen, and it is rescored), or later by at most one lease
TTL (a release whose rescore was lost: the row is looked at when the old
lease would have lapsed). ``sweep_once`` reads every row whatever the score.

They live in other slots than the records, so every move is a second,
idempotent step after the record's own script: a writer killed before it
leaves the id in the worklist, where every reader re-checks and repairs it.
Functions over the core, shared by registration, appends, reads and prune.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lash_streams.errors import LashStreamsError
from lash_streams.model import ProcessRecord
from lash_streams.store.core import StoreCore, text
from lash_streams.store.keys import IndexKind

log = logging.getLogger("lash_streams.store")


async def index_running(core: StoreCore, pid: str) -> None:
    ks = core.keys

    async def run() -> None:
        pipe = core.redis.pipeline(transaction=False)
        pipe.zadd(ks.index_of("all", pid), {pid: 0})
        pipe.zadd(ks.index_of("run", pid), {pid: 0})
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
        pipe.zadd(ks.index_of("term", pid), {pid: updated_at_ms})
        pipe.zrem(ks.index_of("run", pid), pid)
        if not core.cluster:  # one connection: the read runs after the move
            pipe.hmget(record_key, ["hash", "term"])
        replies: list[Any] = await pipe.execute()
        state = (
            replies[2] if not core.cluster else await core.redis.hmget(record_key, ["hash", "term"])
        )
        if state[0] is not None and state[1] != b"1":
            pipe = core.redis.pipeline(transaction=False)
            pipe.zadd(ks.index_of("run", pid), {pid: 0})
            pipe.zrem(ks.index_of("term", pid), pid)
            await pipe.execute()

    await core.retry.idempotent("index terminal process", run)


async def members(core: StoreCore, kind: IndexKind) -> list[str]:
    """Every id of an index, over all its shards, ascending by id."""

    async def read(key: str) -> list[bytes]:
        found: list[bytes] = await core.retry.idempotent(
            "read process index", lambda: core.redis.zrange(key, 0, -1)
        )
        return found

    shards = await asyncio.gather(*(read(key) for key in core.keys.indexes(kind)))
    return sorted((text(m) for found in shards for m in found), key=str.encode)


async def running_records(core: StoreCore) -> list[ProcessRecord]:
    """RD-6 / SW-2: running records ascending by id; terminal ids found in the
    worklist (a writer died between its two steps) are repaired."""
    return await _running(core, await members(core, "run"))


async def _running(core: StoreCore, ids: list[str]) -> list[ProcessRecord]:
    """The records of ``ids`` that are running, ascending by id; a terminal
    one still listed (its writer died between its two steps) is moved."""
    running: list[ProcessRecord] = []
    for record in await core.gather_records(ids):
        if record.is_terminal():
            await index_terminal(core, record.id, record.updated_at_ms)
        else:
            running.append(record)
    return sorted(running, key=lambda r: r.id.encode())


async def due_records(core: StoreCore) -> tuple[int, list[ProcessRecord]]:
    """The server time and the running records due for a look at that time,
    ascending by id (terminal ids found are repaired as ``running_records``)."""

    async def read(key: str) -> list[Any]:
        reply: list[Any] = await core.retry.idempotent(
            "read due rows", lambda: core.scripts.due_rows(keys=[key], args=[])
        )
        return reply

    shards = await asyncio.gather(*(read(key) for key in core.keys.indexes("run")))
    # The earliest shard's clock: a deferral from it errs early, never late.
    now = min(int(reply[0]) for reply in shards)
    return now, await _running(core, [text(m) for reply in shards for m in reply[1]])


async def rescore(core: StoreCore, pid: str, due_at_ms: int) -> None:
    """When a sweep is next due to look at a running row (never adds one: a
    terminal or pruned id stays out). A hint (see the module), so a failure is
    logged, not raised: the lease write it follows has landed."""
    key = core.keys.index_of("run", pid)
    try:
        await core.retry.idempotent(
            "rescore worklist row", lambda: core.redis.zadd(key, {pid: due_at_ms}, xx=True)
        )
    except LashStreamsError as err:
        log.warning("process `%s`: worklist rescore failed (%s); bounded by the lease", pid, err)


async def rescore_many(core: StoreCore, due_at_ms: dict[str, int]) -> None:
    """``rescore`` for many rows, one pipeline (one ``ZADD XX`` per index
    shard). A hint as ``rescore``: a failure is logged, not raised."""
    if not due_at_ms:
        return
    by_key: dict[str, dict[str, int]] = {}
    for pid, due in due_at_ms.items():
        by_key.setdefault(core.keys.index_of("run", pid), {})[pid] = due

    async def run() -> None:
        pipe = core.redis.pipeline(transaction=False)
        for key, scores in by_key.items():
            pipe.zadd(key, scores, xx=True)
        await pipe.execute()

    try:
        await core.retry.idempotent("rescore worklist rows", run)
    except LashStreamsError as err:
        log.warning("%d worklist rescores failed (%s); bounded by the lease", len(due_at_ms), err)


async def unindex(core: StoreCore, pid: str) -> None:
    """Drop a pruned id from every index; if it was registered again in the
    meantime, put it back (RX-2)."""
    ks = core.keys
    record_key = ks.process(pid).record

    async def run() -> None:
        pipe = core.redis.pipeline(transaction=False)
        pipe.zrem(ks.index_of("all", pid), pid)
        pipe.zrem(ks.index_of("term", pid), pid)
        pipe.zrem(ks.index_of("run", pid), pid)
        await pipe.execute()
        if await core.redis.exists(record_key):
            await core.redis.zadd(ks.index_of("all", pid), {pid: 0})
            await core.redis.zadd(ks.index_of("run", pid), {pid: 0})

    await core.retry.idempotent("unindex pruned process", run)
