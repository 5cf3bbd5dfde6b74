"""Fleet mode: pods that do not know their scopes share every scope that has
pending wakes (docs/fleet.md).

Every delivery first writes a *notice* (the scope id) to the namespace's fleet
stream. Pods read notices through one consumer group per application. A pod
that reads a notice takes the scope's lease (``SET PX`` on the server clock),
drains the scope's wake stream through the application's group, and only then
acknowledges the notice and releases the lease. So:

- no scope is served by two pods at once (the lease; renewed while draining);
- a busy scope's notice is retried later, never dropped;
- a pod's death strands nothing: its unacknowledged notice is claimed by
  another pod once idle for ``lease_ms``, by which time the lease has lapsed,
  and that pod also claims the dead pod's unacknowledged wakes in the scope.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from lash_streams import observability as obs
from lash_streams.coordination.wakes import WakeConsumer, WakeMessage, group_lost, trim_acknowledged
from lash_streams.errors import ConsumerClosed
from lash_streams.store.retry import TRANSIENT

#: How often (at most) a pod trims the fleet notices every group acknowledged.
NOTICE_TRIM_EVERY_S = 30.0

if TYPE_CHECKING:
    from lash_streams.store import Store


@dataclass(slots=True)
class _Notice:
    entry_id: str
    scope_id: str
    due: float = 0.0


class FleetConsumer:
    def __init__(
        self,
        store: Store,
        *,
        group: str,
        pod: str,
        lease_ms: int = 10_000,
        block_ms: int = 500,
        max_deliveries: int = 5,
    ) -> None:
        self.store = store
        self.group = group
        self.pod = pod
        self.lease_ms = lease_ms
        self.block_ms = block_ms
        self.max_deliveries = max_deliveries
        self.notice_group = f"fleet:{group}"
        self._deferred: list[_Notice] = []
        self._notice: _Notice | None = None
        self._scope: WakeConsumer | None = None
        self._renewed_at = 0.0
        self._closed = False
        self._next_trim = 0.0

    async def ensure_group(self) -> None:
        try:
            await self.store.redis.xgroup_create(
                self.store.keys.fleet_stream, self.notice_group, id="0", mkstream=True
            )
        except ResponseError as err:
            if "BUSYGROUP" not in str(err):
                raise

    async def _lease(self, op: str, scope_id: str) -> bool:
        key = self.store.keys.scope_owner(scope_id)
        result = await self.store.retry.idempotent(
            f"{op} scope {scope_id}",
            lambda: self.store.scripts.scope_lease(keys=[key], args=[op, self.pod, self.lease_ms]),
        )
        return bool(result)

    def __aiter__(self) -> AsyncIterator[WakeMessage]:
        return self

    async def __anext__(self) -> WakeMessage:
        while True:
            try:
                message = await self.next(timeout=None)
            except ConsumerClosed:
                raise StopAsyncIteration from None
            if message is not None:
                return message

    async def next(self, timeout: float | None = 1.0) -> WakeMessage | None:
        """The next wake of any scope this pod holds, or None after ``timeout``;
        ``errors.ConsumerClosed`` once the consumer is closed."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._closed:
            if self._scope is not None:
                await self._renew_if_due()
                message = await self._scope.next(timeout=0.05)
                if message is not None:
                    return message
                if not self._scope._in_flight:
                    await self._finish_scope()
                    continue
            else:
                try:
                    await self._take_scope()
                except TRANSIENT:
                    await asyncio.sleep(0.2)
            if deadline is not None and loop.time() >= deadline:
                return None
        # Raised, not None: a polling loop must not spin on a closed consumer.
        raise ConsumerClosed(f"fleet consumer `{self.pod}` of `{self.group}` is closed")

    async def _renew_if_due(self) -> None:
        loop = asyncio.get_running_loop()
        if self._scope is None or loop.time() - self._renewed_at < self.lease_ms / 3000:
            return
        assert self._notice is not None
        if await self._lease("renew", self._notice.scope_id):
            self._renewed_at = loop.time()
        else:
            # Lost the scope (paused past the lease): hand everything back.
            if obs.hooks is not None:
                obs.hooks.lease_lost("fleet_scope")
            await self._scope.aclose()
            self._scope = None
            self._notice = None

    async def _take_scope(self) -> None:
        notice = await self._next_notice()
        if notice is None:
            return
        if not await self._lease("acquire", notice.scope_id):
            loop = asyncio.get_running_loop()
            notice.due = loop.time() + min(self.lease_ms / 4000, 0.5)
            self._deferred.append(notice)
            return
        self._renewed_at = asyncio.get_running_loop().time()
        self._notice = notice
        consumer = WakeConsumer(
            self.store,
            group=self.group,
            consumer=self.pod,
            scopes=[notice.scope_id],
            # Wakes another pod held are claimable once its lease could have lapsed.
            claim_idle_ms=self.lease_ms,
            max_deliveries=self.max_deliveries,
            block_ms=50,
        )
        await consumer.ensure_groups()
        self._scope = consumer

    async def _finish_scope(self) -> None:
        assert self._scope is not None and self._notice is not None
        scope_id = self._notice.scope_id
        await self._scope.aclose()
        self._scope = None
        stream = self.store.keys.fleet_stream
        # Every notice this pod holds for the scope is settled by this drain.
        done = [self._notice.entry_id] + [
            n.entry_id for n in self._deferred if n.scope_id == scope_id
        ]
        self._deferred = [n for n in self._deferred if n.scope_id != scope_id]
        await self.store.redis.xack(stream, self.notice_group, *done)
        await self._lease("release", scope_id)
        self._notice = None
        loop = asyncio.get_running_loop()
        if loop.time() >= self._next_trim:
            # Every pod trims now and then; what all groups acknowledged goes.
            self._next_trim = loop.time() + NOTICE_TRIM_EVERY_S
            with contextlib.suppress(ResponseError, *TRANSIENT):
                await trim_acknowledged(self.store, stream)

    async def _next_notice(self) -> _Notice | None:
        loop = asyncio.get_running_loop()
        for notice in self._deferred:
            if notice.due <= loop.time():
                self._deferred.remove(notice)
                return notice
        stream = self.store.keys.fleet_stream
        try:
            claimed = await self.store.redis.xautoclaim(
                stream, self.notice_group, self.pod, self.lease_ms, "0-0", count=1
            )
            entries: list[Any] = claimed[1]
            if not entries:
                block = self.block_ms if not self._deferred else 50
                reply = (
                    await self.store.blocking.xreadgroup(
                        self.notice_group, self.pod, {stream: ">"}, count=1, block=block
                    )
                    if not self.store.cluster
                    else await self.store.blocking_for(stream).xreadgroup(
                        self.notice_group, self.pod, {stream: ">"}, count=1, block=block
                    )
                )
                entries = reply[0][1] if reply else []
        except TRANSIENT:
            raise  # next() backs off and retries
        except ResponseError as err:
            if not group_lost(err):
                raise
            await self.ensure_group()  # a transient fault here is retried by next()
            return None
        for entry_id, fields in entries:
            eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            if not fields:
                await self.store.redis.xack(stream, self.notice_group, eid)
                continue
            return _Notice(eid, fields[b"scope"].decode())
        return None

    async def aclose(self) -> None:
        """Hand back the scope being drained and every deferred notice."""
        if self._closed:
            return
        self._closed = True
        if self._scope is not None:
            await self._scope.aclose()
            self._scope = None
        if self._notice is not None:
            await self._lease("release", self._notice.scope_id)
            self._deferred.append(self._notice)
            self._notice = None
        stream = self.store.keys.fleet_stream
        ids = [n.entry_id for n in self._deferred]
        if ids:
            await self.store.redis.xclaim(
                stream, self.notice_group, self.pod, 0, ids, idle=10**9, justid=True
            )
        self._deferred.clear()

    async def __aenter__(self) -> FleetConsumer:
        await self.ensure_group()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
