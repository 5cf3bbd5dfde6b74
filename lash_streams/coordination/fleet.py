"""Fleet mode: pods that do not know their scopes share every scope that has
pending wakes (docs/wakes.md, "Fleet mode").

Every delivery is followed by a *notice* (the scope id) on the namespace's
fleet stream, written after the wake is readable and only while some fleet
group exists. Pods read notices through one consumer group per application.
A pod that reads a notice takes the scope's lease (a token under ``SET PX`` on
the server clock), serves the scope's wake stream through the application's
group, and when the scope is drained acknowledges the notice and releases the
lease. So:

- no scope is served by two pods at once: the lease is renewed by a background
  task while the pod holds the scope (handlers longer than ``lease_ms`` keep
  it), and fenced by its token: a pod that lost it (paused past the lease)
  stops serving the scope, hands nothing back, and its acks are refused once
  the next holder claimed the deliveries;
- a pod serves up to ``max_scopes`` scopes at once;
- a busy scope's notice is retried later, never dropped; a scope whose nacked
  deliveries wait for their retry keeps its notice deferred, so a nack never
  pins a pod and never strands a wake;
- a pod's death strands nothing: its unacknowledged notices are claimed by
  another pod once idle for ``lease_ms``, by which time the lease has lapsed,
  and that pod also claims the dead pod's deliveries in the scope;
- the notice stream is trimmed below what every fleet group acknowledged
  (``MINID``), never blindly; ``orphan_scopes()`` re-notices scopes whose group
  has lag or pending entries but no notice left (a notice lost to a restore).

Nothing here raises on a lost scope or a server fault: ``next()`` backs off
and goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from lash_streams import observability as obs
from lash_streams.coordination.wake_streams import Outage
from lash_streams.coordination.wakes import WakeConsumer, WakeMessage, group_lost, trim_acknowledged
from lash_streams.errors import BackendError, ConsumerClosed, LashStreamsError
from lash_streams.ids import id_bytes
from lash_streams.semantics.inputs import require_at_least
from lash_streams.store.keys import decode_id
from lash_streams.store.retry import TRANSIENT

if TYPE_CHECKING:
    from lash_streams.store import Store

#: How often (at most) a pod trims the fleet notices every group acknowledged.
NOTICE_TRIM_EVERY_S = 30.0

log = logging.getLogger("lash_streams.fleet")

#: The scope a pod's wake consumer is made with, dropped at once (it takes a list).
_NO_SCOPE = "session:-"


@dataclass(slots=True)
class _Notice:
    stream: str  # the fleet notice stream (shard) it was read from
    entry_id: str
    scope_id: str
    due: float = 0.0


@dataclass(slots=True)
class _Held:
    token: str
    renewed_at: float  # loop time of the last acquire or renewal
    notices: list[_Notice] = field(default_factory=list)


def _by_stream(notices: list[_Notice]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for notice in notices:
        grouped.setdefault(notice.stream, []).append(notice.entry_id)
    return grouped


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
        max_scopes: int = 4,
    ) -> None:
        id_bytes("group", group)
        id_bytes("pod", pod)
        require_at_least(lease_ms, 30, "lease_ms")
        require_at_least(max_scopes, 1, "max_scopes")
        require_at_least(max_deliveries, 1, "max_deliveries")
        require_at_least(block_ms, 0, "block_ms")
        self.store = store
        self.group = group
        self.pod = pod
        self.lease_ms = lease_ms
        self.block_ms = block_ms
        self.max_deliveries = max_deliveries
        self.max_scopes = max_scopes
        self.notice_group = f"fleet:{group}"
        self._deferred: list[_Notice] = []
        self._held: dict[str, _Held] = {}
        self._wakes = WakeConsumer(
            store,
            group=group,
            consumer=pod,
            scopes=[_NO_SCOPE],  # replaced by the scopes this pod takes
            # Wakes another pod held are claimable once its lease could have lapsed.
            claim_idle_ms=lease_ms,
            max_deliveries=max_deliveries,
            batch=32,
            block_ms=min(block_ms, 50),
        )
        self._wakes.drop_scope(_NO_SCOPE)
        self._renewer: asyncio.Task[None] | None = None
        self._closed = False
        self._next_trim = 0.0
        self._claim_shard = 0  # XAUTOCLAIM visits one notice shard per read
        self._outage = Outage(f"fleet pod `{pod}` of `{group}`", group)

    # -- lifecycle ---------------------------------------------------------------

    async def ensure_group(self) -> None:
        """The notice group on every notice shard (idempotent), registered so
        deliveries write notices."""
        new = False
        for stream in self.store.keys.fleet_streams():
            try:
                await self.store.redis.xgroup_create(
                    stream, self.notice_group, id="0", mkstream=True
                )
            except ResponseError as err:
                if "BUSYGROUP" not in str(err):
                    raise
            new |= bool(await self.store.redis.sadd(stream + ":groups", self.notice_group))
        if new:
            # A new fleet group: scopes with wakes from before it get their notices.
            await self.orphan_scopes()

    async def __aenter__(self) -> FleetConsumer:
        await self.ensure_group()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def scopes(self) -> list[str]:
        """The scopes this pod holds now."""
        return list(self._held)

    async def aclose(self) -> None:
        """Hand back every scope held (its deliveries in hand too) and every
        deferred notice."""
        if self._closed:
            return
        self._closed = True
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._renewer
        with contextlib.suppress(LashStreamsError, ResponseError, *TRANSIENT):
            await self._wakes.aclose()
        notices = list(self._deferred)
        for scope_id, held in list(self._held.items()):
            notices += held.notices
            with contextlib.suppress(LashStreamsError, ResponseError, *TRANSIENT):
                await self._lease("release", scope_id, held.token)
        self._held.clear()
        self._deferred.clear()
        for stream, ids in _by_stream(notices).items():
            with contextlib.suppress(ResponseError, *TRANSIENT):
                await self.store.redis.xclaim(
                    stream, self.notice_group, self.pod, 0, ids, idle=10**9, justid=True
                )

    # -- serving -----------------------------------------------------------------

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
            try:
                if len(self._held) < self.max_scopes:
                    await self._take_scope(block=not self._held)
                if self._held:
                    message = await self._wakes.next(timeout=min(self.block_ms, 50) / 1000)
                    if message is not None and self._still_held(message.scope_id):
                        self._outage.over()
                        return message
                    await self._finish_drained()
                self._outage.over()
            except (*TRANSIENT, BackendError) as err:
                self._outage.fault(err)  # logged when it starts, every 30 s, and ends
                await asyncio.sleep(0.2)
            except LashStreamsError as err:
                log.warning("fleet pod `%s`: %s; retrying", self.pod, err)
                await asyncio.sleep(0.2)
            except ResponseError as err:
                if not group_lost(err):
                    raise
                with contextlib.suppress(*TRANSIENT, ResponseError):
                    await self.ensure_group()
            if deadline is not None and loop.time() >= deadline:
                return None
        # Raised, not None: a polling loop must not spin on a closed consumer.
        raise ConsumerClosed(f"fleet consumer `{self.pod}` of `{self.group}` is closed")

    async def _lease(self, op: str, scope_id: str, token: str) -> bool:
        key = self.store.keys.scope_owner(scope_id)
        result = await self.store.retry.idempotent(
            f"{op} scope {scope_id}",
            lambda: self.store.scripts.scope_lease(keys=[key], args=[op, token, self.lease_ms]),
        )
        return bool(result)

    async def _take_scope(self, *, block: bool) -> None:
        notice = await self._next_notice(block=block)
        if notice is None:
            return
        held = self._held.get(notice.scope_id)
        if held is not None:  # another notice of a scope being served: settled with it
            held.notices.append(notice)
            return
        token = f"{self.pod}|{secrets.token_hex(8)}"
        if not await self._lease("acquire", notice.scope_id, token):
            notice.due = asyncio.get_running_loop().time() + min(self.lease_ms / 4000, 0.5)
            self._deferred.append(notice)
            return
        now = asyncio.get_running_loop().time()
        held = self._held[notice.scope_id] = _Held(token, now, [notice])
        await self._wakes_group(notice.scope_id)
        if self._held.get(notice.scope_id) is held:  # not lost meanwhile
            self._wakes.add_scope(notice.scope_id)
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_held())

    async def _wakes_group(self, scope_id: str) -> None:
        try:
            await self.store.redis.xgroup_create(
                self.store.keys.wake_stream(scope_id), self.group, id="0", mkstream=True
            )
        except ResponseError as err:
            if "BUSYGROUP" not in str(err):
                raise

    async def _renew_held(self) -> None:
        """Every third of ``lease_ms`` while scopes are held: renew each lease;
        a scope whose lease is gone (another pod holds it now) is dropped
        without handing anything back."""
        while self._held and not self._closed:
            await asyncio.sleep(self.lease_ms / 3000)
            for scope_id, held in list(self._held.items()):
                try:
                    renewed = await self._lease("renew", scope_id, held.token)
                except LashStreamsError as err:
                    log.warning("fleet pod `%s`: renewing `%s` failed: %s", self.pod, scope_id, err)
                    continue
                if renewed:
                    held.renewed_at = asyncio.get_running_loop().time()
                elif self._held.get(scope_id) is held:
                    self._lose(scope_id)

    def _still_held(self, scope_id: str) -> bool:
        """A lease not renewed for most of ``lease_ms`` (this pod was paused:
        its clock jumped) may be someone else's: give the scope up before
        handing out anything of it, without a round trip."""
        held = self._held.get(scope_id)
        if held is None:
            return False
        if asyncio.get_running_loop().time() - held.renewed_at < self.lease_ms * 0.8 / 1000:
            return True
        self._lose(scope_id)
        return False

    def _lose(self, scope_id: str) -> None:
        log.warning("fleet pod `%s` lost scope `%s` (its lease lapsed)", self.pod, scope_id)
        if obs.hooks is not None:
            obs.hooks.lease_lost("fleet_scope")
        self._held.pop(scope_id, None)
        for message in self._wakes.drop_scope(scope_id):
            message.settled = "lost"  # the next holder owns it; settling here is refused

    async def _finish_drained(self) -> None:
        """Settle the scopes with nothing in hand and nothing new for a while:
        their notices acknowledged (or deferred while nacked deliveries wait
        for their retry), their leases released."""
        now = asyncio.get_running_loop().time()
        for scope_id, held in list(self._held.items()):
            if not self._wakes.drained(scope_id):
                continue
            stream = self.store.keys.wake_stream(scope_id)
            summary = await self.store.redis.xpending(stream, self.group)
            waiting = int(summary["pending"]) if summary else 0
            if self._held.get(scope_id) is not held or not self._wakes.drained(scope_id):
                continue  # lost (the renewer) or busy again meanwhile
            self._wakes.drop_scope(scope_id)
            del self._held[scope_id]
            if waiting:
                # Deliveries handed back for a later attempt: come back then.
                due = now + min(self.lease_ms / 1000, 1.0)
                for notice in held.notices:
                    notice.due = due
                self._deferred += held.notices
            else:
                for notice_stream, ids in _by_stream(held.notices).items():
                    await self.store.redis.xack(notice_stream, self.notice_group, *ids)
            await self._lease("release", scope_id, held.token)
        if now >= self._next_trim:
            # Every pod trims now and then; what all groups acknowledged goes.
            self._next_trim = now + NOTICE_TRIM_EVERY_S
            with contextlib.suppress(ResponseError, *TRANSIENT):
                for notice_stream in self.store.keys.fleet_streams():
                    await trim_acknowledged(self.store, notice_stream)

    async def _next_notice(self, *, block: bool) -> _Notice | None:
        loop = asyncio.get_running_loop()
        for notice in self._deferred:
            if notice.due <= loop.time():
                self._deferred.remove(notice)
                return notice
        streams = self.store.keys.fleet_streams()
        self._claim_shard = (self._claim_shard + 1) % len(streams)
        stream = streams[self._claim_shard]
        claimed = await self.store.redis.xautoclaim(
            stream, self.notice_group, self.pod, self.lease_ms, "0-0", count=1
        )
        read: list[tuple[str, Any]] = [(stream, entry) for entry in claimed[1]]
        if not read:
            # At least 1 ms: BLOCK 0 would wait for ever (block_ms=0 means no wait).
            wait = max(1, self.block_ms) if block and not self._deferred else 1
            read = await self._read_new(streams, wait)
        notices: list[_Notice] = []
        for notice_stream, (entry_id, fields) in read:
            eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            scope = (fields or {}).get(b"scope")
            if not scope:
                await self.store.redis.xack(notice_stream, self.notice_group, eid)
                continue
            notices.append(_Notice(notice_stream, eid, scope.decode()))
        self._deferred += notices[1:]  # read for this pod: served on the next calls
        return notices[0] if notices else None

    async def _read_new(self, streams: list[str], wait: int) -> list[tuple[str, Any]]:
        """New notices of every shard, at most one per shard: one blocking read
        on a single server; on a cluster (one slot per command) one per shard
        at once, the first to answer wins (a read cut short may have taken an
        entry: it stays in this pod's pending list, where XAUTOCLAIM finds it
        after ``lease_ms``)."""
        if not self.store.cluster or len(streams) == 1:
            client = self.store.blocking_for(streams[0])
            return _entries(
                await client.xreadgroup(
                    self.notice_group, self.pod, dict.fromkeys(streams, ">"), count=1, block=wait
                )
            )
        reads = [
            asyncio.ensure_future(
                self.store.blocking_for(stream).xreadgroup(
                    self.notice_group, self.pod, {stream: ">"}, count=1, block=wait
                )
            )
            for stream in streams
        ]
        done, pending = await asyncio.wait(reads, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        found: list[tuple[str, Any]] = []
        for task in done:
            found += _entries(task.result())
        return found

    async def orphan_scopes(self, *, count: int = 1_000) -> int:
        """Write a notice for every scope whose stream has lag or pending
        entries in this application's group (or wakes and no such group yet),
        so no wake waits for a notice that was lost (a restore, a failover)
        or never written (no fleet group existed). Runs when a fleet group is
        first created; a SCAN of the namespace's wake streams, so run it now
        and then (``docs/wakes.md``), not per wake. Returns how many scopes
        were noticed."""
        prefix = f"{self.store.keys.namespace}:w:{{"
        noticed = 0
        for client in self.store.primary_clients():
            async for key in client.scan_iter(match=prefix + "*}", count=count, _type="stream"):
                name = key.decode() if isinstance(key, bytes) else key
                if not name.endswith("}"):
                    continue  # a dead-letter stream
                try:
                    groups = await client.xinfo_groups(name)
                except ResponseError:
                    continue
                info = next((g for g in groups if _text(g["name"]) == self.group), None)
                if info is None:
                    waiting = bool(await client.xlen(name))  # the group starts at 0
                else:
                    lag = info.get("lag")
                    waiting = bool(int(info["pending"]) or lag is None or int(lag))
                if waiting:
                    scope_id = decode_id(name[len(prefix) : -1])
                    notices = self.store.keys.fleet_stream_of(scope_id)
                    await self.store.redis.xadd(notices, {"scope": scope_id})
                    noticed += 1
        return noticed


def _entries(reply: Any) -> list[tuple[str, Any]]:
    """``XREADGROUP``'s reply as (stream, entry) pairs."""
    found: list[tuple[str, Any]] = []
    for name, entries in reply or []:
        found += [(_text(name), entry) for entry in entries]
    return found


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
