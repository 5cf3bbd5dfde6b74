"""A bus on a ``redis+sentinel://`` URL follows a failover (docs/operating.md).

Starts its own Sentinel set on loopback (a primary, a replica, three
sentinels); against yours, connect with your sentinels' URL instead."""

from __future__ import annotations

import asyncio

import lash_streams as ls
from lash_streams.server import LocalSentinelSet


async def main(sentinels: LocalSentinelSet) -> None:
    url = sentinels.url  # redis+sentinel://127.0.0.1:PORT,127.0.0.1:PORT,.../lash-primary
    async with ls.connect(url, durability=ls.Durability(replicas=1)) as bus:
        print(bus.durability().detail)
        await bus.register_process(ls.ProcessRegistration.external("job-1"))
        request = ls.ProcessEventAppendRequest.new("process.waiting", {"step": 1})
        await bus.append_event("job-1", request.with_replay_key("step-1"))

        new_port = await asyncio.to_thread(sentinels.failover)  # SENTINEL FAILOVER
        print(f"the primary is now on port {new_port}")

        request = ls.ProcessEventAppendRequest.new("process.waiting", {"step": 2})
        await bus.append_event("job-1", request.with_replay_key("step-2"))
        events = await bus.events_after("job-1", 0)
        print([e.payload for e in events])  # both steps, on the new primary
        assert [e.payload for e in events] == [{"step": 1}, {"step": 2}]


if __name__ == "__main__":
    with LocalSentinelSet() as sentinels:
        asyncio.run(main(sentinels))
