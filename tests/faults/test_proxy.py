"""``lash_streams.faults.FaultProxy`` itself: every fault does what it says,
on raw TCP (an echo upstream, byte-exact) and under redis-py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from lash_streams.faults import FaultProxy
from lash_streams.server import LocalServer


class Echo:
    """An upstream that echoes every byte and records what it received."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.closed = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> Echo:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(4096):
                self.received += data
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self.closed.set()
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    server = await Echo().start()
    yield server
    await server.stop()


@pytest.fixture
async def proxy(echo: Echo) -> AsyncIterator[FaultProxy]:
    async with FaultProxy("127.0.0.1", echo.port) as started:
        yield started


async def _open(proxy: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.port)


async def _read_until_closed(reader: asyncio.StreamReader, timeout: float = 2.0) -> bytes:
    out = bytearray()
    try:
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(4096):
                out += chunk
    except ConnectionError:
        pass
    return bytes(out)


async def _until(predicate: object, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def test_forwards_both_ways_and_counts(proxy: FaultProxy, echo: Echo) -> None:
    """Without faults the proxy is transparent: bytes and counters match."""
    reader, writer = await _open(proxy)
    writer.write(b"hello")
    assert await reader.readexactly(5) == b"hello"
    assert proxy.connections == 1
    assert (proxy.bytes_up, proxy.bytes_down) == (5, 5)
    writer.close()
    await _until(lambda: proxy.connections == 0)


def test_url_points_at_the_proxy_and_keeps_the_rest() -> None:
    proxy = FaultProxy("10.0.0.1", 6379)
    with pytest.raises(RuntimeError):
        proxy.url("redis://10.0.0.1:6379/0")

    async def run() -> None:
        async with proxy:
            port = proxy.port
            assert proxy.url("redis://10.0.0.1:6379/2") == f"redis://127.0.0.1:{port}/2"
            assert (
                proxy.url("redis://u:p%40ss@10.0.0.1:6379/0?timeout=1")
                == f"redis://u:p%40ss@127.0.0.1:{port}/0?timeout=1"
            )

    asyncio.run(run())


async def test_cut_drops_every_connection(proxy: FaultProxy, echo: Echo) -> None:
    """cut() closes both sides of every open connection and says how many;
    the proxy keeps accepting new ones."""
    a, b = await _open(proxy), await _open(proxy)
    for _, writer in (a, b):
        writer.write(b"x")
    for reader, _ in (a, b):
        assert await reader.readexactly(1) == b"x"
    assert proxy.cut() == 2
    for reader, _ in (a, b):
        assert await _read_until_closed(reader) == b""
    await asyncio.wait_for(echo.closed.wait(), 2)
    assert proxy.connections == 0
    reader, writer = await _open(proxy)
    writer.write(b"again")
    assert await reader.readexactly(5) == b"again"
    writer.close()


async def test_stall_holds_bytes_and_resume_delivers_them(proxy: FaultProxy, echo: Echo) -> None:
    """stall() forwards nothing while the connection stays open; resuming
    delivers everything held, in order."""
    reader, writer = await _open(proxy)
    proxy.stall()
    writer.write(b"one")
    writer.write(b"two")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(1), 0.2)
    assert echo.received == b"" and proxy.connections == 1
    proxy.stall(False)
    assert await asyncio.wait_for(reader.readexactly(6), 2) == b"onetwo"
    writer.close()


async def test_delay_is_added_per_chunk(proxy: FaultProxy) -> None:
    """delay_s delays each forwarded chunk (once up, once down for an echo)."""
    reader, writer = await _open(proxy)
    writer.write(b"warm")
    await reader.readexactly(4)
    proxy.delay_s = 0.15
    started = time.monotonic()
    writer.write(b"ping")
    assert await reader.readexactly(4) == b"ping"
    assert time.monotonic() - started >= 0.3
    proxy.delay_s = 0
    writer.close()


async def test_cut_after_up_delivers_exactly_n_bytes(proxy: FaultProxy, echo: Echo) -> None:
    """cut_after(n, "up"): the server gets exactly the next n bytes, then the
    connection is gone on both sides."""
    reader, writer = await _open(proxy)
    writer.write(b"abc")
    await reader.readexactly(3)
    proxy.cut_after(5, direction="up")
    assert proxy.armed("up")
    writer.write(b"0123456789")
    await asyncio.wait_for(echo.closed.wait(), 2)
    assert bytes(echo.received) == b"abc01234"
    assert not proxy.armed("up")
    await _read_until_closed(reader)
    await _until(lambda: proxy.connections == 0)


async def test_cut_after_down_delivers_exactly_n_bytes(proxy: FaultProxy, echo: Echo) -> None:
    """cut_after(n, "down"): the client gets exactly the next n bytes of the
    reply, then end of stream (a reply cut in the middle)."""
    reader, writer = await _open(proxy)
    proxy.cut_after(7, direction="down")
    writer.write(b"0123456789")
    assert await _read_until_closed(reader) == b"0123456"
    await asyncio.wait_for(echo.closed.wait(), 2)
    assert proxy.bytes_down == 7


async def test_cut_after_counts_across_chunks_and_connections(
    proxy: FaultProxy, echo: Echo
) -> None:
    """The budget counts every connection's bytes: the one that forwards the
    n-th byte is cut, the others are left alone."""
    first = await _open(proxy)
    second = await _open(proxy)
    proxy.cut_after(6, direction="down")
    first[1].write(b"abcd")
    assert await first[0].readexactly(4) == b"abcd"
    second[1].write(b"efgh")
    assert await _read_until_closed(second[0]) == b"ef"
    first[1].write(b"ijkl")
    assert await first[0].readexactly(4) == b"ijkl"
    first[1].close()
    with pytest.raises(ValueError):
        proxy.cut_after(1, direction="sideways")


async def test_refuse_closes_new_connections_only(proxy: FaultProxy) -> None:
    """refuse(): a new connection is closed at once, open ones keep working;
    refuse(False) accepts again."""
    old_reader, old_writer = await _open(proxy)
    proxy.refuse()
    reader, writer = await _open(proxy)
    writer.write(b"x")
    assert await _read_until_closed(reader) == b""
    old_writer.write(b"still")
    assert await old_reader.readexactly(5) == b"still"
    proxy.refuse(False)
    reader, writer = await _open(proxy)
    writer.write(b"y")
    assert await reader.readexactly(1) == b"y"
    writer.close()
    old_writer.close()


async def test_unreachable_upstream_closes_the_client() -> None:
    """An upstream that refuses connections: the client is closed, not hung."""
    async with FaultProxy("127.0.0.1", 1) as proxy:
        reader, writer = await _open(proxy)
        assert await _read_until_closed(reader) == b""
        assert proxy.connections == 0
        writer.close()


async def test_stop_drops_connections_and_stops_listening(echo: Echo) -> None:
    proxy = await FaultProxy("127.0.0.1", echo.port).start()
    reader, _ = await _open(proxy)
    proxy.stall()
    await proxy.stop()
    assert await _read_until_closed(reader) == b""
    with pytest.raises(OSError):
        await _open(proxy)


@pytest.fixture(scope="module")
def valkey() -> object:
    server = LocalServer().start()
    yield server
    server.stop()


def _client(url: str, timeout: float = 2.0) -> aredis.Redis:
    return aredis.Redis.from_url(url, socket_timeout=timeout, retry=Retry(NoBackoff(), 0))


async def test_redis_through_the_proxy(valkey: LocalServer) -> None:
    """redis-py works through the proxy; a cut is a ConnectionError on the
    next command and the next connection works; a stall longer than the
    socket timeout is a TimeoutError."""
    async with FaultProxy("127.0.0.1", valkey.port) as proxy:
        client = _client(proxy.url(valkey.url), timeout=0.3)
        try:
            assert await client.set("k", "v")
            assert await client.get("k") == b"v"
            assert proxy.cut() == 1
            with pytest.raises(aredis.ConnectionError):
                await client.get("k")
            assert await client.get("k") == b"v"
            proxy.stall()
            with pytest.raises(aredis.TimeoutError):
                await client.get("k")
            proxy.stall(False)
            assert await client.get("k") == b"v"
            proxy.cut_after(3, direction="down")
            with pytest.raises(aredis.ConnectionError):
                await client.get("k")  # "$1\r\nv\r\n" cut after "$1\r"
            assert await client.delete("k") == 1
        finally:
            await client.aclose()
