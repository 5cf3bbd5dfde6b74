"""The server SIGKILLed under load and restarted on the same port and
folder, under each persistence setting. The bus that was open across the
crash is used afterwards (it reconnects by itself)."""

from __future__ import annotations

import asyncio

import pytest

from lash_streams import errors
from lash_streams.bus import Bus
from lash_streams.server import LocalServer
from tests.conformance.fixtures import S, owner

from ._tools import (
    BINARIES,
    History,
    aof_tail,
    assert_gapless,
    lose_aof_tail,
    new_namespace,
    open_bus,
    read_log,
    register,
    request,
    running,
)

pytestmark = pytest.mark.slow


async def _append_until_error(
    bus: Bus, history: History, prefix: str, keyed: bool, busy: asyncio.Event
) -> None:
    """Append unique values one after another until a call fails; ``busy``
    is set once 30 appends were acknowledged."""
    n = 0
    while True:
        value = f"{prefix}-{n}"
        n += 1
        try:
            result = await bus.append_event(history.pid, request(value, keyed=keyed))
        except (errors.WriteOutcomeUnknown, errors.ConnectionFailed) as err:
            history.unknown.add(value)
            history.errors.append(err)
            return
        except errors.NotWritten as err:
            history.refused.add(value)
            history.errors.append(err)
            return
        history.acked[value] = result.event.sequence
        if len(history.acked) >= 30:
            busy.set()


async def _crash_under_load(
    bus: Bus, server: LocalServer, history: History, *, keyed: bool, writers: int = 3
) -> None:
    """Writers append until the server is SIGKILLed under them; every writer
    ends with a typed error, none hangs."""
    busy = asyncio.Event()
    tasks = [
        asyncio.create_task(_append_until_error(bus, history, f"w{i}", keyed, busy))
        for i in range(writers)
    ]
    await asyncio.wait_for(busy.wait(), 30)
    await asyncio.to_thread(server.kill)
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert len(history.errors) == writers


@pytest.mark.parametrize("binary", BINARIES)
async def test_sigkill_under_appendfsync_always_keeps_every_acknowledged_append(
    binary: str,
) -> None:
    """appendfsync always + SIGKILL mid-load: every acknowledged append is
    present after the restart, none twice, none unexpected; sequences are
    gapless; the same bus carries on at the next sequence."""
    async with running(binary, persistence="aof", appendfsync="always") as server:
        bus = await open_bus(server.url, new_namespace())
        try:
            await register(bus, "p")
            history = History("p")
            await _crash_under_load(bus, server, history, keyed=False)
            await server.arestart()
            verdict = await read_log(bus, history)
            assert not verdict.lost and not verdict.duplicated and not verdict.unexpected
            assert_gapless(verdict.sequences)
            after = await bus.append_event("p", request("after"))
            assert after.event.sequence == len(verdict.sequences) + 1
        finally:
            await bus.aclose()


@pytest.mark.parametrize("kept", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("binary", BINARIES)
async def test_sigkill_under_everysec_loses_at_most_a_suffix(binary: str, kept: float) -> None:
    """appendfsync everysec + SIGKILL, with the AOF tail written since the
    last "fsync" cut off (what an OS crash loses; SIGKILL alone keeps the
    page cache): what survives is a prefix of the acknowledged appends, each
    once, sequences gapless; later appends continue after it; re-sending
    every keyed append lands each lost one exactly once and replays the
    others with their old sequence."""
    async with running(binary, persistence="aof", appendfsync="everysec") as server:
        bus = await open_bus(server.url, new_namespace())
        try:
            await register(bus, "p")
            history = History("p")
            first = await bus.append_event("p", request("synced", keyed=True))
            history.acked["synced"] = first.event.sequence
            synced_size = aof_tail(server.data_dir).stat().st_size
            await _crash_under_load(bus, server, history, keyed=True)
            written = aof_tail(server.data_dir).stat().st_size - synced_size
            # Keep that share of the unsynced part: the cut falls mid-command.
            lose_aof_tail(server.data_dir, written - int(written * kept) + 3)
            await server.arestart()

            verdict = await read_log(bus, history)
            assert not verdict.duplicated and not verdict.unexpected
            assert_gapless(verdict.sequences)
            in_order = sorted(history.acked, key=history.acked.__getitem__)
            survived = in_order[: len([v for v in verdict.values if v in history.acked])]
            assert [v for v in verdict.values if v in history.acked] == survived, (
                "the survivors are not a prefix of the acknowledged appends"
            )
            assert "synced" in verdict.values
            assert verdict.lost, "the cut lost nothing: the test did not exercise a loss"

            after = await bus.append_event("p", request("after"))
            assert after.event.sequence == len(verdict.sequences) + 1
            for value in in_order:  # the client's retries of its keyed appends
                again = await bus.append_event("p", request(value, keyed=True))
                if value in survived:
                    assert again.event.sequence == history.acked[value]
            final = await read_log(bus, history)
            assert_gapless(final.sequences)
            assert not final.duplicated and not final.lost
        finally:
            await bus.aclose()


@pytest.mark.parametrize("binary", BINARIES)
async def test_sigkill_without_persistence_forgets_everything_with_typed_errors(
    binary: str,
) -> None:
    """No persistence + SIGKILL: everything is gone after the restart; the
    open bus answers with typed errors (UnknownProcess), never a raw
    redis-py error or a hang, and works again for new processes (its scripts
    reloaded)."""
    async with running(binary, persistence="none") as server:
        bus = await open_bus(server.url, new_namespace())
        try:
            await register(bus, "p")
            history = History("p")
            await _crash_under_load(bus, server, history, keyed=False)
            await server.arestart()

            assert await bus.get_process("p") is None
            with pytest.raises(errors.UnknownProcess):
                await bus.append_event("p", request("late"))
            with pytest.raises(errors.UnknownProcess):
                await bus.append_events([("p", request("late-batch", keyed=True))])
            with pytest.raises(errors.UnknownProcess):
                await bus.events_after("p", 0)
            with pytest.raises(errors.UnknownProcess):
                await bus.complete_process("p", S("done"))
            with pytest.raises(errors.UnknownProcess):
                await bus.claim_process_lease("p", owner("w"), 10_000)
            with pytest.raises(errors.UnknownProcess):
                await bus.await_terminal("p", timeout=1)

            await register(bus, "p")
            again = await bus.append_event("p", request("fresh"))
            assert again.event.sequence == 1
            assert [e.sequence for e in await bus.events_after("p", 0)] == [1]
        finally:
            await bus.aclose()
