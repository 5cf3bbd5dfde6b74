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

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from lash_streams.errors import DurabilityNotMet, InvalidValue
from lash_streams.model import Durability

__all__ = ["ReplicatedPipeline", "ReplicatedRedis", "is_write"]

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
