"""Issue 12 acceptance: fleet pods as OS processes, handlers slower than the
scope lease, one pod SIGSTOPped past its lease and resumed, one SIGKILLed.

Every wake is handled at least once; no pod crashes; no wake is handled by two
pods at the same time (from the handling log, in server time) among handlings
whose ack was accepted; an ack is refused only to the pod that was paused."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys

import pytest

from ..conformance.fixtures import reg, req, scope, wake
from .test_pods import ROOT, stop, wait_until

pytestmark = pytest.mark.slow

LEASE_MS = 1_000
HANDLE_MS = 1_500  # longer than the lease: the lease must be renewed meanwhile


async def start_slow_pod(url, namespace, pod):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.wakes._slow_pod", url, namespace, "app", pod,
        str(LEASE_MS), str(HANDLE_MS), stdout=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert line.strip() == b"ready"
    return proc


async def test_fleet_pods_survive_pauses_kills_and_long_handlers(real_bus, namespace):
    bus, url = real_bus
    await bus.register_process(reg("p", wake("w")))
    pods = {name: await start_slow_pod(url, namespace, name) for name in ("a", "b", "c")}
    log = f"testlog:{namespace}"
    expected = set()
    try:
        for i in range(16):
            result = await bus.append_event(
                "p", req("w", {"wake_input": str(i)}, target=scope(f"chaos{i % 4}"))
            )
            expected.add(result.wake_delivery.wake_id)
        await asyncio.sleep(0.4)  # handlings under way
        pods["a"].send_signal(signal.SIGSTOP)
        pods["b"].send_signal(signal.SIGKILL)
        await asyncio.sleep(2 * LEASE_MS / 1000 + 0.5)  # "a" paused past its lease
        pods["a"].send_signal(signal.SIGCONT)

        async def handled() -> set[str]:
            rows = [e.decode().split("|") for e in await bus.redis.lrange(log, 0, -1)]
            return {r[1] for r in rows if r[4] == "1"}

        async def all_handled() -> bool:
            return await handled() >= expected

        assert await wait_until(all_handled, timeout=60)
        await asyncio.sleep(HANDLE_MS / 1000 + 0.5)  # handlings in flight finish
        rows = [e.decode().split("|") for e in await bus.redis.lrange(log, 0, -1)]
        accepted = [r for r in rows if r[4] == "1"]
        refused = [r for r in rows if r[4] == "0"]
        assert {r[1] for r in accepted} == expected  # every wake, at least once
        assert {r[0] for r in refused} <= {"a"}  # only the paused pod is ever refused
        by_wake: dict[str, list[tuple[int, int, str]]] = {}
        for pod, wake_id, start, end, _ in accepted:
            by_wake.setdefault(wake_id, []).append((int(start), int(end), pod))
        for spans in by_wake.values():
            spans.sort()
            for (_, end, pod), (start, _, other) in itertools.pairwise(spans):
                assert pod == other or end <= start, f"{pod} and {other} overlap: {spans}"
        assert pods["a"].returncode is None and pods["c"].returncode is None  # no crash
    finally:
        for proc in pods.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGCONT)
        await stop(*pods.values())
        await bus.redis.delete(log)
