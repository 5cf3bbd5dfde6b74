"""The connection pool and connection classes behind ``connect()``.

redis-py's pool and connections are general; on the hot path of a one-call
append they cost more client CPU than the server spends on the script
(measured with cProfile on redis-py 8.1: a lock, three awaited observability
records and a retried ``connect()`` per checkout; ``asyncio.wait_for`` around
every socket write, which creates a task on Python 3.11; a general argument
packer). These subclasses keep redis-py's behaviour and error types and drop
that overhead:

- ``BoundedPool``: at most ``max_connections``; a caller beyond the bound
  waits (up to ``timeout``) for a free connection instead of failing, so a
  burst of concurrent calls queues. The checkout still refuses a connection
  holding unread data (it reconnects), as redis-py's does.
- ``Lean*Connection``: socket writes under ``asyncio.timeout`` (no task; no
  timer at all when the socket took the whole command), and a packer for the
  argument types we send (``str``, ``bytes``, ``int``: hiredis's C packer); any
  other argument, a command name with a space or a value above redis-py's
  buffer cutoff goes through redis-py's own packer. ``BoundedPool.direct``
  reads its reply with ``read_direct``: redis-py's errors and socket timeout,
  kept by one long-lived timer per connection rather than an
  ``asyncio.timeout`` per reply, and redis-py's health check tested inline
  (no coroutine per command used within the interval).

Nothing here changes what is sent: ``tests/test_pool.py`` checks the packed
bytes against redis-py's for every argument shape.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = [
    "BoundedCluster",
    "BoundedPool",
    "BoundedSentinelPool",
    "GatedClusterPipeline",
    "LeanConnection",
    "LeanSSLConnection",
    "LeanUnixConnection",
]

_hiredis_pack: Any
try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - redis[hiredis] is a dependency
    _hiredis_pack = None

#: Argument types hiredis packs exactly as redis-py does.
_PLAIN = frozenset((str, bytes, int))

#: Set while a call holds a ``BoundedCluster``'s gate (tasks it starts inherit it).
_INSIDE: contextvars.ContextVar[bool] = contextvars.ContextVar("lash_cluster_gate", default=False)


class _Lean(AbstractConnection):
    """The two overrides, shared by the TCP, TLS and Unix socket classes."""

    def pack_command(self, *args: Any) -> list[bytes]:
        first = args[0]
        if (type(first) is str and " " in first) or (type(first) is bytes and b" " in first):
            return super().pack_command(*args)
        if _hiredis_pack is not None and self._plain_utf8:
            # hiredis packs in C what we would pack in Python (str as UTF-8,
            # bytes, int): the same bytes, several times cheaper per command.
            # The type test runs in C too: a batch's script call has thousands
            # of arguments, and a Python loop over them cost more than the pack.
            if not _PLAIN.issuperset(map(type, args)):
                return super().pack_command(*args)
            try:
                return [_hiredis_pack(args)]
            except UnicodeEncodeError:
                return super().pack_command(*args)  # redis-py's own error
        encoding = self.encoder.encoding
        errors = self.encoder.encoding_errors
        cutoff = self._buffer_cutoff
        parts = [b"*%d\r\n" % len(args)]
        for value in args:
            kind = type(value)
            if kind is bytes:
                data = value
            elif kind is str:
                data = value.encode(encoding, errors)
            elif kind is int:
                data = b"%d" % value
            else:  # float, bool, bytearray, memoryview, a bad type: redis-py decides
                return super().pack_command(*args)
            if len(data) > cutoff:  # redis-py sends large values without a copy
                return super().pack_command(*args)
            parts += (b"$%d\r\n" % len(data), data, b"\r\n")
        return [b"".join(parts)]

    @property
    def _plain_utf8(self) -> bool:
        encoder = self.encoder
        return encoder.encoding in ("utf-8", "utf8") and encoder.encoding_errors == "strict"

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not self.is_connected:
            await self.connect_check_health(check_health=False)
        if (
            check_health
            and self.health_check_interval
            and asyncio.get_running_loop().time() > self.next_health_check
        ):
            # redis-py's own test, made here: no coroutine per command when
            # the connection was used within the interval.
            await self.check_health()  # type: ignore[no-untyped-call]
        try:
            if isinstance(command, str):
                command = command.encode()
            if isinstance(command, bytes):
                command = [command]
            writer = self._writer
            assert writer is not None
            writer.writelines(command)
            # drain() can only wait while the transport holds unsent bytes
            # (it pauses above its high-water mark): a timer for each command
            # costs more than the rest of the send when the socket took it all.
            if self.socket_timeout and writer.transport.get_write_buffer_size():
                async with asyncio.timeout(self.socket_timeout):
                    await writer.drain()
            else:
                await writer.drain()
        except TimeoutError:
            await self.disconnect(nowait=True)
            raise RedisTimeoutError("Timeout writing to socket") from None
        except OSError as err:
            await self.disconnect(nowait=True)
            number, message = (
                ("UNKNOWN", err.args[0]) if len(err.args) == 1 else (err.args[0], err.args[1])
            )
            raise RedisConnectionError(
                f"Error {number} while writing to socket. {message}."
            ) from err
        except BaseException:
            # A write cut short leaves the stream mid-command: never reuse it.
            await self.disconnect(nowait=True)
            raise

    # The socket timeout of read_direct(): one timer per connection, re-armed
    # only when it fires early, instead of a timer made and cancelled a reply.
    _reading: asyncio.Task[Any] | None = None
    _deadline = 0.0
    _watch: asyncio.TimerHandle | None = None
    _timed_out: asyncio.Task[Any] | None = None

    async def read_direct(self) -> Any:
        """``read_response()`` for one reply, with redis-py's errors (a
        ``TimeoutError`` after ``socket_timeout``, the connection dropped on
        any fault), without an ``asyncio.timeout`` per reply: on a one-call
        append that timer was about 5% of the client's CPU."""
        timeout = self.socket_timeout
        if not timeout:
            return await self.read_response()
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + timeout
        self._reading = task
        if self._watch is None:
            self._watch = loop.call_at(self._deadline, self._expire)
        try:
            response = await self._read_response_from_parser()
        except asyncio.CancelledError:
            # The deadline's cancel alone is a timeout; with another one
            # pending, the caller's cancel goes on (as asyncio.timeout does).
            deadline = self._timed_out is task and task is not None
            self._timed_out = None
            timed_out = deadline and task is not None and task.uncancel() == 0
            await self.disconnect(nowait=True)
            if timed_out:
                raise RedisTimeoutError(f"Timeout reading from {self._host_error()}") from None
            raise
        except OSError as err:
            await self.disconnect(nowait=True)
            raise RedisConnectionError(
                f"Error while reading from {self._host_error()} : {err.args}"
            ) from err
        except BaseException:
            await self.disconnect(nowait=True)
            raise
        finally:
            self._reading = None
        if self.health_check_interval:
            self.next_health_check = loop.time() + self.health_check_interval
        if isinstance(response, ResponseError):
            try:
                raise response from None
            finally:
                del response  # no reference cycle through the traceback
        return response

    def _expire(self) -> None:
        self._watch = None
        reader = self._reading
        if reader is None:
            return  # idle: the next read arms a timer again
        loop = asyncio.get_running_loop()
        if loop.time() < self._deadline:  # a later read than the one armed for
            self._watch = loop.call_at(self._deadline, self._expire)
            return
        self._timed_out = reader
        reader.cancel()


class LeanConnection(_Lean, Connection):
    pass


class LeanSSLConnection(_Lean, SSLConnection):
    pass


class LeanUnixConnection(_Lean, UnixDomainSocketConnection):
    pass


_LEAN: dict[type[Any], type[Any]] = {
    Connection: LeanConnection,
    SSLConnection: LeanSSLConnection,
    UnixDomainSocketConnection: LeanUnixConnection,
}


def lean_class(connection_class: type[Any]) -> type[Any]:
    """The lean subclass of one of redis-py's connection classes (any other
    class, e.g. a user's own, is kept as it is)."""
    return _LEAN.get(connection_class, connection_class)


async def _connect(connection: Any) -> None:
    """``connect()``, its failures worded as failures to connect: redis-py
    raises a handshake failure (the server accepted and then closed or timed
    out before answering ``HELLO``/``CLIENT SETINFO``) as a read error, which
    the retry policy would take for a command that may have run. None was
    sent yet (store/retry.py ``never_ran``)."""
    try:
        await connection.connect()
    except (RedisConnectionError, RedisTimeoutError) as err:
        if isinstance(err, RedisConnectionError) and "connecting to" in str(err):
            raise
        where = f"{getattr(connection, 'host', '?')}:{getattr(connection, 'port', '?')}"
        raise RedisConnectionError(f"Error connecting to {where}: {err}") from err


class BoundedPool(ConnectionPool):
    """See the module docstring. Check-out and release never await between
    the pool's list operations, so the event loop needs no lock for them."""

    def __init__(self, *args: Any, timeout: float = 30.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection_class = lean_class(self.connection_class)
        self._slots = asyncio.Semaphore(self.max_connections)
        self.timeout = timeout

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self._slots.locked():
            try:
                await asyncio.wait_for(self._slots.acquire(), self.timeout)
            except TimeoutError as err:
                raise RedisConnectionError("No connection available.") from err
        else:
            await self._slots.acquire()
        try:
            try:
                connection = self._available_connections.pop()
            except IndexError:
                connection = self.make_connection()  # type: ignore[no-untyped-call]
            self._in_use_connections.add(connection)
        except BaseException:
            self._slots.release()
            raise
        try:
            await self._ready(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    async def _ready(self, connection: Any) -> None:
        """Connected, with nothing unread (a connection given back mid-reply
        is reconnected), like redis-py's ``ensure_connection``."""
        if not connection.is_connected:
            await _connect(connection)
        try:
            if await connection.can_read():
                raise RedisConnectionError("Connection has data")
        except (RedisConnectionError, RedisTimeoutError, OSError):
            await connection.disconnect()
            await _connect(connection)
            if await connection.can_read():
                raise RedisConnectionError("Connection not ready") from None

    async def direct(self, *args: Any) -> Any:
        """Send one command and read its reply on a pooled connection, without
        the client's per-command layers (retries are off on our clients and
        scripts have no reply callback). Errors are redis-py's own: the
        connection drops itself on a socket fault, a refusal leaves it usable."""
        connection = await self.get_connection()
        try:
            await connection.send_packed_command(connection.pack_command(*args))
            if isinstance(connection, _Lean):
                return await connection.read_direct()
            return await connection.read_response()
        finally:
            await self.release(connection)

    async def direct_many(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """``direct`` for several commands: one write, one connection, every
        reply in order. A refusal is that command's reply (the
        ``ResponseError``, as a pipeline's ``raise_on_error=False`` gives it);
        a socket fault raises for all, the connection dropped. What redis-py's
        pipeline does for a group commit, without its per-reply timer and
        parse layers (``store/grouped.py``)."""
        connection = await self.get_connection()
        try:
            await connection.send_packed_command(connection.pack_commands(commands))
            read = connection.read_direct if isinstance(connection, _Lean) else None
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(await read() if read else await connection.read_response())
                except ResponseError as err:
                    replies.append(err)
            return replies
        finally:
            await self.release(connection)

    async def release(self, connection: Any) -> None:
        if connection not in self._in_use_connections:
            return  # given back already; its slot went back with it
        try:
            self._in_use_connections.remove(connection)
            if connection.should_reconnect():
                await connection.disconnect()
            self._available_connections.append(connection)
        finally:
            self._slots.release()


class BoundedSentinelPool(BoundedPool, SentinelConnectionPool):
    """``BoundedPool``'s queueing check-out for a Sentinel-managed primary
    (redis-py's sentinel pool refuses a caller past ``max_connections``);
    connections still ask the sentinels for the primary when they connect."""


class BoundedCluster(RedisCluster):
    """A cluster client whose callers queue instead of failing: redis-py's
    cluster nodes refuse a connection past ``max_connections`` per node
    (``MaxConnectionsError``). At most ``max_connections`` calls run at once,
    so no node is asked for more; a call made from inside a running one (a
    pipeline's redirect, a scan's per-node command) is not queued again."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gate = asyncio.Semaphore(int(kwargs.get("max_connections") or 100))

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if _INSIDE.get():
            return await super().execute_command(*args, **kwargs)
        async with self._gate:
            token = _INSIDE.set(True)
            try:
                return await super().execute_command(*args, **kwargs)
            finally:
                _INSIDE.reset(token)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        if shard_hint:
            raise RedisClusterException("shard_hint is deprecated in cluster mode")
        return GatedClusterPipeline(self, transaction)  # type: ignore[abstract]

    async def gated(self, call: Any) -> Any:
        """Run ``call()`` (an awaitable factory) inside the gate."""
        if _INSIDE.get():
            return await call()
        async with self._gate:
            token = _INSIDE.set(True)
            try:
                return await call()
            finally:
                _INSIDE.reset(token)


class GatedClusterPipeline(ClusterPipeline):
    """A cluster pipeline that runs inside its client's gate."""

    def __init__(self, client: BoundedCluster, transaction: Any | None = None) -> None:
        super().__init__(client, transaction)
        self._gated_client = client

    async def execute(
        self, raise_on_error: bool = True, allow_redirections: bool = True
    ) -> list[Any]:
        async def run() -> list[Any]:
            results: list[Any] = await ClusterPipeline.execute(
                self, raise_on_error, allow_redirections
            )
            return results

        out: list[Any] = await self._gated_client.gated(run)
        return out
