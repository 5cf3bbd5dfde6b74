"""Crash and connection-fault behaviour of the append path (RX-2, RX-18).

These tests need a real standalone server: they kill writer processes and
connections.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from lash_streams import errors

from ..conformance.fixtures import S, plain, reg, req

pytestmark = pytest.mark.slow
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_CHILD = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    sys.path.insert(0, {root!r})
    import lash_streams as ls
    from lash_streams.store import worklist
    from tests.conformance.fixtures import S, reg

    async def die(core, pid, updated_at_ms):
        # The writer dies right after the terminal append committed and before
        # its second, cross-slot step (the worklist -> prune index move).
        os.kill(os.getpid(), signal.SIGKILL)

    worklist.index_terminal = die

    async def main():
        bus = await ls.connect({url!r}, namespace={ns!r})
        await bus.register_process(reg("victim"))
        print("registered", flush=True)
        await bus.complete_process("victim", S("done"))

    asyncio.run(main())
    """
)


async def test_writer_killed_between_terminal_append_and_index_step(standalone_bus, namespace):
    """RX-2: the next reader repairs the index; nothing is lost or duplicated."""
    bus, url = standalone_bus
    code = _CHILD.format(root=_ROOT, url=url, ns=namespace)
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    record = await bus.get_process("victim")
    assert record is not None and record.is_terminal()
    # The stale worklist entry is harmless and repaired by the reader.
    raw = await bus.redis.zrange(bus.keys.index_running, 0, -1)
    assert b"victim" in raw
    assert await bus.list_non_terminal() == []
    assert b"victim" not in await bus.redis.zrange(bus.keys.index_running, 0, -1)
    events = await bus.events_after("victim", 0)
    assert len(events) == 1
    report = await bus.prune_terminal_processes(2**63 - 1)
    assert report.pruned_processes == 1 and report.pruned_events == 1


async def _kill_during_append(bus, url, request):
    """Pause writes, send the append, kill its connection, unpause: the
    script never runs and the client sees the connection die mid-call."""
    from redis.asyncio import Redis

    admin = Redis.from_url(url)
    try:
        await admin.execute_command("CLIENT", "PAUSE", 5000, "WRITE")
        task = asyncio.create_task(bus.append_event("p", request))
        await asyncio.sleep(0.2)
        await admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        await admin.execute_command("CLIENT", "UNPAUSE")
        return await asyncio.wait_for(task, 30)
    finally:
        await admin.execute_command("CLIENT", "UNPAUSE")
        await admin.aclose()


async def test_append_without_replay_key_is_never_retried_blindly(standalone_bus):
    """RX-18: the caller learns the write may or may not have happened."""
    bus, url = standalone_bus
    await bus.register_process(reg("p", plain("x")))
    with pytest.raises(errors.WriteOutcomeUnknown, match="may or may not"):
        await _kill_during_append(bus, url, req("x", {"n": 1}))
    assert len(await bus.events_after("p", 0)) == 0
    assert (await bus.append_event("p", req("x", {"n": 2}))).event.sequence == 1


async def test_append_with_replay_key_is_retried_and_lands_once(standalone_bus):
    """RX-18: a keyed append is retried on a dropped connection: exactly one event."""
    bus, url = standalone_bus
    await bus.register_process(reg("p", plain("x")))
    result = await _kill_during_append(bus, url, req("x", {"n": 1}, key="once"))
    assert result.event.sequence == 1
    again = await bus.append_event("p", req("x", {"n": 1}, key="once"))
    assert again.event.sequence == 1
    assert len(await bus.events_after("p", 0)) == 1


async def test_reads_are_retried_across_a_dropped_connection(standalone_bus):
    bus, url = standalone_bus
    from redis.asyncio import Redis

    await bus.register_process(reg("p"))
    admin = Redis.from_url(url)
    try:
        await admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    finally:
        await admin.aclose()
    assert (await bus.get_process("p")) is not None
    await bus.complete_process("p", S(1))
