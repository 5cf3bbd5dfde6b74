"""A recovery worker process for bench.recovery (its runner takes 30 s)."""

from __future__ import annotations

import asyncio
import sys

import lash_streams as ls
from lash_streams.model import (
    AwaitSuccess,
    LeaseOwnerIdentity,
    LivenessOpaque,
    ProcessEventAppendRequest,
)


async def main() -> None:
    url, namespace, owner_id, incarnation, ttl, renew, every = sys.argv[1:8]
    stem = LeaseOwnerIdentity(
        owner_id=owner_id, incarnation_id=incarnation, liveness=LivenessOpaque()
    )
    async with ls.connect(url, namespace=namespace) as bus:

        async def runner(record, lease):
            me = f"{owner_id}/{incarnation}"
            started = ProcessEventAppendRequest.new("run.started", {"by": me})
            await bus.append_event(record.id, started, lease=lease)
            await asyncio.sleep(30)
            return AwaitSuccess(value=me)

        recovery = bus.recovery(
            stem, runner=runner, lease_ttl_ms=int(ttl), renew_every_ms=int(renew),
            fleet_liveness=True,
        )  # fmt: skip
        await recovery.register()
        print("ready", flush=True)
        await recovery.run(every_s=float(every))


if __name__ == "__main__":
    asyncio.run(main())
