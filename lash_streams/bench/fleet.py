"""Phases that need other OS processes: producers appending side by side, and
a worker SIGKILLed mid-run to time recovery."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from typing import Any

import lash_streams as ls
from lash_streams.bench.workload import drop_namespace, registration
from lash_streams.coordination.liveness import owner_identity
from lash_streams.model import (
    AwaitSuccess,
    RecoveryDisposition,
    StatusAbandoned,
)
from lash_streams.server.proc import _child_setup


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        preexec_fn=_child_setup(os.getpid()),
    )


async def _ready(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    if line.strip() != b"ready":
        raise RuntimeError(f"a bench child failed to start (exit {await proc.wait()})")


async def _started(bus: ls.Bus, *pids: str) -> bool:
    records = [await bus.get_process(pid) for pid in pids]
    return all(r is not None and r.first_started is not None for r in records)


async def producers(
    url: str, namespace: str, mode: str, count: int, processes: int, size: int, duration_s: float
) -> dict[str, Any]:
    """``count`` producer processes appending side by side; aggregate rate."""
    run = uuid.uuid4().hex[:6]
    procs = [
        await _spawn(
            "-m",
            "lash_streams.bench.producer",
            url,
            namespace,
            mode,
            f"p{run}{i}",
            str(processes),
            str(size),
            str(duration_s),
        )
        for i in range(count)
    ]
    try:
        for proc in procs:
            await _ready(proc)
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        results = []
        for proc in procs:
            assert proc.stdout is not None
            results.append(
                json.loads(await asyncio.wait_for(proc.stdout.readline(), duration_s + 60))
            )
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
    total = sum(r["count"] for r in results)
    elapsed = max(r["elapsed_s"] for r in results)
    return {"producers": count, "count": total, "elapsed_s": elapsed, "per_s": total / elapsed}


async def recovery_after_kill(
    url: str, namespace: str, ttl_ms: int, *, evidence: bool
) -> dict[str, Any]:
    """A worker OS process runs an owner-bound and a rerunnable job and is
    SIGKILLed; an in-process recovery drive (sweeping every 100 ms) takes over.
    With ``evidence`` both sides use local-process liveness (LV-2: the dead pid
    is proof); without it the worker is opaque and only the lease lapse frees
    the rerunnable job, while the owner-bound one is never abandoned."""
    ns = f"{namespace}-r{uuid.uuid4().hex[:4]}"
    async with ls.connect(url, namespace=ns) as bus:
        ob, rr = "job-ob", "job-rr"
        await bus.register_process(registration(ob, disposition=RecoveryDisposition.OWNER_BOUND))
        await bus.register_process(registration(rr, disposition=RecoveryDisposition.RERUNNABLE))
        liveness = "local" if evidence else "opaque"
        worker = await _spawn(
            "-m", "lash_streams.bench.worker", url, ns, liveness, str(ttl_ms), ob, rr
        )
        try:
            await _ready(worker)
            async with asyncio.timeout(30):
                while not await _started(bus, ob, rr):  # noqa: ASYNC110 - polling Redis
                    await asyncio.sleep(0.01)
            worker.send_signal(signal.SIGKILL)
            await worker.wait()
            killed = time.perf_counter()
            stem = owner_identity("bench-sweeper", local=evidence)

            async def runner(record: Any, lease: Any) -> AwaitSuccess:
                return AwaitSuccess(value="re-run")

            recovery = bus.recovery(
                stem, runner=runner, lease_ttl_ms=ttl_ms, renew_every_ms=max(1, ttl_ms // 3)
            )
            stop = asyncio.Event()
            drive = asyncio.create_task(recovery.run(0.1, stop=stop))
            out: dict[str, Any] = {
                "evidence": "LV-2 (pid gone)" if evidence else "none (opaque holder)",
                "lease_ttl_ms": ttl_ms,
            }
            deadline = killed + max(10.0, ttl_ms / 1000 * 4)
            try:
                while time.perf_counter() < deadline and len(out) < 4:
                    rr_rec, ob_rec = await bus.get_process(rr), await bus.get_process(ob)
                    if "rerun_ms" not in out and rr_rec is not None and rr_rec.is_terminal():
                        out["rerun_ms"] = (time.perf_counter() - killed) * 1000
                    if (
                        "abandoned_ms" not in out
                        and ob_rec is not None
                        and isinstance(ob_rec.status, StatusAbandoned)
                    ):
                        out["abandoned_ms"] = (time.perf_counter() - killed) * 1000
                    if not evidence and "rerun_ms" in out:
                        break
                    await asyncio.sleep(0.005)
            finally:
                stop.set()
                await drive
            out.setdefault("abandoned_ms", None)
            out.setdefault("rerun_ms", None)
            return out
        finally:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
            await drop_namespace(bus)  # its own namespace: the run's drop misses it
