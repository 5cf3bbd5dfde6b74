"""Consumers in separate OS processes, one SIGKILLed while holding deliveries."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from ..conformance.fixtures import reg, req, scope, wake

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


async def start_pod(url, namespace, group, pod, mode, *scopes, hang=False, lease_ms=600):
    env = {**os.environ, "HANG": "1" if hang else "0", "LEASE_MS": str(lease_ms)}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.wakes._pod", url, namespace, group, pod, mode, *scopes,
        stdout=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert line.strip() == b"ready"
    return proc


async def wait_until(check, timeout=20.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False


async def stop(*procs):
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


@pytest.mark.parametrize("mode", ["group", "fleet"])
async def test_sigkilled_pod_strands_nothing(real_bus, namespace, mode):
    """Every wake handled at least once, none lost; the dead pod's deliveries
    move after the idle time; a handler deduping by wake id sees each once."""
    bus, url = real_bus
    scopes = [scope(f"s{i}") for i in range(3)]
    scope_ids = [s.id() for s in scopes]
    await bus.register_process(reg("p", wake("w")))
    hanger = await start_pod(url, namespace, "app", "hanger", mode, *scope_ids, hang=True)
    # The hanging pod takes the first wake and holds it.
    first = await bus.append_event("p", req("w", {"wake_input": "0"}, target=scopes[0]))
    log = f"testlog:{namespace}"
    assert await wait_until(lambda: _has(bus, log, "hanger|"))
    hanger.send_signal(signal.SIGKILL)
    await hanger.wait()
    workers = [
        await start_pod(url, namespace, "app", f"worker{i}", mode, *scope_ids) for i in range(2)
    ]
    expected = {first.wake_delivery.wake_id}
    for i in range(1, 30):
        result = await bus.append_event("p", req("w", {"wake_input": str(i)}, target=scopes[i % 3]))
        expected.add(result.wake_delivery.wake_id)

    async def all_seen() -> bool:
        return await bus.redis.scard(f"{log}:seen") >= len(expected)

    try:
        assert await wait_until(all_seen, timeout=30)
        seen = {m.decode() for m in await bus.redis.smembers(f"{log}:seen")}
        assert seen == expected
        handled = [e.decode().split("|") for e in await bus.redis.lrange(log, 0, -1)]
        by_worker = [h for h in handled if h[0] != "hanger"]
        assert first.wake_delivery.wake_id in {h[1] for h in by_worker}  # moved off the dead pod
        assert {h[1] for h in by_worker} == expected
    finally:
        await stop(*workers)
        await bus.redis.delete(log, f"{log}:seen")


async def _has(bus, log, prefix) -> bool:
    return any(e.decode().startswith(prefix) for e in await bus.redis.lrange(log, 0, -1))


async def test_fleet_never_serves_one_scope_from_two_pods(real_bus, namespace):
    bus, url = real_bus
    await bus.register_process(reg("p", wake("w")))
    pods = [await start_pod(url, namespace, "app", f"pod{i}", "fleet") for i in range(3)]
    scopes = [scope(f"x{i}") for i in range(4)]
    wake_ids = set()
    for i in range(40):
        r = await bus.append_event("p", req("w", {"wake_input": str(i)}, target=scopes[i % 4]))
        wake_ids.add(r.wake_delivery.wake_id)
    log = f"testlog:{namespace}"
    try:
        assert await wait_until(lambda: _count(bus, f"{log}:seen", len(wake_ids)), timeout=30)
        handled = [e.decode().split("|") for e in await bus.redis.lrange(log, 0, -1)]
        assert len(handled) == len(wake_ids)  # nobody crashed: exactly once
        # Every handling happened while that pod held the scope's lease.
        assert all(h[3] == "owner" for h in handled)
        for s in scopes:
            rows = [h for h in handled if h[2] == s.id()]
            assert len(rows) == 10
    finally:
        await stop(*pods)
        await bus.redis.delete(log, f"{log}:seen")


async def _count(bus, key, n) -> bool:
    return await bus.redis.scard(key) >= n
