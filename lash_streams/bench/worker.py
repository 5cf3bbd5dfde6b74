"""A worker OS process for the recovery phase: starts the given jobs under
leases and runs them for a long time (until it is killed).

    python -m lash_streams.bench.worker URL NAMESPACE LIVENESS TTL_MS PID...
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import lash_streams as ls
from lash_streams.coordination.liveness import owner_identity
from lash_streams.model import AwaitSuccess


async def main(argv: list[str]) -> None:
    url, namespace, liveness, ttl, *pids = argv
    async with ls.connect(url, namespace=namespace) as bus:

        async def runner(record: Any, lease: Any) -> AwaitSuccess:
            await asyncio.sleep(3600)
            return AwaitSuccess(value="never")

        recovery = bus.recovery(
            owner_identity("bench-worker", local=liveness == "local"),
            runner=runner,
            lease_ttl_ms=int(ttl),
            renew_every_ms=max(1, int(ttl) // 3),
        )
        print("ready", flush=True)
        await asyncio.gather(*(recovery.execute(pid) for pid in pids))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
