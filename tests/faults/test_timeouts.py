"""A command that times out on the client while the server holds it, and
that the server runs afterwards: ``DEBUG SLEEP`` blocks the whole server
(the command waits in its socket and runs when the sleep ends, after the
client gave up), ``CLIENT PAUSE WRITE`` holds writes only. The bus runs with
a 0.2 s socket timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from lash_streams import errors
from lash_streams.bus import Bus
from lash_streams.server import LocalServer
from tests.conformance.fixtures import S

from ._tools import (
    BINARIES,
    EVENT,
    History,
    assert_gapless,
    new_namespace,
    open_bus,
    read_log,
    register,
    request,
    server,
)

pytestmark = pytest.mark.slow

SOCKET_TIMEOUT_S = 0.2
HOLD_S = 0.6


@pytest.fixture(scope="module", params=BINARIES)
def debug_server(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    started = server(request.param, debug=True).start()
    yield started
    started.stop()


@pytest.fixture
async def bus(debug_server: LocalServer) -> AsyncIterator[Bus]:
    opened = await open_bus(debug_server.url, new_namespace(), socket_timeout=SOCKET_TIMEOUT_S)
    await register(opened, "p")
    await opened.append_event("p", request("warm"))  # the process state is cached
    yield opened
    await opened.aclose()


class Hold:
    """Hold the server (``DEBUG SLEEP``) or its writes (``CLIENT PAUSE``) for
    ``HOLD_S`` from another connection; ``done()`` waits until it is over."""

    def __init__(self, server: LocalServer, how: str) -> None:
        self.server = server
        self.how = how
        self._task: asyncio.Task[None] | None = None
        self._ends = 0.0

    async def __aenter__(self) -> Hold:
        admin = Redis.from_url(self.server.url, socket_timeout=HOLD_S + 10)

        async def hold() -> None:
            try:
                if self.how == "debug-sleep":
                    await admin.execute_command("DEBUG", "SLEEP", HOLD_S)
                else:
                    await admin.execute_command("CLIENT", "PAUSE", int(HOLD_S * 1000), "WRITE")
            finally:
                await admin.aclose()

        self._ends = time.monotonic() + HOLD_S
        self._task = asyncio.create_task(hold())
        if self.how == "client-pause":
            await self._task
        else:
            await asyncio.sleep(0.05)  # the sleep has begun
        return self

    async def done(self) -> None:
        if self._task is not None:
            await self._task
        await asyncio.sleep(max(0.0, self._ends - time.monotonic()) + 0.1)

    async def __aexit__(self, *exc: object) -> None:
        await self.done()


async def _values(bus: Bus, value: str) -> list[int]:
    return [
        e.sequence
        for e in await bus.events_after("p", 0)
        if isinstance(e.payload, dict) and e.payload.get("v") == value
    ]


async def test_unkeyed_append_run_after_the_client_timed_out_is_unknown_and_lands_once(
    debug_server: LocalServer, bus: Bus
) -> None:
    """DEBUG SLEEP: the append times out on the client and runs when the
    server wakes. The caller gets WriteOutcomeUnknown (never a silent retry);
    exactly one event is stored, the sequence stays gapless."""
    async with Hold(debug_server, "debug-sleep") as hold:
        with pytest.raises(errors.WriteOutcomeUnknown, match="may or may not"):
            await bus.append_event("p", request("v"))
        await hold.done()
    assert await _values(bus, "v") == [2]
    assert_gapless(e.sequence for e in await bus.events_after("p", 0))
    assert (await bus.append_event("p", request("next"))).event.sequence == 3


async def test_unkeyed_batch_run_after_the_client_timed_out_is_all_or_nothing(
    debug_server: LocalServer, bus: Bus
) -> None:
    """DEBUG SLEEP under an unkeyed append_events: WriteOutcomeUnknown, and
    the batch, one atomic step, is stored whole (every item once)."""
    await register(bus, "q")
    items = [("p", request("b1")), ("q", request("b2")), ("p", request("b3"))]
    async with Hold(debug_server, "debug-sleep"):
        with pytest.raises(errors.WriteOutcomeUnknown):
            await bus.append_events(items)
    assert await _values(bus, "b1") == [2] and await _values(bus, "b3") == [3]
    assert [e.payload for e in await bus.events_after("q", 0) if e.event_type == EVENT] == [
        {"v": "b2"}
    ]


@pytest.mark.parametrize("how", ["debug-sleep", "client-pause"])
async def test_keyed_append_and_terminal_are_retried_through_a_timeout_and_land_once(
    debug_server: LocalServer, bus: Bus, how: str
) -> None:
    """A keyed append (and complete_process, keyed by lash) timed out while
    held is retried by the bus until the server answers: the call succeeds,
    the event is stored exactly once, one terminal, sequences gapless."""
    async with Hold(debug_server, how):
        result = await bus.append_event("p", request("k", keyed=True))
    assert result.event.sequence == 2
    assert await _values(bus, "k") == [2]
    async with Hold(debug_server, how):
        record = await bus.complete_process("p", S("done"))
    assert record.is_terminal()
    events = await bus.events_after("p", 0)
    assert_gapless(e.sequence for e in events)
    assert sum(1 for e in events if e.event_type != EVENT) == 1  # one terminal


async def test_unkeyed_append_held_by_client_pause_is_unknown_and_at_most_once(
    debug_server: LocalServer, bus: Bus
) -> None:
    """CLIENT PAUSE WRITE: the append waits in the server, the client times
    out (WriteOutcomeUnknown) and closes the connection; the server then
    drops or runs it (Redis 7.0 and Valkey 9 drop it), so at most one event
    is stored, and the log stays gapless either way."""
    history = History("p", acked={"warm": 1})
    async with Hold(debug_server, "client-pause"):
        with pytest.raises(errors.WriteOutcomeUnknown):
            await bus.append_event("p", request("v"))
        history.unknown.add("v")
    verdict = await read_log(bus, history)
    assert verdict.values.count("v") <= 1
    assert not verdict.lost and not verdict.duplicated and not verdict.unexpected
    assert_gapless(verdict.sequences)


async def test_reads_ride_out_a_server_stall(debug_server: LocalServer, bus: Bus) -> None:
    """A read that times out while the server sleeps is retried and answers."""
    async with Hold(debug_server, "debug-sleep"):
        record = await bus.get_process("p")
    assert record is not None
