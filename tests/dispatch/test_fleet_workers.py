"""Issue 16's fleet acceptance: 4 worker OS processes with ``concurrency=2``,
40 jobs registered by another process, one worker SIGKILLed mid-work. Every
job runs to one terminal, each starts from dispatch (within the backlog's
wait, well under a sweep period), no worker runs more than 2 at once, and
the flaky jobs are retried after their backoff."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
from collections import defaultdict

import pytest

import lash_streams as ls

from ._job_worker import BACKOFF_S

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JOBS = 40


async def start_worker(url: str, namespace: str, name: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.dispatch._job_worker", url, namespace, name,
        stdout=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"ready"
    return proc


@pytest.mark.parametrize("standalone_bus", ["valkey"], indirect=True)
async def test_four_workers_forty_jobs_one_killed(
    standalone_bus: tuple[ls.Bus, str], namespace: str
) -> None:
    bus, url = standalone_bus
    names = [f"w{i}" for i in range(4)]
    procs = [await start_worker(url, namespace, name) for name in names]
    try:
        records = [
            await bus.submit("tool", {"n": i, "flaky": i % 8 == 0}, id=f"job-{i:02d}")
            for i in range(JOBS)
        ]
        # SIGKILL w0 while it runs jobs.
        attempts_key = f"testlog:{namespace}:attempts"
        for _ in range(200):
            log = [entry.decode() for entry in await bus.redis.lrange(attempts_key, 0, -1)]
            if any(line.split("|")[1] == "w0" for line in log):
                break
            await asyncio.sleep(0.02)
        procs[0].send_signal(signal.SIGKILL)
        await procs[0].wait()
        outputs = {r.id: await bus.await_terminal(r.id, timeout=60) for r in records}
    finally:
        for proc in procs[1:]:
            proc.send_signal(signal.SIGTERM)
        for proc in procs[1:]:
            await asyncio.wait_for(proc.wait(), 30)

    # One terminal each, a success (the killed worker's jobs ran again elsewhere).
    for record in records:
        events = await bus.events_after(record.id, 0)
        terminals = [e for e in events if e.event_type.startswith("process.")]
        assert [e.event_type for e in terminals] == ["process.completed"], record.id
        assert isinstance(outputs[record.id], ls.AwaitSuccess)
    # No worker ever ran more than its concurrency.
    peaks = await bus.redis.hgetall(f"testlog:{namespace}:peak")
    assert peaks and all(1 <= int(v) <= 2 for v in peaks.values()), peaks
    # Started from dispatch: the first attempt of each job came within the
    # backlog's wait of its registration (40 jobs x 0.3 s over 6-8 slots),
    # not a sweep's period plus a lease TTL.
    lines = [entry.decode().split("|") for entry in await bus.redis.lrange(attempts_key, 0, -1)]
    first: dict[str, int] = {}
    by_job: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for pid, _worker, attempt, at in lines:
        first.setdefault(pid, int(at))
        by_job[pid].append((int(attempt), int(at)))
    created = {r.id: r.created_at_ms for r in records}
    waits = sorted(first[pid] - created[pid] for pid in created)
    assert waits[-1] < 4_000, waits
    # Retries observed, after their backoff.
    for i in range(0, JOBS, 8):
        tries = by_job[f"job-{i:02d}"]
        retried = [(a, b) for a, b in itertools.pairwise(tries) if b[0] == a[0] + 1]
        assert retried, tries
        for (_, at1), (_, at2) in retried:
            assert at2 - at1 >= BACKOFF_S * 1000 - 5, tries
    await bus.redis.delete(attempts_key, f"testlog:{namespace}:peak")
