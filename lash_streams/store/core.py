"""The store's shared core: clients (blocking ones included), key layout,
scripts, retry policy, record assembly, and the cache of immutable
registrations the append path plans against.

Every part of the store (``processes``, ``append``, ``leases``, ...) is a
mixin over :class:`StoreCore` alone; what two parts share lives here or in a
helper module that takes the core (``worklist``, ``facets``)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lash_streams import observability as obs
from lash_streams.errors import LashStreamsError, UnknownProcess
from lash_streams.model import (
    AbandonRequest,
    DurabilityTier,
    ProcessExternalRef,
    ProcessRecord,
    ProcessRegistration,
    ProcessStarted,
    SessionScope,
    StatusRunning,
    WaitState,
)
from lash_streams.model import ProcessStatus as _Status
from lash_streams.model._codec import decode
from lash_streams.model.durability import Durability, DurabilityReport, assess
from lash_streams.semantics.inputs import require
from lash_streams.store.keys import Keyspace
from lash_streams.store.retry import RetryPolicy
from lash_streams.store.scripts import Scripts

if TYPE_CHECKING:
    from lash_streams.store.stream_waits import SharedReader

log = logging.getLogger("lash_streams.store")

_STATE_CACHE_SIZE = 10_000

#: Default dedupe window: a wake id delivered to a scope is not delivered again
#: to that scope for this long (server clock, ``SET NX PX``).
DEFAULT_WAKE_DEDUPE_WINDOW_MS = 60 * 60 * 1000


def fence_args(lease: Any) -> list[Any]:
    """The lease fields a fenced script checks; empty strings when unfenced."""
    if lease is None:
        return ["", "", "", ""]
    return [
        lease.lease_token,
        lease.owner.owner_id,
        lease.owner.incarnation_id,
        lease.fencing_token,
    ]


def fenced_error(process_id: str, what: str) -> Exception:
    from lash_streams.errors import LeaseFenced

    return LeaseFenced(
        f"process `{process_id}`: `{what}` rejected, the writer's lease is no longer the "
        "current live lease (superseded, released or expired)",
        process_id=process_id,
    )


def unreadable_row(process_id: str, err: Exception) -> None:
    """A stored record that does not decode: skipped by namespace-wide reads."""
    log.warning("process `%s`: its record does not decode, skipped: %s", process_id, err)
    if obs.hooks is not None:
        obs.hooks.unreadable_row()


def text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8") if isinstance(value, bytes) else value


@dataclass(slots=True)
class ProcessState:
    """What the append path plans with; the append script re-checks the
    registration hash and the terminal state and assigns the sequence itself,
    so a stale state costs a re-plan, never a wrong write. ``seq`` is the last
    sequence this client saw (informational)."""

    registration: ProcessRegistration
    registration_hash: str
    seq: int
    terminal: bool
    wake_target: SessionScope | None

    #: The last planning record and what it was built from: a process's
    #: appends plan against the same record until its state changes.
    _planned: tuple[ProcessRegistration, str, SessionScope | None, bool, ProcessRecord] | None = (
        field(default=None, repr=False, compare=False)
    )

    def copy(self) -> ProcessState:
        """A state to plan a batch's later items against (its earlier items
        applied), sharing the cached planning record while it holds."""
        return ProcessState(
            self.registration,
            self.registration_hash,
            self.seq,
            self.terminal,
            self.wake_target,
            self._planned,
        )

    def planning_record(self) -> ProcessRecord:
        reg = self.registration
        built = self._planned
        if (
            built is not None
            and built[0] is reg
            and built[1] == self.registration_hash
            and built[2] is self.wake_target
            and built[3] == self.terminal
        ):
            return built[4]
        record = ProcessRecord(
            id=reg.id,
            registration_hash=self.registration_hash,
            input=reg.input,
            disposition=reg.disposition,
            identity=reg.identity,
            event_types=reg.event_types,
            provenance=reg.provenance,
            env_ref=reg.env_ref,
            wake_target=self.wake_target,
            # Only terminal-ness matters for planning (EV-2.8); the script holds the truth.
            status=_TERMINAL_MARKER if self.terminal else StatusRunning(),
        )
        self._planned = (reg, self.registration_hash, self.wake_target, self.terminal, record)
        return record


# What a plain client takes of a cluster client's TLS settings.
_SSL_OPTIONS = frozenset(
    {
        "ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_include_verify_flags",
        "ssl_exclude_verify_flags", "ssl_ca_certs", "ssl_ca_data", "ssl_ca_path",
        "ssl_check_hostname", "ssl_min_version", "ssl_ciphers", "ssl_password",
    }
)  # fmt: skip


def _terminal_marker() -> Any:
    from lash_streams.model import AwaitSuccess, StatusCompleted

    return StatusCompleted(await_output=AwaitSuccess(value=None))


_TERMINAL_MARKER = _terminal_marker()


class StoreCore:
    wake_dedupe_window_ms: int = DEFAULT_WAKE_DEDUPE_WINDOW_MS
    #: Waiters share one blocking reader (set by ``connect`` on a single server).
    shares_waits: bool = False
    _node_clients: dict[tuple[str, int], Any] | None = None
    #: Set by ``connect`` from the server's settings (None: not known).
    durability_report: DurabilityReport | None = None

    def __init__(
        self,
        client: Any,
        blocking_client: Any,
        *,
        namespace: str,
        cluster: bool,
        durability: DurabilityTier,
        retry: RetryPolicy | None = None,
        index_shards: int = 1,
    ) -> None:
        self.redis = client
        self.blocking = blocking_client
        self._shared: SharedReader | None = None
        self.keys = Keyspace(namespace, index_shards)
        self.namespace = namespace
        self.cluster = cluster
        self.scripts = Scripts.register(client)
        self.retry = retry or RetryPolicy()
        self._durability = durability
        self._states: OrderedDict[str, ProcessState] = OrderedDict()
        self._registrations: OrderedDict[str, ProcessRegistration] = OrderedDict()

    def durability_tier(self) -> DurabilityTier:
        """DT-1: ``durable`` only when an acknowledged write survives both a
        server crash and a failover (``durability()`` says which, RX-13)."""
        if self.durability_report is not None:
            return self.durability_report.tier
        return self._durability

    def durability(self) -> DurabilityReport:
        """What an acknowledged write survives on this bus (process crash,
        server crash, failover), from ``connect(durability=...)`` and the
        server's settings read at connect time."""
        if self.durability_report is not None:
            return self.durability_report
        return assess(
            Durability(), appendonly=None, appendfsync=None, save=None, replicas_connected=None
        )

    async def server_time_ms(self) -> int:
        """The server clock (GEN-2): every ownership and expiry time uses it."""
        secs, micros = await self.command("read server time", "time")
        return int(secs) * 1000 + int(micros) // 1000

    async def command(self, what: str, method: str, *args: Any) -> Any:
        """One idempotent Redis command, retried on transient faults."""
        return await self.retry.idempotent(what, lambda: getattr(self.redis, method)(*args))

    # -- blocking reads --------------------------------------------------------

    def shared_reader(self) -> SharedReader | None:
        """The one blocking reader every waiter shares (store/stream_waits.py);
        None on a cluster (one XREAD cannot span slots) and on clients that are
        not a real connection pool (fakeredis)."""
        if self._shared is None and self.shares_waits:
            from lash_streams.store.stream_waits import SharedReader

            self._shared = SharedReader(self.blocking, self.redis)
        return self._shared

    async def close_shared_reader(self) -> None:
        if self._shared is not None:
            await self._shared.aclose()

    def blocking_for(self, key: str) -> Any:
        """The client for a blocking read of ``key``. In a cluster, a plain
        client of the key's node: the cluster client multiplexes poorly under
        many concurrent blocks."""
        if not self.cluster:
            return self.blocking
        return self._node_client(self.redis.get_node_from_key(key))

    def primary_clients(self) -> list[Any]:
        """One client per primary: the client itself on a single server, a
        plain client of each primary on a cluster (for a ``SCAN``)."""
        if not self.cluster:
            return [self.redis]
        return [self._node_client(node) for node in self.redis.get_primaries()]

    def _node_client(self, node: Any) -> Any:
        clients = self._node_clients
        if clients is None:
            clients = self._node_clients = {}
        client = clients.get((node.host, node.port))
        if client is None:
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            from lash_streams.store.node_client import NodeClient

            pool_kwargs = self.blocking.get_connection_kwargs()
            # The node's TLS as the cluster client's: a private CA and a
            # client certificate too, not just TLS on or off.
            tls = pool_kwargs.get("ssl", False) or "SSL" in getattr(
                pool_kwargs.get("connection_class"), "__name__", ""
            )
            ssl_options = {
                k: v for k, v in pool_kwargs.items() if k in _SSL_OPTIONS and v is not None
            }
            client = NodeClient(
                self.redis,
                host=node.host,
                port=node.port,
                decode_responses=False,
                socket_timeout=pool_kwargs.get("socket_timeout"),
                retry=Retry(NoBackoff(), 0),
                username=pool_kwargs.get("username"),
                password=pool_kwargs.get("password"),
                ssl=bool(tls),
                **(ssl_options if tls else {}),
            )
            clients[(node.host, node.port)] = client
        return client

    async def close_node_clients(self) -> None:
        # Detach the set before the first await: a concurrent call may open
        # a client for another node meanwhile (into a new set).
        clients, self._node_clients = self._node_clients, None
        for client in (clients or {}).values():
            await client.aclose()

    # -- record assembly -------------------------------------------------------

    def registration_of(self, reg_hash: str, reg_json: bytes) -> ProcessRegistration:
        cached = self._registrations.get(reg_hash)
        if cached is None:
            cached = self.know_registration(reg_hash, decode(reg_json, ProcessRegistration))
        return cached

    def know_registration(
        self, reg_hash: str, registration: ProcessRegistration
    ) -> ProcessRegistration:
        """Cache a registration by its hash (the registering client has it
        already; decoding it back would cost more than the round trip)."""
        self._registrations[reg_hash] = registration
        if len(self._registrations) > _STATE_CACHE_SIZE:
            self._registrations.popitem(last=False)
        return registration

    def record_from_fields(self, fields: dict[bytes, bytes]) -> ProcessRecord:
        reg_hash = text(fields[b"hash"])
        reg = self.registration_of(reg_hash, fields[b"reg"])
        wt = fields.get(b"wt") or b""
        status = fields.get(b"status")
        started = fields.get(b"started")
        abandon = fields.get(b"abandon")
        wait = fields.get(b"wait")
        xref = fields.get(b"xref")
        return ProcessRecord(
            id=reg.id,
            registration_hash=reg_hash,
            input=reg.input,
            disposition=reg.disposition,
            identity=reg.identity,
            event_types=reg.event_types,
            provenance=reg.provenance,
            env_ref=reg.env_ref,
            wake_target=decode(wt, SessionScope) if wt else None,
            created_at_ms=int(fields[b"created"]),
            updated_at_ms=int(fields[b"updated"]),
            external_ref=decode(xref, ProcessExternalRef) if xref else None,
            first_started=decode(started, ProcessStarted) if started else None,
            abandon_request=decode(abandon, AbandonRequest) if abandon else None,
            wait=decode(wait, WaitState) if wait else None,
            status=decode(status, _Status) if status else StatusRunning(),  # type: ignore[arg-type]
        )

    def remember(self, process_id: str, fields: dict[bytes, bytes]) -> ProcessState:
        reg_hash = text(fields[b"hash"])
        wt = fields.get(b"wt") or b""
        state = ProcessState(
            registration=self.registration_of(reg_hash, fields[b"reg"]),
            registration_hash=reg_hash,
            seq=int(fields[b"seq"]),
            terminal=fields.get(b"term") == b"1",
            wake_target=decode(wt, SessionScope) if wt else None,
        )
        self._states[process_id] = state
        self._states.move_to_end(process_id)
        if len(self._states) > _STATE_CACHE_SIZE:
            self._states.popitem(last=False)
        return state

    def forget(self, process_id: str) -> None:
        self.keys.process(process_id)  # checks the id before the cache hashes it
        self._states.pop(process_id, None)

    def cached_state(self, process_id: str) -> ProcessState | None:
        self.keys.process(process_id)  # checks the id before the cache hashes it
        return self._states.get(process_id)

    async def record_fields(self, process_id: str) -> dict[bytes, bytes]:
        key = self.keys.process(process_id).record
        fields: dict[bytes, bytes] = await self.retry.idempotent(
            f"read process `{process_id}`", lambda: self.redis.hgetall(key)
        )
        return fields

    async def load_state(self, process_id: str) -> ProcessState:
        fields = await self.record_fields(process_id)
        if not fields:
            self.forget(process_id)
            raise UnknownProcess(process_id)
        return self.remember(process_id, fields)

    async def state(self, process_id: str) -> ProcessState:
        cached = self.cached_state(process_id)
        return cached if cached is not None else await self.load_state(process_id)

    async def require_exists(self, process_id: str) -> None:
        key = self.keys.process(process_id).record
        exists = await self.retry.idempotent("check process", lambda: self.redis.exists(key))
        if not exists:
            raise UnknownProcess(process_id)

    async def require_record(self, process_id: str) -> ProcessRecord:
        fields = await self.record_fields(process_id)
        if not fields:
            raise UnknownProcess(process_id)
        return self.record_from_fields(fields)

    async def record_fields_many(self, process_ids: list[str]) -> list[dict[bytes, bytes]]:
        """The record fields of many ids in one pipeline (empty for a missing one)."""
        require(process_ids, list | tuple, "process_ids")
        if not process_ids:
            return []
        keys = [self.keys.process(pid).record for pid in process_ids]

        async def run() -> list[dict[bytes, bytes]]:
            pipe = self.redis.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(key)
            result: list[dict[bytes, bytes]] = await pipe.execute()
            return result

        return await self.retry.idempotent("read process records", run)

    async def gather_records(self, process_ids: list[str]) -> list[ProcessRecord]:
        """Records of many ids in one pipeline; ids without a record are dropped
        (stale index entries are harmless by design, RX-2), and so is a record
        that does not decode (written by another tool or an older version):
        logged and counted, it never fails a namespace-wide read."""
        rows = await self.record_fields_many(process_ids)
        records: list[ProcessRecord] = []
        for pid, row in zip(process_ids, rows, strict=True):
            if not row:
                continue
            try:
                records.append(self.record_from_fields(row))
            except (LashStreamsError, ValueError, KeyError) as err:
                unreadable_row(pid, err)
        return records
