"""A lease holder in its own PID namespace (run under ``unshare --pid``).

    python -m tests.recovery._ns_holder URL NAMESPACE PROCESS_ID

It starts the owner-bound row and holds its lease with its local-process
identity, prints ``ready`` and sleeps until killed: a live holder whose pid
means another process outside its namespace.
"""

from __future__ import annotations

import asyncio
import sys

import lash_streams as ls
from lash_streams.coordination.liveness import owner_identity
from lash_streams.model import LeaseAcquired, ProcessStarted


async def main() -> None:
    url, namespace, pid = sys.argv[1:4]
    me = owner_identity("ns-holder")
    async with ls.connect(url, namespace=namespace) as bus:
        now = await bus.server_time_ms()
        await bus.record_first_started(pid, ProcessStarted(owner=me, started_at_ms=now))
        outcome = await bus.claim_process_lease(pid, me, 600_000)
        assert isinstance(outcome, LeaseAcquired), outcome
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
