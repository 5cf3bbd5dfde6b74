"""The bus (a surface): the store and coordination as one object.

:class:`Bus` is the :class:`~lash_streams.store.Store` (every ``ProcessRegistry``
method of lash, awaiting included) plus the coordination it composes: wake and
fleet consumers, recovery, and the host-local death evidence (LV-2) the lease
reclaim uses by default. It owns the lifecycle of its connections and of the
embedded server it may have started. Nothing below the surfaces imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from redis.exceptions import RedisError, ResponseError

from lash_streams.coordination.fleet import FleetConsumer
from lash_streams.coordination.jobs import Handler, HandlerSpec, JobRetry, job_registration
from lash_streams.coordination.lease_runs import Runner
from lash_streams.coordination.liveness import is_definitely_dead_for_claimant
from lash_streams.coordination.recovery import DEFAULT_MAX_RUNS, Recovery
from lash_streams.coordination.wakes import WakeConsumer, trim_acknowledged, trim_wake_stream
from lash_streams.coordination.worker import Worker
from lash_streams.errors import InvalidValue
from lash_streams.ids import id_bytes
from lash_streams.model import (
    LeaseOwnerIdentity,
    ProcessRecord,
    RecoveryDisposition,
    SessionScope,
)
from lash_streams.store import Store


@dataclass(frozen=True)
class Health:
    """``Bus.health()``: ``ok`` when the server answered in time."""

    ok: bool
    latency_ms: float | None
    error: str | None


class Bus(Store):
    """Every ``ProcessRegistry`` method of lash under the same name, async."""

    _owned_server: Any = None
    _closed = False

    def is_definitely_dead(self, holder: LeaseOwnerIdentity, claimant: LeaseOwnerIdentity) -> bool:
        """LV-2 on this host unless ``death_oracle`` is set (LV-4)."""
        if self.death_oracle is not None:
            return self.death_oracle(holder, claimant)
        return is_definitely_dead_for_claimant(holder, claimant)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.close_shared_reader()
        await self.close_node_clients()
        for client in (self.blocking, self.redis):
            close = getattr(client, "aclose", None)
            if close is not None:
                await close()
            # A sentinel URL's client owns the clients of its sentinels.
            sentinel = getattr(client, "lash_sentinel", None)
            if sentinel is not None:
                await sentinel.aclose()
        if self._owned_server is not None:
            server, self._owned_server = self._owned_server, None
            await server.astop()

    async def __aenter__(self) -> Bus:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def wake_consumer(
        self,
        *,
        group: str,
        consumer: str,
        scopes: Sequence[SessionScope | str],
        claim_idle_ms: int = 30_000,
        max_deliveries: int = 5,
        batch: int = 32,
        block_ms: int = 1_000,
    ) -> WakeConsumer:
        """Deliveries for ``scopes`` through consumer group ``group``."""
        return WakeConsumer(
            self,
            group=group,
            consumer=consumer,
            scopes=scopes,
            claim_idle_ms=claim_idle_ms,
            max_deliveries=max_deliveries,
            batch=batch,
            block_ms=block_ms,
        )

    def fleet_consumer(
        self,
        *,
        group: str,
        pod: str,
        lease_ms: int = 10_000,
        block_ms: int = 500,
        max_scopes: int = 4,
        max_deliveries: int = 5,
    ) -> FleetConsumer:
        """Wakes of every scope, shared by the pods of ``group``; a pod serves
        up to ``max_scopes`` scopes at once (docs/wakes.md)."""
        return FleetConsumer(
            self,
            group=group,
            pod=pod,
            lease_ms=lease_ms,
            block_ms=block_ms,
            max_scopes=max_scopes,
            max_deliveries=max_deliveries,
        )

    def recovery(
        self,
        stem: LeaseOwnerIdentity,
        *,
        runner: Runner | None = None,
        lease_ttl_ms: int = 30_000,
        renew_every_ms: int = 10_000,
        fleet_liveness: bool = False,
        max_runs: int = DEFAULT_MAX_RUNS,
        unrunnable: Literal["fail", "skip"] = "fail",
    ) -> Recovery:
        """A worker's recovery: ``sweep_once()``, ``run(every_s)``, ``execute``,
        ``drain`` (docs/recovery.md). ``max_runs`` bounds the rows this worker
        runs at once; ``unrunnable="skip"`` leaves rows that would run alone
        when there is no ``runner`` (else lash's placeholder fails them, SW-14)."""
        return Recovery(
            self,
            stem,
            runner=runner,
            lease_ttl_ms=lease_ttl_ms,
            renew_every_ms=renew_every_ms,
            fleet_liveness=fleet_liveness,
            max_runs=max_runs,
            unrunnable=unrunnable,
        )

    sweeper = recovery

    def worker(
        self,
        identity: LeaseOwnerIdentity,
        handlers: Mapping[str, Handler | HandlerSpec] | None = None,
        *,
        concurrency: int = 8,
        retry: JobRetry | None = None,
        lease_ttl_ms: int = 30_000,
        renew_every_ms: int = 10_000,
        sweep_every_s: float = 5.0,
        block_ms: int = 1_000,
        fleet_liveness: bool = True,
    ) -> Worker:
        """A worker running the jobs of the kinds in ``handlers`` (kind ->
        async handler taking a ``Job``), at most ``concurrency`` at once, a
        raising handler retried per ``retry``; ``await worker.run(stop=...)``
        serves (docs/workers.md)."""
        return Worker(
            self,
            identity,
            handlers,
            concurrency=concurrency,
            retry=retry,
            lease_ttl_ms=lease_ttl_ms,
            renew_every_ms=renew_every_ms,
            sweep_every_s=sweep_every_s,
            block_ms=block_ms,
            fleet_liveness=fleet_liveness,
        )

    async def submit(
        self,
        kind: str,
        payload: Any = None,
        *,
        id: str | None = None,
        disposition: RecoveryDisposition = RecoveryDisposition.RERUNNABLE,
        session: SessionScope | str | None = None,
        wake: bool = True,
        delay_s: float | None = None,
        label: str | None = None,
    ) -> ProcessRecord:
        """Register a job of ``kind`` for the workers: one free worker of the
        kind starts it at once, or after ``delay_s`` seconds (server clock).
        ``id`` (default: a new one) makes a repeat submit idempotent. With a
        ``session`` (its id or a ``SessionScope``) the job's terminal wakes
        that session unless ``wake=False``."""
        registration = job_registration(
            kind,
            payload,
            id=f"job-{uuid.uuid4().hex}" if id is None else id,
            disposition=disposition,
            session=session,
            wake=wake,
            label=label,
        )
        if delay_s is None:
            return await self.register_process(registration)
        if isinstance(delay_s, bool) or not isinstance(delay_s, int | float) or delay_s < 0:
            raise InvalidValue(f"delay_s must be a number of seconds >= 0, got {delay_s!r}")
        not_before = await self.server_time_ms() + round(delay_s * 1000)
        return await self.schedule_process(registration, not_before)

    async def trim_wakes(self, scope: SessionScope | str) -> int:
        """Trim a wake stream below what every consumer group acknowledged."""
        return await trim_wake_stream(self, scope)

    async def trim_fleet_notices(self) -> int:
        """Trim the fleet notices every fleet group acknowledged (fleet pods also
        do it every ``fleet.NOTICE_TRIM_EVERY_S``)."""
        trimmed = 0
        for stream in self.keys.fleet_streams():
            trimmed += await trim_acknowledged(self, stream)
        return trimmed

    async def drop_fleet_group(self, group: str) -> None:
        """Remove an application's fleet group (its notices are no longer kept
        for it); with no fleet group left, no notice is written and the
        stream goes."""
        id_bytes("group", group)
        notice_group = f"fleet:{group}"
        for stream in self.keys.fleet_streams():
            groups = stream + ":groups"
            with contextlib.suppress(ResponseError):
                await self.redis.xgroup_destroy(stream, notice_group)
            await self.redis.srem(groups, notice_group)
            if not await self.redis.scard(groups):
                await self.redis.delete(stream)
            else:
                await trim_acknowledged(self, stream)

    async def health(self, timeout: float = 1.0) -> Health:
        """For a pod's readiness probe: whether the server answers a ``PING``
        within ``timeout`` seconds, and how fast. Never raises for a server
        fault (that is the answer); a bad ``timeout`` is ``InvalidValue``."""
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise InvalidValue(f"timeout must be a positive number of seconds, got {timeout!r}")
        start = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                await self.redis.ping()
        except (TimeoutError, RedisError, OSError) as err:
            detail = f"no answer within {timeout} s" if isinstance(err, TimeoutError) else str(err)
            return Health(ok=False, latency_ms=None, error=f"{type(err).__name__}: {detail}")
        return Health(ok=True, latency_ms=(time.perf_counter() - start) * 1000, error=None)

    @property
    def server(self) -> Any:
        """The embedded server this bus started, if any (``LocalServer``)."""
        return self._owned_server
