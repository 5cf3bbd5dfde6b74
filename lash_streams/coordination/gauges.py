"""The namespace gauges workers publish (issue 16): running processes and the
age of the oldest running one.

Counting is cheap (the worklist's size); the oldest age reads every running
record's creation time, so one worker of the fleet does it per period: the
first to take ``<ns>:stats:{<ns>}:lock`` (``SET NX PX``) samples and leaves
the result in ``<ns>:stats:{<ns>}`` (a hash with a TTL), which every worker
reads to set its gauges. So each pod's gauges show the same, at most one
period old, value, and the fleet pays one scan per period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from lash_streams import errors
from lash_streams import observability as obs

if TYPE_CHECKING:
    from lash_streams.store import Store

log = logging.getLogger("lash_streams.worker")

#: How often the fleet samples (and each worker reads the sample).
GAUGE_EVERY_S = 60.0

#: Records read per pipeline while looking for the oldest running one.
_CHUNK = 1_000


def stats_key(store: Store) -> str:
    ns = store.keys.namespace
    return f"{ns}:stats:{{{ns}}}"


async def sample(store: Store, every_s: float = GAUGE_EVERY_S) -> tuple[int, float]:
    """(running processes, oldest running age in s): sampled here if no other
    worker did this period, else the fleet's last sample."""
    key = stats_key(store)
    period_ms = max(1, round(every_s * 1000))
    if await store.redis.set(key + ":lock", "1", nx=True, px=period_ms):
        running = 0
        oldest: int | None = None
        for index in store.keys.indexes("run"):
            ids = [m.decode() for m in await store.redis.zrange(index, 0, -1)]
            running += len(ids)
            for start in range(0, len(ids), _CHUNK):
                pipe = store.redis.pipeline(transaction=False)
                for pid in ids[start : start + _CHUNK]:
                    pipe.hget(store.keys.process(pid).record, "created")
                for created in await pipe.execute():
                    if created is not None:
                        at = int(created)
                        oldest = at if oldest is None else min(oldest, at)
        fields = {"running": running, "oldest_created_ms": -1 if oldest is None else oldest}
        pipe = store.redis.pipeline(transaction=False)
        pipe.hset(key, mapping=fields)
        pipe.pexpire(key, 3 * period_ms)
        await pipe.execute()
    found = await store.redis.hgetall(key)
    now = await store.server_time_ms()
    running = int(found.get(b"running", 0))
    oldest_ms = int(found.get(b"oldest_created_ms", -1))
    return running, 0.0 if oldest_ms < 0 else max(0, now - oldest_ms) / 1000


async def publish(store: Store, stop: asyncio.Event, every_s: float = GAUGE_EVERY_S) -> None:
    """Set the gauges every ``every_s`` until ``stop`` (only with metrics on)."""
    while not stop.is_set():
        if obs.hooks is not None and obs.hooks.metrics is not None:
            try:
                running, oldest_s = await sample(store, every_s)
                obs.hooks.running(running, oldest_s)
            except (errors.LashStreamsError, OSError, ConnectionError) as err:
                log.info("namespace gauges not sampled: %s", err)
            except Exception as err:  # a gauge must never stop a worker
                log.warning("namespace gauges not sampled: %s: %s", type(err).__name__, err)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
