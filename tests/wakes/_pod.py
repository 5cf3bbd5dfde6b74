"""A wake-consuming pod in its own OS process, for the fleet tests.

    python -m tests.wakes._pod URL NAMESPACE GROUP POD MODE [SCOPES...]

MODE ``fleet`` serves every scope with pending wakes; ``group`` serves the
given scopes. A pod started with ``HANG=1`` takes deliveries and never acks
them (it is SIGKILLed by the test). Handlings are logged to
``testlog:<namespace>`` as ``<pod>|<wake_id>|<scope>``; a handler that dedupes
by wake id records first handlings in ``testlog:<namespace>:seen``.
"""

from __future__ import annotations

import asyncio
import os
import sys

import lash_streams as ls


async def main() -> None:
    url, namespace, group, pod, mode, *scopes = sys.argv[1:]
    hang = os.environ.get("HANG") == "1"
    lease_ms = int(os.environ.get("LEASE_MS", "1000"))
    async with ls.connect(url, namespace=namespace) as bus:
        log = f"testlog:{namespace}"
        if mode == "fleet":
            source = bus.fleet_consumer(group=group, pod=pod, lease_ms=lease_ms, block_ms=100)
        else:
            source = bus.wake_consumer(
                group=group, consumer=pod, scopes=scopes, claim_idle_ms=lease_ms, block_ms=100
            )
        async with source:
            print("ready", flush=True)
            while True:
                message = await source.next(timeout=0.5)
                if message is None:
                    continue
                d = message.delivery
                owner = await bus.redis.get(bus.keys.scope_owner(message.scope_id))
                held = "owner" if (owner or b"").startswith(pod.encode() + b"|") else "no-owner"
                await bus.redis.rpush(log, f"{pod}|{d.wake_id}|{message.scope_id}|{held}")
                if hang:
                    print("holding", flush=True)
                    await asyncio.sleep(3600)
                # The handler dedupes by wake id: a redelivery is recognised.
                await bus.redis.sadd(f"{log}:seen", d.wake_id)
                await message.ack()


if __name__ == "__main__":
    asyncio.run(main())
