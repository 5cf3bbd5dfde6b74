"""Group commit: script calls made in one turn of the event loop, sent as one
pipeline (issue 16: a worker's job starts and terminals).

A worker that read several ready entries starts them all in the same turn,
and jobs that end together write their terminals in the same turn; each is
its own script (its own atomic step), so nothing about a call changes but the
round trip it shares. A call (``Script.together``) joins the queue, the first one of a turn
schedules the flush for the next turn, and the flush sends the queue as one
pipeline on one connection (``pool.BoundedPool.direct_many``: one write, the
replies read in order; a lone call is sent as it is). Every caller gets
its own command's reply or error, as if sent alone:

- a refusal (a script's error, OOM, ...) is that call's alone;
- a connection fault fails every call of the pipeline, as it would have
  failed each sent alone on that connection (``Retry.once`` tells, from the
  error, whether the write may have run);
- ``NOSCRIPT`` (the server lost its script cache) means that command did not
  run: the scripts are loaded and it is sent again, alone;
- a caller cancelled before the flush took its call is taken out of the
  queue, so the call is never sent (a caller cancelled later is as one
  cancelled waiting for a reply: the call may have run).

A caller that knows nothing will join its turn (a worker that read a single
entry) sets :data:`ALONE` for the task it starts: that task's grouped calls go
at once, a turn of the event loop earlier, as direct calls.

Only on a client whose pool sends calls directly (a single server or a
Sentinel-managed primary, ``pool.BoundedPool``); elsewhere (a cluster, a
client that waits for replicas after each write) each call is sent alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any, Protocol

from redis.exceptions import NoScriptError

#: True in a task whose grouped calls would go alone anyway (the module doc).
ALONE: ContextVar[bool] = ContextVar("lash_streams_grouped_alone", default=False)


class Script(Protocol):
    """A transition as ``store/scripts.py`` has it: sent alone, or queued on
    a pipeline (``client=``)."""

    def __call__(
        self, *, keys: Sequence[Any], args: Sequence[Any], client: Any | None = None
    ) -> Awaitable[Any]: ...

    def command(self, keys: Sequence[Any], args: Sequence[Any]) -> tuple[Any, ...]:
        """The command a call is sent as (``EVALSHA sha numkeys keys args``)."""
        ...


#: Sends commands on one connection, one write: every reply in order, a
#: refusal as its ``ResponseError`` (``pool.BoundedPool.direct_many``).
SendMany = Callable[[list[tuple[Any, ...]]], Awaitable[list[Any]]]


class _Call:
    __slots__ = ("args", "future", "keys", "script")

    def __init__(
        self, script: Script, keys: Sequence[Any], args: Sequence[Any], future: Any
    ) -> None:
        self.script = script
        self.keys = keys
        self.args = args
        self.future: asyncio.Future[Any] = future


class Grouped:
    """The queue of grouped calls on one client (see the module)."""

    def __init__(self, send_many: SendMany) -> None:
        self._send_many = send_many
        self._queue: list[_Call] = []
        self._flushes: set[asyncio.Task[None]] = set()

    async def call(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        loop = asyncio.get_running_loop()
        call = _Call(script, keys, args, loop.create_future())
        if not self._queue:
            loop.call_soon(self._flush)
        self._queue.append(call)
        try:
            return await call.future
        except asyncio.CancelledError:
            if call in self._queue:  # not taken yet: never sent
                self._queue.remove(call)
            raise

    def _flush(self) -> None:
        # A caller cancelled meanwhile (its future cancelled with it): not sent.
        calls = [call for call in self._queue if not call.future.done()]
        self._queue = []
        if not calls:
            return
        task = asyncio.ensure_future(self._send(calls))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _send(self, calls: list[_Call]) -> None:
        if len(calls) == 1:
            await self._alone(calls[0])
            return
        commands = [call.script.command(call.keys, call.args) for call in calls]
        try:
            replies = await self._send_many(commands)
        except BaseException as err:
            for call in calls:
                _fail(call.future, err)
            if isinstance(err, asyncio.CancelledError):
                raise
            return
        again = []
        for call, reply in zip(calls, replies, strict=True):
            if isinstance(reply, NoScriptError):
                again.append(call)  # did not run
            elif isinstance(reply, BaseException):
                _fail(call.future, reply)
            elif not call.future.done():
                call.future.set_result(reply)
        for call in again:
            await self._alone(call)

    async def _alone(self, call: _Call) -> None:
        """One call sent by itself (``Script.__call__`` loads lost scripts)."""
        try:
            reply = await call.script(keys=call.keys, args=call.args)
        except BaseException as err:
            _fail(call.future, err)
            if isinstance(err, asyncio.CancelledError):
                raise
            return
        if not call.future.done():
            call.future.set_result(reply)


def _fail(future: asyncio.Future[Any], err: BaseException) -> None:
    if future.done():
        return
    if isinstance(err, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(err)
