"""Connections between the bus and the server cut, stalled, delayed or
refused by a ``FaultProxy``. The cut tests sweep the cut point across every
part of the exchange (the reads before a write, the pipelined script call,
its reply), one fresh process pair per cut point."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest

import lash_streams as ls
from lash_streams import errors
from lash_streams.bus import Bus
from lash_streams.faults import FaultProxy
from lash_streams.server import LocalServer

from ._tools import (
    BINARIES,
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

SOCKET_TIMEOUT_S = 0.3
#: Cut points per sweep (spread evenly over the exchange's bytes).
CUTS = 24


@pytest.fixture(scope="module", params=BINARIES)
def upstream(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    started = server(request.param).start()
    yield started
    started.stop()


@pytest.fixture
async def proxy(upstream: LocalServer) -> AsyncIterator[FaultProxy]:
    async with FaultProxy("127.0.0.1", upstream.port) as started:
        yield started


async def _bus(proxy: FaultProxy, upstream: LocalServer, **retry: float) -> Bus:
    policy = ls.RetryPolicy(**retry) if retry else ls.RetryPolicy(attempts=5, max_delay_s=3)  # type: ignore[arg-type]
    return await open_bus(
        proxy.url(upstream.url), new_namespace(), socket_timeout=SOCKET_TIMEOUT_S, retry=policy
    )


@pytest.fixture
async def bus(proxy: FaultProxy, upstream: LocalServer) -> AsyncIterator[Bus]:
    opened = await _bus(proxy, upstream)
    yield opened
    await opened.aclose()


def _batch(n: int, keyed: bool) -> list[tuple[str, ls.ProcessEventAppendRequest]]:
    """Four items over two processes, interleaved."""
    return [
        (f"{pid}{n}", request(f"{pid}{n}-{i}", keyed=keyed)) for i in range(2) for pid in ("p", "q")
    ]


async def _exchange_bytes(proxy: FaultProxy, bus: Bus, direction: str, keyed: bool) -> int:
    """Bytes a batch append forwards in ``direction`` with no fault."""
    for pid in ("p0", "q0"):
        await register(bus, pid)
    before = proxy.bytes_up if direction == "up" else proxy.bytes_down
    await bus.append_events(_batch(0, keyed))
    after = proxy.bytes_up if direction == "up" else proxy.bytes_down
    return after - before


def _value(req: ls.ProcessEventAppendRequest) -> str:
    assert isinstance(req.payload, dict)
    return str(req.payload["v"])


def _acked(
    items: list[tuple[str, ls.ProcessEventAppendRequest]],
    results: list[ls.ProcessEventAppendResult],
) -> dict[str, int]:
    return {_value(req): r.event.sequence for (_, req), r in zip(items, results, strict=True)}


def _cut_points(total: int) -> list[int]:
    step = max(1, total // CUTS)
    return sorted({*range(0, total, step), total - 1})


async def _check_processes(bus: Bus, n: int, acked: dict[str, int], unknown: set[str]) -> None:
    for pid in (f"p{n}", f"q{n}"):
        history = History(pid, {v: s for v, s in acked.items() if v.startswith(pid + "-")})
        history.unknown = {v for v in unknown if v.startswith(pid + "-")}
        verdict = await read_log(bus, history)
        assert not verdict.lost and not verdict.duplicated and not verdict.unexpected, (n, verdict)
        assert_gapless(verdict.sequences)


@pytest.mark.parametrize("direction", ["up", "down"])
async def test_keyed_batch_cut_anywhere_lands_every_item_exactly_once(
    proxy: FaultProxy, bus: Bus, direction: str
) -> None:
    """append_events with replay keys, the connection cut at every point of
    the exchange ("up": mid-pipeline, the server gets part of the request;
    "down": mid-reply, the script ran): the call succeeds after its retry,
    each item is stored exactly once with the sequence it returned, and a
    second send replays every item."""
    total = await _exchange_bytes(proxy, bus, direction, keyed=True)
    for n, cut in enumerate(_cut_points(total), start=1):
        for pid in (f"p{n}", f"q{n}"):
            await register(bus, pid)
        items = _batch(n, keyed=True)
        proxy.cut_after(cut, direction=direction)
        results = await bus.append_events(items)
        assert not proxy.armed(direction), f"cut {cut} of {total} did not fire"
        acked = _acked(items, results)
        await _check_processes(bus, n, acked, set())
        again = await bus.append_events(items)
        assert [r.event.sequence for r in again] == [r.event.sequence for r in results]


@pytest.mark.parametrize("direction", ["up", "down"])
async def test_unkeyed_batch_cut_anywhere_is_all_or_nothing(
    proxy: FaultProxy, bus: Bus, direction: str
) -> None:
    """append_events without replay keys, cut at every point: the call
    succeeds or raises WriteOutcomeUnknown (never a raw redis-py error, never
    a blind resend); on one server the batch is one atomic step, so either
    every item is stored once or none is."""
    total = await _exchange_bytes(proxy, bus, direction, keyed=False)
    outcomes = {"ok": 0, "unknown-stored": 0, "unknown-absent": 0}
    for n, cut in enumerate(_cut_points(total), start=1):
        for pid in (f"p{n}", f"q{n}"):
            await register(bus, pid)
        items = _batch(n, keyed=False)
        values = {_value(req) for _, req in items}
        proxy.cut_after(cut, direction=direction)
        try:
            results = await bus.append_events(items)
        except errors.WriteOutcomeUnknown:
            await _check_processes(bus, n, {}, values)
            stored = [e for pid in (f"p{n}", f"q{n}") for e in await bus.events_after(pid, 0)]
            assert len(stored) in (0, len(items)), f"cut {cut}: a partial batch {stored}"
            outcomes["unknown-stored" if stored else "unknown-absent"] += 1
        else:
            acked = _acked(items, results)
            await _check_processes(bus, n, acked, set())
            outcomes["ok"] += 1
    assert outcomes["unknown-stored" if direction == "down" else "unknown-absent"], outcomes


async def test_stall_longer_than_the_socket_timeout_is_typed_and_the_bus_recovers(
    proxy: FaultProxy, upstream: LocalServer
) -> None:
    """A stalled link (no bytes either way): an unkeyed append sent on an
    open connection ends in WriteOutcomeUnknown; reads and keyed appends in
    ConnectionFailed; an unkeyed append that needs a new connection (its
    handshake stalls) in NotWritten, nothing having been sent; health() says
    not ok; no call hangs. After the stall the same bus works; the held
    keyed append and its retry land once, the held unkeyed one at most
    once."""
    bus = await _bus(proxy, upstream, attempts=2, max_delay_s=0.5)
    try:
        await register(bus, "p")
        await bus.append_event("p", request("before"))
        proxy.stall()
        started = time.monotonic()
        with pytest.raises(errors.WriteOutcomeUnknown):
            await bus.append_event("p", request("held"))
        with pytest.raises(errors.ConnectionFailed):
            await bus.get_process("p")
        with pytest.raises(errors.ConnectionFailed):
            await bus.append_event("p", request("held-keyed", keyed=True))
        with pytest.raises(errors.NotWritten):
            await bus.append_event("p", request("never-sent"))
        assert not (await bus.health(timeout=0.3)).ok
        assert time.monotonic() - started < 10
        proxy.stall(False)

        assert (await bus.get_process("p")) is not None
        retried = await bus.append_event("p", request("held-keyed", keyed=True))
        history = History("p", {"before": 1, "held-keyed": retried.event.sequence}, {"held"})
        verdict = await read_log(bus, history)
        assert not verdict.lost and not verdict.duplicated and not verdict.unexpected
        assert_gapless(verdict.sequences)
        assert (await bus.health()).ok
    finally:
        await bus.aclose()


async def test_added_delay_keeps_concurrent_appends_gapless(proxy: FaultProxy, bus: Bus) -> None:
    """A slow link (50 ms per chunk each way, under the socket timeout):
    concurrent appends all succeed, slower, each once, sequences gapless."""
    await register(bus, "p")
    proxy.delay_s = 0.05
    started = time.monotonic()
    values = [f"d{i}" for i in range(16)]
    results = await asyncio.gather(
        *(bus.append_event("p", request(v, keyed=i % 2 == 0)) for i, v in enumerate(values))
    )
    assert time.monotonic() - started >= 0.1
    proxy.delay_s = 0
    history = History("p", {v: r.event.sequence for v, r in zip(values, results, strict=True)})
    verdict = await read_log(bus, history)
    assert not verdict.lost and not verdict.duplicated and not verdict.unexpected
    assert_gapless(verdict.sequences)
    assert sorted(history.acked.values()) == verdict.sequences


async def test_refused_connections_are_typed_and_nothing_is_written(
    proxy: FaultProxy, bus: Bus
) -> None:
    """Every connection cut and new ones accepted then closed at once (a
    load balancer in front of a dead server, a server at maxclients): reads
    end in ConnectionFailed; an unkeyed append in NotWritten, since the
    connection failed before the command was sent (safe to retry, not
    WriteOutcomeUnknown); nothing lands; once connections are accepted again
    the bus works, the log gapless."""
    await register(bus, "p")
    await bus.append_event("p", request("before"))
    proxy.cut()
    proxy.refuse()
    with pytest.raises(errors.ConnectionFailed):
        await bus.get_process("p")
    with pytest.raises(errors.NotWritten):
        await bus.append_event("p", request("refused"))
    with pytest.raises(errors.NotWritten):
        await bus.append_events([("p", request("refused-batch"))])
    proxy.refuse(False)
    after = await bus.append_event("p", request("after"))
    assert after.event.sequence == 2
    verdict = await read_log(bus, History("p", {"before": 1, "after": 2}))
    assert verdict.values == ["before", "after"]
