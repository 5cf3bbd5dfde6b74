"""A worker OS process for the recovery fleet test.

    python -m tests.recovery._worker URL NAMESPACE OWNER_ID INCARNATION

It registers its incarnation (fleet liveness) and sweeps every 100 ms; its
runner brackets the work with fenced ``run.started``/``run.finished`` events.
SIGTERM is a graceful stop: the drive hands its rows back, the worker drains
its own started owner-bound rows and records its exit, then prints ``exited``.
A run stopped after losing its lease (a write refused, or a refused renewal
cancelling it) is logged to ``testlog:<namespace>:fenced``.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import lash_streams as ls
from lash_streams import errors
from lash_streams.model import (
    AwaitSuccess,
    LeaseOwnerIdentity,
    LivenessOpaque,
    ProcessEventAppendRequest,
)


async def main() -> None:
    url, namespace, owner_id, incarnation = sys.argv[1:5]
    stem = LeaseOwnerIdentity(
        owner_id=owner_id, incarnation_id=incarnation, liveness=LivenessOpaque()
    )
    async with ls.connect(url, namespace=namespace) as bus:

        async def runner(record, lease):
            me = f"{owner_id}/{incarnation}"
            try:
                await bus.append_event(
                    record.id, ProcessEventAppendRequest.new("run.started", {"by": me}), lease=lease
                )
                await asyncio.sleep(1.0)
                await bus.append_event(
                    record.id,
                    ProcessEventAppendRequest.new("run.finished", {"by": me}),
                    lease=lease,
                )
            except (errors.LeaseFenced, errors.AlreadyTerminal, asyncio.CancelledError):
                # Any way this owner was stopped: its write was refused by the
                # lease (RX-12) or by the terminal the new owner already wrote
                # (EV-9, checked first by the script), or its renewal was refused
                # and the run cancelled before the write (SW-13). Which comes
                # first after a SIGCONT is a race.
                # Shielded: the run may be cancelled again (every 5 s) while a
                # client that was stopped for seconds reconnects to write this.
                await asyncio.shield(
                    bus.redis.rpush(f"testlog:{namespace}:fenced", f"{me}|{record.id}")
                )
                raise
            return AwaitSuccess(value=me)

        recovery = bus.recovery(
            stem, runner=runner, lease_ttl_ms=1500, renew_every_ms=300, fleet_liveness=True
        )
        await recovery.register()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        print("ready", flush=True)
        await recovery.run(every_s=0.1, stop=stop)
        await recovery.shutdown()
        print("exited", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
