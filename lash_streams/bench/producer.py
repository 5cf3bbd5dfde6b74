"""One producer OS process for the producer-scaling phase.

    python -m lash_streams.bench.producer URL NAMESPACE MODE NAME PROCESSES PAYLOAD DURATION

MODE is ``ours`` (``append_event`` over PROCESSES processes of its own) or
``raw`` (redis-py ``XADD`` to a stream of its own). It prints ``ready``, waits
for a line on stdin (so every producer starts together), runs for DURATION
seconds and prints ``{"count": ..., "elapsed_s": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import sys

import lash_streams as ls
from lash_streams.bench.measure import Rate, for_duration, payload
from lash_streams.bench.workload import register_many
from lash_streams.model import ProcessEventAppendRequest


async def main(argv: list[str]) -> None:
    url, namespace, mode, name, processes, size, duration = argv
    n, body = int(processes), payload(int(size))
    async with ls.connect(url, namespace=namespace) as bus:
        if mode == "ours":
            pids = [f"{name}-{i}" for i in range(n)]
            await register_many(bus, pids)
            request = ProcessEventAppendRequest(event_type="progress", payload=body)

            async def step(i: int) -> int:
                await bus.append_event(pids[i % n], request)
                return 1

        else:
            stream = f"{namespace}:bench-raw:producer:{name}"
            encoded = json.dumps(body)

            async def step(i: int) -> int:
                await bus.redis.xadd(stream, {"e": encoded})
                return 1

        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        rate: Rate = await for_duration(float(duration), step)
        print(json.dumps({"count": rate.count, "elapsed_s": rate.elapsed_s}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
