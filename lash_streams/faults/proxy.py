"""``FaultProxy``: an asyncio TCP proxy between clients and one upstream
Redis, driven by a test or a soak run to cut, stall, delay or refuse the
connections that pass through it.

Faults act on bytes, not on commands: ``cut_after(n)`` drops the connection
that forwards the n-th byte in a direction, wherever that falls (inside a
pipeline the client is sending, inside a reply the server is returning), so
a test can sweep the cut point across a whole exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

__all__ = ["FaultProxy"]

_CHUNK = 65536
_DIRECTIONS = ("up", "down")


class _Link:
    """One client connection and its upstream connection."""

    def __init__(
        self,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.client_reader, self.client_writer = client
        self.upstream_reader, self.upstream_writer = upstream
        self.tasks: list[asyncio.Task[None]] = []
        self.closed = False

    def abort(self, *, flush: asyncio.StreamWriter | None = None) -> None:
        """Drop both sides now (RST where the OS does it), unsent bytes too;
        ``flush``: that side gets its written bytes and a FIN first."""
        if self.closed:
            return
        self.closed = True
        for writer in (self.client_writer, self.upstream_writer):
            if writer is flush:
                writer.close()
            else:
                writer.transport.abort()
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()


class FaultProxy:
    """A TCP proxy to ``upstream_host:upstream_port`` listening on
    ``listen_host:listen_port`` (0: a free port, see ``port`` once started).

    Faults, all effective at once and on every connection:

    - ``cut()``: drop every open connection, both sides;
    - ``stall()``: hold every byte (connections stay open) until ``stall(False)``;
    - ``delay_s``: wait this long before forwarding each chunk;
    - ``cut_after(n, direction=...)``: the connection that forwards the n-th
      byte from now in that direction (``"up"`` client to server, ``"down"``
      server to client) forwards exactly those n bytes and is dropped;
    - ``refuse()``: accept new connections and close them at once.
    """

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
    ) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.listen_host = listen_host
        self.port = listen_port
        self.delay_s = 0.0
        self.bytes_up = 0
        self.bytes_down = 0
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._refusing = False
        # Bytes left before the armed cut, per direction (None: not armed).
        self._cut_budget: dict[str, int | None] = {"up": None, "down": None}

    # -- lifecycle --

    async def start(self) -> FaultProxy:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, self.listen_host, self.port, limit=_CHUNK
            )
            self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self._flowing.set()
        self.cut()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- facts --

    @property
    def connections(self) -> int:
        """Connections open through the proxy now."""
        return sum(1 for link in self._links if not link.closed)

    def url(self, upstream_url: str) -> str:
        """``upstream_url`` pointed at the proxy (credentials, database and
        options kept)."""
        if self._server is None:
            raise RuntimeError("the proxy has not been started")
        parts = urlsplit(upstream_url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{self.listen_host}:{self.port}"
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc}" if userinfo else netloc))

    # -- faults --

    def cut(self) -> int:
        """Drop every open connection now, both sides; how many were open."""
        links = [link for link in self._links if not link.closed]
        for link in links:
            link.abort()
        self._links.clear()
        return len(links)

    def stall(self, on: bool = True) -> None:
        """Stop (``on``) or resume forwarding bytes; connections stay open and
        new ones are accepted (their bytes wait too)."""
        if on:
            self._flowing.clear()
        else:
            self._flowing.set()

    def cut_after(self, nbytes: int, *, direction: str = "down") -> None:
        """Arm a cut: the connection that forwards the ``nbytes``-th byte from
        now in ``direction`` forwards it and is dropped at once. One shot; a
        new call re-arms (``nbytes`` counts from the call)."""
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be `up` or `down`, got {direction!r}")
        if nbytes < 0:
            raise ValueError(f"nbytes must be >= 0, got {nbytes}")
        self._cut_budget[direction] = nbytes

    def disarm(self) -> None:
        """Forget an armed ``cut_after`` that has not fired."""
        self._cut_budget = {"up": None, "down": None}

    def armed(self, direction: str = "down") -> bool:
        """Whether a ``cut_after`` in ``direction`` is still waiting to fire."""
        return self._cut_budget[direction] is not None

    def refuse(self, on: bool = True) -> None:
        """Close new connections at once (``on``), or accept them again."""
        self._refusing = on

    # -- plumbing --

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            # stop(): this is the connection's top-level task, and asyncio's
            # stream callback logs a cancelled one as an error.
            writer.transport.abort()
        finally:
            self._handlers.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing or self._server is None:
            writer.transport.abort()
            return
        try:
            upstream = await asyncio.open_connection(
                self.upstream_host, self.upstream_port, limit=_CHUNK
            )
        except OSError:
            writer.transport.abort()
            return
        link = _Link((reader, writer), upstream)
        self._links.add(link)
        link.tasks = [
            asyncio.create_task(self._pump(link, reader, upstream[1], "up")),
            asyncio.create_task(self._pump(link, upstream[0], writer, "down")),
        ]
        try:
            await asyncio.gather(*link.tasks, return_exceptions=True)
        finally:
            link.abort()
            self._links.discard(link)

    async def _pump(
        self,
        link: _Link,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        direction: str,
    ) -> None:
        clean = False
        try:
            while not link.closed:
                data = await source.read(_CHUNK)
                if not data:
                    # A clean close is passed on as one (the bytes still
                    # flowing the other way are delivered).
                    await self._flowing.wait()
                    if sink.can_write_eof():
                        sink.write_eof()
                    clean = True
                    break
                await self._flowing.wait()
                if self.delay_s > 0:
                    await asyncio.sleep(self.delay_s)
                    await self._flowing.wait()
                if link.closed:
                    break
                budget = self._cut_budget[direction]
                if budget is not None and len(data) >= budget:
                    self._cut_budget[direction] = None
                    # The peer must get exactly those bytes: a reset could
                    # discard them from its receive queue, so a FIN ends them.
                    await self._forward(sink, data[:budget], direction)
                    link.abort(flush=sink)
                    break
                if budget is not None:
                    self._cut_budget[direction] = budget - len(data)
                await self._forward(sink, data, direction)
        except (ConnectionError, OSError):
            pass
        finally:
            if not clean:
                link.abort()

    async def _forward(self, sink: asyncio.StreamWriter, data: bytes, direction: str) -> None:
        if not data:
            return
        sink.write(data)
        if direction == "up":
            self.bytes_up += len(data)
        else:
            self.bytes_down += len(data)
        await sink.drain()
