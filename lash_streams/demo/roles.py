"""One member of the demo fleet, as its own OS process.

    python -m lash_streams.demo.roles worker URL NAMESPACE NAME STEP_S PID[,PID...]
    python -m lash_streams.demo.roles consumer URL NAMESPACE NAME
    python -m lash_streams.demo.roles sweeper URL NAMESPACE NAME STEP_S EVERY_S

Each prints one JSON object per line on stdout (what it did) for the parent to
show, and stops cleanly on SIGTERM: workers and the sweeper record their exit,
consumers hand their unacknowledged wakes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import Any

import msgspec

import lash_streams as ls
from lash_streams.coordination.liveness import owner_identity
from lash_streams.coordination.recovery import Recovery
from lash_streams.demo.jobs import runner

#: Leases short enough for a demo, long enough for a loaded 2-core machine.
LEASE_TTL_MS = 3_000
RENEW_EVERY_MS = 1_000


def report(what: str, **fields: Any) -> None:
    sys.stdout.write(msgspec.json.encode({"what": what, **fields}).decode() + "\n")
    sys.stdout.flush()


def recovery(bus: ls.Bus, name: str, step_s: float) -> Recovery:
    # Local-process liveness: a sweeper on this host and boot can prove a
    # holder dead once its pid is gone (LV-2), with no waiting for the TTL.
    return bus.recovery(
        owner_identity(name),
        runner=runner(bus, name, step_s, report),
        lease_ttl_ms=LEASE_TTL_MS,
        renew_every_ms=RENEW_EVERY_MS,
        fleet_liveness=True,
    )


def stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def worker(bus: ls.Bus, name: str, step_s: float, pids: list[str]) -> None:
    stop = stop_event()
    rec = recovery(bus, name, step_s)
    await rec.register()
    report("ready")

    async def run(pid: str) -> None:
        outcome = await rec.execute(pid)
        report("finished", process=pid, outcome=outcome)

    async def run_all() -> None:
        try:
            await asyncio.gather(*(run(pid) for pid in pids))
        except Exception as err:
            report("error", error=repr(err))

    jobs = asyncio.create_task(run_all())
    await stop.wait()  # an idle worker stays up until the fleet stops
    jobs.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await jobs
    await rec.shutdown()
    report("exited")


async def consumer(bus: ls.Bus, name: str) -> None:
    stop = stop_event()
    async with bus.fleet_consumer(group="sessions", pod=name, block_ms=200) as wakes:
        report("ready")

        async def consume() -> None:
            async for message in wakes:
                wake = message.delivery
                await message.ack(mark_process=True)
                report(
                    "wake",
                    process=wake.process_id,
                    seq=wake.sequence,
                    session=wake.target_session_id,
                    wake_id=wake.wake_id,
                )

        task = asyncio.create_task(consume())
        await asyncio.wait(
            [task, asyncio.ensure_future(stop.wait())], return_when="FIRST_COMPLETED"
        )
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    report("exited")


async def sweeper(bus: ls.Bus, name: str, step_s: float, every_s: float) -> None:
    stop = stop_event()
    rec = recovery(bus, name, step_s)
    await rec.register()
    report("ready")
    await rec.run(every_s, stop=stop)
    await rec.shutdown()
    report("exited")


async def main(argv: list[str]) -> None:
    role, url, namespace, name, *rest = argv
    async with ls.connect(url, namespace=namespace) as bus:
        if role == "worker":
            await worker(bus, name, float(rest[0]), rest[1].split(","))
        elif role == "consumer":
            await consumer(bus, name)
        elif role == "sweeper":
            await sweeper(bus, name, float(rest[0]), float(rest[1]))
        else:
            raise SystemExit(f"unknown role `{role}`")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
