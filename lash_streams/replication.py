"""Writes that wait for replicas or an fsync (``connect(durability=...)``).

``WAIT`` and ``WAITAOF`` count the writes of the connection they are sent
on, and ``WAIT`` does not block inside a script or ``MULTI``. So each write
is followed, on its own connection and in the same round trip, by the wait:
a single write becomes a two-command pipeline, and a pipeline holding a
write gets the wait appended. Reads are sent as they are. A command not
known to be a read is taken for a write (a needless wait costs a round trip
at most, and returns at once when nothing new is pending).

The blocking client (``XREAD``/``XREADGROUP ... BLOCK``) is not wrapped: a
consumer-group read lost in a failover only means a redelivery.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import PipelineCommand
from redis.exceptions import AskError, ClusterDownError, MovedError, ResponseError, TryAgainError

from lash_streams.errors import DurabilityNotMet, InvalidValue, NotWritten
from lash_streams.model import Durability
from lash_streams.pool import BoundedCluster, GatedClusterPipeline

__all__ = [
    "ReplicatedCluster",
    "ReplicatedClusterPipeline",
    "ReplicatedPipeline",
    "ReplicatedRedis",
    "is_write",
]

# Commands lash-streams sends that never change data.
_READS = frozenset(
    {
        "PING", "ECHO", "TIME", "INFO", "CONFIG", "CLIENT", "COMMAND", "CLUSTER",
        "SCRIPT", "EVALSHA_RO", "EVAL_RO", "FCALL_RO", "MEMORY", "DBSIZE", "OBJECT",
        "WAIT", "WAITAOF", "READONLY", "SCAN", "HSCAN", "SSCAN", "ZSCAN",
        "GET", "MGET", "STRLEN", "EXISTS", "TYPE", "TTL", "PTTL",
        "HGET", "HMGET", "HGETALL", "HLEN", "HEXISTS", "HKEYS", "HVALS",
        "SMEMBERS", "SISMEMBER", "SCARD", "LRANGE", "LLEN",
        "ZRANGE", "ZRANGEBYSCORE", "ZREVRANGE", "ZREVRANGEBYSCORE", "ZSCORE",
        "ZMSCORE", "ZCARD", "ZCOUNT", "ZRANK",
        "XRANGE", "XREVRANGE", "XLEN", "XINFO", "XPENDING", "XREAD",
    }
)  # fmt: skip


def is_write(name: object) -> bool:
    """Whether a command (its first argument) may change data."""
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    if not isinstance(name, str):
        return True
    return name.split(" ", 1)[0].upper() not in _READS


def check_wait(durability: Durability, reply: Any) -> None:
    """Raise ``DurabilityNotMet`` unless the wait's reply meets the request."""
    if isinstance(reply, ResponseError):
        raise InvalidValue(f"the server refused the durability wait: {reply}") from reply
    if isinstance(reply, BaseException):
        raise reply
    timeout = durability.timeout_ms
    if durability.fsync:
        local, replicas = (int(x) for x in reply)
        if local >= 1 and replicas >= durability.replicas:
            return
        missing = [] if local >= 1 else ["the primary's fsync"]
        if replicas < durability.replicas:
            missing.append(f"{durability.replicas - replicas} replica fsync(s)")
        raise DurabilityNotMet(
            f"the write is applied on the primary but {' and '.join(missing)} did not "
            f"happen within {timeout} ms (WAITAOF): it may not survive a crash or "
            "failover; retry it with its replay key, or check the server and its replicas",
            wanted=durability.replicas,
            acknowledged=replicas,
            local_fsynced=local >= 1,
        )
    acked = int(reply)
    if acked >= durability.replicas:
        return
    raise DurabilityNotMet(
        f"the write is applied on the primary but only {acked} of {durability.replicas} "
        f"replica(s) acknowledged it within {timeout} ms (WAIT): a failover may lose it; "
        "retry it with its replay key, or check replication (INFO replication)",
        wanted=durability.replicas,
        acknowledged=acked,
    )


class ReplicatedPipeline(Pipeline):
    """A pipeline that appends the wait when it holds a write."""

    durability: Durability

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        stack = list(self.command_stack)
        if self.is_transaction or self.explicit_transaction:
            # Inside MULTI the wait would return at once: refuse rather than
            # pretend (lash-streams itself never sends a transaction).
            raise InvalidValue("durability waits do not support MULTI/EXEC pipelines")
        if not any(is_write(args[0]) for args, _ in stack):
            return await super().execute(raise_on_error)
        self.execute_command(*self.durability.wait_command())
        results = await super().execute(raise_on_error=False)
        wait_reply = results.pop()
        if raise_on_error:
            for index, result in enumerate(results):
                if isinstance(result, Exception):
                    self.annotate_exception(result, index + 1, stack[index][0])
                    raise result
        check_wait(self.durability, wait_reply)
        return results


class ReplicatedRedis(Redis):
    """A client whose writes wait as ``durability`` asks (see module doc)."""

    durability: Durability
    #: Scripts send through ``execute_command`` (not the pool's direct path).
    waits_for_writes = True

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Any:
        pipe = ReplicatedPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipe.durability = self.durability
        return pipe

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if not args or not is_write(args[0]):
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        pipe = self.pipeline(transaction=False)
        pipe.execute_command(*args, **options)
        results = await pipe.execute(raise_on_error=False)
        result = results[0]
        if isinstance(result, Exception):
            raise result
        return result


# -- a cluster ------------------------------------------------------------------
#
# A write and its wait must share a connection to the node that owns the
# write's slot. A single write goes to that node as a two-command pipeline on
# one of its connections. A cluster pipeline's writes are spread over nodes
# and connections the client picks, so after it each node that took a write
# gets a probe on one connection: a write of its own (a short-lived key in one
# of the written slots) and the wait. A node's replication stream is ordered,
# and the pipeline's replies came before the probe was sent, so a replica that
# has the probe has every write before it.

_REDIRECTS = (MovedError, AskError, TryAgainError, ClusterDownError)
_ATTEMPTS = 5


def hash_tag(key: bytes) -> bytes:
    """What a key's slot is computed from (the cluster spec's hash tag rule)."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _first_key(args: tuple[Any, ...]) -> bytes | None:
    name = _as_bytes(args[0]).upper()
    if name in (b"EVALSHA", b"EVAL", b"FCALL"):
        return _as_bytes(args[3]) if len(args) > 3 and int(args[2]) > 0 else None
    return _as_bytes(args[1]) if len(args) > 1 else None


class ReplicatedCluster(BoundedCluster):
    """A cluster client whose writes wait as ``durability`` asks."""

    durability: Durability
    #: Probe keys live under the bus's namespace (ACL ``~<ns>:*``), with a TTL.
    probe_prefix: str = "lash:durability"
    waits_for_writes = True

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        if shard_hint:
            raise InvalidValue("shard_hint is not supported on a cluster")
        return ReplicatedClusterPipeline(self, transaction)  # type: ignore[abstract]

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if not args or not is_write(args[0]) or "target_nodes" in kwargs:
            return await super().execute_command(*args, **kwargs)
        return await self.gated(lambda: self._write(args, kwargs))

    async def _node_of(self, args: tuple[Any, ...]) -> tuple[Any, int]:
        slot = await self._determine_slot(*args)
        return self.nodes_manager.get_node_from_slot(slot), slot

    async def _write(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not self._initialize:
            await self.initialize()
        last: Exception | None = None
        for attempt in range(_ATTEMPTS):
            node, _ = await self._node_of(args)
            commands = [
                PipelineCommand(0, *args, **kwargs),
                PipelineCommand(1, *self.durability.wait_command()),
            ]
            await node.execute_pipeline(commands)
            result = commands[0].result
            if isinstance(result, _REDIRECTS):
                # The write did not run there: learn the new owner, again.
                last = result
                await self.nodes_manager.initialize()
                await asyncio.sleep(0.05 * attempt)
                continue
            if isinstance(result, Exception):
                raise result
            check_wait(self.durability, commands[1].result)
            return result
        raise NotWritten(
            f"the write was redirected {_ATTEMPTS} times (a slot moving): not written, "
            f"safe to retry: {last}"
        )

    async def wait_for(self, writes: list[tuple[Any, ...]]) -> None:
        """The wait for writes a pipeline sent: one probe per node."""
        probes: dict[str, tuple[Any, bytes]] = {}
        for args in writes:
            key = _first_key(args)
            if key is None:
                continue
            node, _ = await self._node_of(args)
            probes.setdefault(node.name, (node, hash_tag(key)))
        for node, tag in probes.values():
            probe = f"{self.probe_prefix}:{{".encode() + tag + b"}"
            commands = [
                PipelineCommand(0, "SET", probe, 1, "PX", 60_000),
                PipelineCommand(1, *self.durability.wait_command()),
            ]
            await node.execute_pipeline(commands)
            if isinstance(commands[0].result, Exception):
                raise commands[0].result
            check_wait(self.durability, commands[1].result)


class ReplicatedClusterPipeline(GatedClusterPipeline):
    """A cluster pipeline followed by one wait per node it wrote to."""

    def __init__(self, client: ReplicatedCluster, transaction: Any | None = None) -> None:
        super().__init__(client, transaction)
        self._waiting_client = client
        self._writes: list[tuple[Any, ...]] = []

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if args and is_write(args[0]):
            self._writes.append(args)
        return super().execute_command(*args, **kwargs)

    async def execute(
        self, raise_on_error: bool = True, allow_redirections: bool = True
    ) -> list[Any]:
        writes, self._writes = self._writes, []
        results: list[Any] = await super().execute(raise_on_error, allow_redirections)
        if writes:
            await self._waiting_client.wait_for(writes)
        return results
