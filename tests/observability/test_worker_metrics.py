"""Issue 16's worker gauges and counters: jobs by kind and outcome, retries,
busy slots, and the namespace's running processes and oldest running age
(one worker samples per period; every worker reads the sample)."""

from __future__ import annotations

import asyncio
from typing import Any

import lash_streams as ls
from lash_streams.coordination import gauges


async def test_jobs_retries_and_busy_slots_are_counted(bus, observed):
    calls = 0

    async def flaky(job: ls.Job[Any]) -> int:
        nonlocal calls
        calls += 1
        if job.attempt == 1:
            raise TimeoutError("slow tool")
        return job.attempt

    async def bad(job: ls.Job[Any]) -> None:
        raise ls.JobFailed("refused")

    retry = ls.JobRetry(attempts=2, backoff_s=0.01)
    worker = bus.worker(ls.owner_identity("w-metrics"), {"flaky": flaky, "bad": bad}, retry=retry)
    ok = await bus.submit("flaky")
    no = await bus.submit("bad")
    assert (await worker.execute(ok.id)).status == "completed"
    assert (await worker.execute(no.id)).status == "failed"
    assert observed.value("lash_streams_jobs_total", kind="flaky", outcome="completed") == 1
    assert observed.value("lash_streams_jobs_total", kind="bad", outcome="failed") == 1
    assert observed.value("lash_streams_job_retries_total", kind="flaky") == 1
    assert observed.value("lash_streams_worker_busy_slots", worker="w-metrics") == 0


async def test_running_processes_and_the_oldest_age(bus, observed):
    for i in range(3):
        await bus.submit("slow", id=f"j{i}")
    await asyncio.sleep(0.2)
    await bus.complete_process("j0", ls.AwaitSuccess(value=None))
    running, oldest_s = await gauges.sample(bus, every_s=30)
    assert running == 2 and oldest_s >= 0.19
    # Another worker this period reads the same sample (no second scan).
    await bus.submit("slow", id="j3")
    assert (await gauges.sample(bus, every_s=30))[0] == 2
    stop = asyncio.Event()
    task = asyncio.create_task(gauges.publish(bus, stop, every_s=30))
    await asyncio.sleep(0.1)
    stop.set()
    await task
    assert observed.value("lash_streams_running_processes") == 2
    assert observed.value("lash_streams_oldest_running_age_seconds") >= 0.19
    ttl = await bus.redis.pttl(gauges.stats_key(bus))
    assert 0 < ttl <= 90_000  # never a key without a TTL


async def test_an_empty_namespace_samples_zero(bus, observed):
    assert await gauges.sample(bus, every_s=30) == (0, 0.0)
