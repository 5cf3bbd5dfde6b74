"""lash_streams.pool: the lean connection and pool behind ``connect()`` send
exactly what redis-py sends and keep its failure behaviour."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, NoScriptError, ResponseError

import lash_streams as ls
from lash_streams.pool import (
    BoundedPool,
    LeanConnection,
    LeanSSLConnection,
    LeanUnixConnection,
    lean_class,
)

SHAPES: list[tuple[Any, ...]] = [
    ("PING",),
    ("XADD", "s", "*", "e", '{"a":1}'),
    ("EVALSHA", "a" * 40, 2, "k1", b"k2", "", b"", 0, -7, 2**70, "é✓", b"\x00\xff"),
    ("CONFIG GET", "maxmemory"),  # a command name with a space is split
    (b"CLIENT LIST",),
    ("SET", "k", 1.5),  # a float: redis-py's own packing
    ("SET", "k", bytearray(b"ab")),
    ("SET", "k", memoryview(b"abc")),
    ("SET", "k", "x" * 10_000),  # above the buffer cutoff: sent in pieces
    ("SET", "k", b"y" * 100_000),
]


def _flat(packed: list[Any]) -> bytes:
    return b"".join(bytes(part) for part in packed)


@pytest.mark.parametrize("args", SHAPES, ids=lambda a: repr(a)[:40])
def test_lean_packer_sends_the_bytes_redis_py_sends(args: tuple[Any, ...]) -> None:
    assert _flat(LeanConnection().pack_command(*args)) == _flat(Connection().pack_command(*args))


def test_lean_packer_refuses_a_lone_surrogate_as_redis_py_does() -> None:
    with pytest.raises(UnicodeEncodeError):
        Connection().pack_command("SET", "k", "a\ud800")
    with pytest.raises(UnicodeEncodeError):
        LeanConnection().pack_command("SET", "k", "a\ud800")


@pytest.mark.parametrize("bad", [True, None, object(), [1]])
def test_lean_packer_refuses_what_redis_py_refuses(bad: Any) -> None:
    with pytest.raises(DataError):
        LeanConnection().pack_command("SET", "k", bad)


def test_each_redis_py_connection_class_gets_its_lean_subclass() -> None:
    assert lean_class(Connection) is LeanConnection
    assert lean_class(SSLConnection) is LeanSSLConnection
    assert lean_class(UnixDomainSocketConnection) is LeanUnixConnection

    class Own(Connection):
        pass

    assert lean_class(Own) is Own  # a user's own class is kept
    pool = BoundedPool.from_url("rediss://localhost:1")
    assert pool.connection_class is LeanSSLConnection
    pool = BoundedPool.from_url("unix:///tmp/nowhere.sock")
    assert pool.connection_class is LeanUnixConnection


async def test_direct_calls_answer_like_the_client(backend: Any, namespace: str) -> None:
    pool = BoundedPool.from_url(backend.url, max_connections=2)
    try:
        key = f"{namespace}:direct"
        assert await pool.direct("SET", key, "v", "PX", 60_000) == b"OK"
        assert await pool.direct("GET", key) == b"v"
        with pytest.raises(NoScriptError):
            await pool.direct("EVALSHA", "0" * 40, 0)
        with pytest.raises(ResponseError):
            await pool.direct("HGET", key, "f")  # WRONGTYPE
        # A refusal leaves the connection usable and given back.
        assert await pool.direct("GET", key) == b"v"
        assert len(pool._in_use_connections) == 0
    finally:
        await pool.disconnect()


async def test_direct_many_answers_each_command_in_order(backend: Any, namespace: str) -> None:
    """The group commit's send: one write, each command's own reply, a
    refusal as that command's error object (the others still answer), and
    the connection given back usable."""
    pool = BoundedPool.from_url(backend.url, max_connections=1)
    try:
        key = f"{namespace}:many"
        replies = await pool.direct_many(
            [
                ("SET", key, "v", "PX", 60_000),
                ("EVALSHA", "0" * 40, 0),
                ("HGET", key, "f"),  # WRONGTYPE
                ("GET", key),
            ]
        )
        assert replies[0] == b"OK" and replies[3] == b"v"
        assert isinstance(replies[1], NoScriptError)
        assert isinstance(replies[2], ResponseError) and "WRONGTYPE" in str(replies[2])
        assert await pool.direct_many([]) == []
        assert await pool.direct("GET", key) == b"v"
        assert len(pool._in_use_connections) == 0 and pool._slots._value == 1
    finally:
        await pool.disconnect()


async def test_direct_many_on_a_dead_server_raises_for_all_and_gives_the_slot_back() -> None:
    pool = BoundedPool.from_url("redis://127.0.0.1:1", max_connections=1, socket_connect_timeout=1)
    try:
        with pytest.raises(RedisConnectionError):
            await pool.direct_many([("PING",), ("PING",)])
        assert pool._slots._value == 1
    finally:
        await pool.disconnect()


async def test_direct_many_cut_off_mid_replies_drops_the_connection(backend: Any) -> None:
    """A caller cancelled while replies are still coming: the connection is
    never reused with those replies unread."""
    pool = BoundedPool.from_url(backend.url, max_connections=1)
    try:
        many = asyncio.create_task(
            pool.direct_many([("PING",), ("BLPOP", "lash-test:nothing-here", "5"), ("PING",)])
        )
        await asyncio.sleep(0.1)
        many.cancel()
        with pytest.raises(asyncio.CancelledError):
            await many
        assert pool._slots._value == 1
        assert await pool.direct("ECHO", "fresh") == b"fresh"
    finally:
        await pool.disconnect()


async def test_the_pool_bound_queues_callers_instead_of_failing(backend: Any) -> None:
    pool = BoundedPool.from_url(backend.url, max_connections=2, timeout=5.0)
    try:
        replies = await asyncio.gather(*(pool.direct("PING") for _ in range(20)))
        assert replies == [True] * 20 or replies == [b"PONG"] * 20
        assert len(pool._available_connections) <= 2
    finally:
        await pool.disconnect()


async def test_a_caller_past_the_bound_gets_a_connection_error_after_the_wait(
    backend: Any,
) -> None:
    pool = BoundedPool.from_url(backend.url, max_connections=1, timeout=0.2)
    try:
        held = await pool.get_connection()
        with pytest.raises(RedisConnectionError, match="No connection available"):
            await pool.direct("PING")
        await pool.release(held)
        await pool.release(held)  # a second release is a no-op, not a second slot
        assert await pool.direct("PING") in (True, b"PONG")
        assert pool._slots._value == 1
    finally:
        await pool.disconnect()


async def test_a_connection_given_back_mid_reply_is_not_reused_dirty(backend: Any) -> None:
    """A caller cancelled between send and read leaves a reply on the socket;
    the next checkout must not read it as its own answer."""
    pool = BoundedPool.from_url(backend.url, max_connections=1)
    try:
        connection = await pool.get_connection()
        await connection.send_packed_command(connection.pack_command("ECHO", "stale"))
        await asyncio.sleep(0.05)  # the reply is in the socket buffer
        await pool.release(connection)
        assert await pool.direct("ECHO", "fresh") == b"fresh"
    finally:
        await pool.disconnect()


async def test_a_dead_server_is_a_connection_error_and_the_slot_comes_back() -> None:
    pool = BoundedPool.from_url("redis://127.0.0.1:1", max_connections=1, socket_connect_timeout=1)
    try:
        for _ in range(3):
            with pytest.raises(RedisConnectionError):
                await pool.direct("PING")
        assert pool._slots._value == 1
    finally:
        await pool.disconnect()


async def test_connect_uses_the_lean_pool_for_scripts(backend: Any, namespace: str) -> None:
    async with ls.connect(backend.url, namespace=namespace) as bus:
        pool = bus.redis.connection_pool
        assert isinstance(pool, BoundedPool)
        assert bus.scripts.send == pool.direct


async def _burst(bus: Any, n: int) -> None:
    regs = [ls.ProcessRegistration.external(f"burst-{i}") for i in range(n)]
    records = await asyncio.gather(*(bus.register_process(r) for r in regs))
    assert {r.id for r in records} == {r.id for r in regs}


@pytest.mark.cluster(only=True)
async def test_a_burst_on_a_cluster_queues_instead_of_failing(backend: Any, namespace: str) -> None:
    """redis-py's cluster nodes refuse a connection past their bound
    (MaxConnectionsError): 500 concurrent registrations used to fail with
    ConnectionFailed. The bus queues its callers (lash_streams.pool.BoundedCluster)."""
    async with ls.connect(backend.connect_url, namespace=namespace) as bus:
        await _burst(bus, 500)
        for node in bus.redis.get_nodes():
            assert len(node._connections) <= 64  # the bound held on every node
        for i in range(500):
            await bus.complete_process(f"burst-{i}", ls.AwaitSuccess(value=None))
        await bus.prune_terminal_processes(await bus.server_time_ms() + 1)


async def test_a_write_the_socket_cannot_take_times_out() -> None:
    """The write timeout still holds when a command does not fit the socket
    (the timer is skipped only when the socket took the whole command)."""
    import socket

    from redis.exceptions import TimeoutError as RedisTimeoutError

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []

    async def accept() -> None:
        peer, _ = await asyncio.get_running_loop().sock_accept(listener)
        accepted.append(peer)  # never read from: the client's buffers fill up

    listener.setblocking(False)
    acceptor = asyncio.create_task(accept())
    connection = LeanConnection(host="127.0.0.1", port=port, socket_timeout=0.5)
    try:
        await connection._connect()  # the socket only: no handshake to answer
        await acceptor
        with pytest.raises(RedisTimeoutError, match="writing"):
            await asyncio.wait_for(
                connection.send_packed_command(
                    connection.pack_command("SET", "k", b"x" * (64 << 20))
                ),
                10,
            )
        assert not connection.is_connected  # never reused mid-command
    finally:
        await connection.disconnect()
        for peer in accepted:
            peer.close()
        listener.close()


@contextlib.asynccontextmanager
async def _silent_server(socket_timeout: float) -> AsyncIterator[LeanConnection]:
    """A connection with a PING sent to a peer that accepts and never
    answers: its read waits until the timeout or a cancel."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.setblocking(False)
    loop = asyncio.get_running_loop()
    acceptor = asyncio.create_task(loop.sock_accept(listener))
    connection = LeanConnection(
        host="127.0.0.1", port=listener.getsockname()[1], socket_timeout=socket_timeout
    )
    peer = None
    try:
        await connection._connect()  # the socket only: no handshake to answer
        connection._parser.on_connect(connection)
        peer = (await acceptor)[0]
        await connection.send_packed_command(connection.pack_command("PING"))
        yield connection
    finally:
        await connection.disconnect()
        if peer is not None:
            peer.close()
        listener.close()


async def test_a_direct_read_the_server_never_answers_times_out() -> None:
    """read_direct keeps redis-py's socket timeout with one timer per
    connection: a reply that never comes is a TimeoutError after
    ``socket_timeout`` and the connection is dropped, not reused."""
    from redis.exceptions import TimeoutError as RedisTimeoutError

    loop = asyncio.get_running_loop()
    async with _silent_server(socket_timeout=0.3) as connection:
        started = loop.time()
        with pytest.raises(RedisTimeoutError, match="reading"):
            await asyncio.wait_for(connection.read_direct(), 10)
        assert 0.25 <= loop.time() - started < 5
        assert not connection.is_connected
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_direct_read_cancelled_from_outside_stays_cancelled() -> None:
    """A caller's own cancellation is not turned into a timeout."""
    async with _silent_server(socket_timeout=30) as connection:
        reading = asyncio.create_task(connection.read_direct())
        await asyncio.sleep(0.05)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        assert not connection.is_connected  # a cut-short read never leaves it reusable


async def test_direct_reads_after_a_quiet_spell_keep_their_own_deadline(backend: Any) -> None:
    """The connection's timer, armed by an earlier read, fires while a later
    read is inside its own deadline: it re-arms for that read, never cuts it."""
    pool = BoundedPool.from_url(backend.url, max_connections=1, socket_timeout=0.4)
    try:
        assert await pool.direct("PING") in (True, b"PONG")
        await asyncio.sleep(0.3)  # the first read's timer fires during the next read
        # A server-side wait shorter than the timeout, crossing the old deadline.
        assert await pool.direct("BLPOP", "lash-test:nothing-here", "0.25") is None
        assert await pool.direct("PING") in (True, b"PONG")
        assert len(pool._in_use_connections) == 0
    finally:
        await pool.disconnect()


async def test_direct_calls_keep_redis_py_s_health_check(backend: Any) -> None:
    """A connection used within ``health_check_interval`` sends no PING; one
    idle past it is checked with a PING before the next command, as redis-py
    does (read_direct keeps the interval's clock)."""
    import redis.asyncio as redis

    observer = redis.Redis.from_url(backend.url)
    pool = BoundedPool.from_url(backend.url, max_connections=1, health_check_interval=30)

    async def pings() -> int:
        stats = await observer.info("commandstats")
        return int(stats.get("cmdstat_ping", {}).get("calls", 0))

    try:
        assert await pool.direct("ECHO", "a") == b"a"
        connection = pool._available_connections[0]
        assert connection.next_health_check > asyncio.get_running_loop().time() + 20
        before = await pings()
        assert await pool.direct("ECHO", "b") == b"b"
        assert await pings() == before  # used just now: no check
        connection.next_health_check = 0.0  # as if idle past the interval
        assert await pool.direct("ECHO", "c") == b"c"
        assert await pings() == before + 1
    finally:
        await pool.disconnect()
        await observer.aclose()
