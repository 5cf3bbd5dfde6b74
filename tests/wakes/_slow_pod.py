"""A fleet pod in its own OS process whose handler is slower than its lease
(an LLM turn), for the fleet chaos test.

    python -m tests.wakes._slow_pod URL NAMESPACE GROUP POD LEASE_MS HANDLE_MS

Each handling is logged to ``testlog:<namespace>`` as
``<pod>|<wake_id>|<start server ms>|<end server ms>|<ack 1/0>``; the end is
taken after the ack, so an interval covers the whole handling.
"""

from __future__ import annotations

import asyncio
import sys

import lash_streams as ls
from lash_streams.coordination.wakes import WakeMessage


async def main() -> None:
    url, namespace, group, pod, lease_ms, handle_ms = sys.argv[1:]
    async with ls.connect(url, namespace=namespace) as bus:
        log = f"testlog:{namespace}"
        async with bus.fleet_consumer(
            group=group, pod=pod, lease_ms=int(lease_ms), block_ms=100, max_scopes=2
        ) as fleet:
            print("ready", flush=True)

            async def handle(message: WakeMessage) -> None:
                start = await bus.server_time_ms()
                await asyncio.sleep(int(handle_ms) / 1000)
                acked = await message.ack()
                end = await bus.server_time_ms()
                entry = f"{pod}|{message.delivery.wake_id}|{start}|{end}|{int(acked)}"
                await bus.redis.rpush(log, entry)

            running: set[asyncio.Task[None]] = set()
            while True:
                message = await fleet.next(timeout=0.5)
                if message is not None:
                    task = asyncio.create_task(handle(message))
                    running.add(task)
                    task.add_done_callback(running.discard)


if __name__ == "__main__":
    asyncio.run(main())
