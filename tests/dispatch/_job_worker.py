"""A job worker OS process for the fleet acceptance test (issue 16).

    python -m tests.dispatch._job_worker URL NAMESPACE NAME

A ``bus.worker`` with ``concurrency=2`` serving the job kind ``tool``. Its
handler logs each attempt (``testlog:<ns>:attempts``: ``pid|worker|attempt|
server ms``) and the most jobs it ran at once (``testlog:<ns>:peak``), and
raises on the first attempt of a job whose payload says ``flaky``. Prints
``ready`` once it serves; SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import lash_streams as ls

BACKOFF_S = 0.3


async def main() -> None:
    url, namespace, name = sys.argv[1:4]
    async with ls.connect(url, namespace=namespace) as bus:
        running = 0

        async def tool(job: ls.Job[dict[str, Any]]) -> str:
            nonlocal running
            running += 1
            try:
                now = await bus.server_time_ms()
                await bus.redis.rpush(
                    f"testlog:{namespace}:attempts", f"{job.id}|{name}|{job.attempt}|{now}"
                )
                peak = int(await bus.redis.hget(f"testlog:{namespace}:peak", name) or 0)
                if running > peak:
                    await bus.redis.hset(f"testlog:{namespace}:peak", name, running)
                if job.payload.get("flaky") and job.attempt == 1:
                    raise ConnectionError("the tool's first call fails")
                await asyncio.sleep(0.3)
                return name
            finally:
                running -= 1

        retry = ls.JobRetry(attempts=3, backoff_s=BACKOFF_S, multiplier=2.0, jitter=0.0)
        worker = bus.worker(
            ls.owner_identity(name),
            {"tool": tool},
            concurrency=2,
            retry=retry,
            lease_ttl_ms=1_500,
            renew_every_ms=300,
            sweep_every_s=1.0,
        )
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        serving = asyncio.create_task(worker.run(stop=stop))
        await asyncio.sleep(0.3)
        print("ready", flush=True)
        await serving


if __name__ == "__main__":
    asyncio.run(main())
