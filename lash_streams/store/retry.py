"""Connection-fault policy (RX-18, DESIGN "Known facts") and the mapping of
every server error to a typed ``lash_streams.errors`` class.

Reads and idempotent writes are retried on transient faults with bounded,
jittered backoff; the first attempt is a plain call. A non-idempotent write (an
append without a replay key) is retried only after a fault that proves it did
not run (nothing was sent, or the server refused it before running it:
``LOADING``, ``CLUSTERDOWN``, ``TRYAGAIN``, ``READONLY``), and reported as
``NotWritten`` when those outlast the retries. A fault after the command may
have reached the server (a dropped connection, a timeout) is
``WriteOutcomeUnknown``: a retry could duplicate it.

- dropped or timed out after send: ConnectionFailed (idempotent, after the
  retries) or WriteOutcomeUnknown (once, not retried)
- refused connect, no pooled connection, LOADING, CLUSTERDOWN, TRYAGAIN (and
  the cluster client's "TTL exhausted" after its own redirections): retried;
  then ConnectionFailed (idempotent) or NotWritten (once)
- READONLY (a replica, a failover in progress): retried; then ReadOnlyReplica
- OOM: OutOfMemory; NOPERM or an ACL failure in a script: PermissionDenied;
  BUSY: ServerBusy; WRONGTYPE: WrongType; NOGROUP: GroupMissing; any other
  refusal: ServerError
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ClusterError,
    MaxConnectionsError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from lash_streams.errors import (
    ConnectionFailed,
    GroupMissing,
    InvalidValue,
    LashStreamsError,
    NotWritten,
    OutOfMemory,
    PermissionDenied,
    ReadOnlyReplica,
    ServerBusy,
    ServerError,
    WriteOutcomeUnknown,
    WrongType,
)

T = TypeVar("T")

# Faults that pass: a dropped connection, a server still loading its data, a
# cluster re-forming after a restart or failover.
TRANSIENT = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ConnectionResetError,
    ClusterDownError,
    TryAgainError,
    ReadOnlyError,
)


def never_ran(err: BaseException) -> bool:
    """A fault that proves the command did not run: it was never sent, or the
    server refused it before running it."""
    if isinstance(err, (BusyLoadingError, ClusterDownError, TryAgainError, ReadOnlyError)):
        return True
    if isinstance(err, MaxConnectionsError) or redirected_out(err):
        return True
    if isinstance(err, RedisConnectionError):
        text = str(err)
        # redis-py raises these before a byte of the command was written.
        return (
            "connecting to" in text
            or "Connection refused" in text
            or "No connection available" in text
        )
    return isinstance(err, ConnectionRefusedError)


def redirected_out(err: BaseException) -> bool:
    """redis-py's cluster client follows MOVED, ASK and TRYAGAIN itself and,
    after 16 of them, raises ``ClusterError("TTL exhausted.")``: none of those
    attempts ran the command (a long slot migration answers TRYAGAIN until
    the slot's keys are together again). A TRYAGAIN, then."""
    return isinstance(err, ClusterError) and "TTL exhausted" in str(err)


def transient(err: BaseException) -> bool:
    return isinstance(err, TRANSIENT) or redirected_out(err)


def group_missing(err: RedisError) -> bool:
    """The stream or its consumer group does not exist (``NOGROUP``: never
    created, or the server lost it); fakeredis words the same condition
    differently."""
    text = str(err)
    return "NOGROUP" in text or "requires the key to exist" in text


def server_error(what: str, err: RedisError) -> LashStreamsError:
    """The typed error for a server's refusal (see the module table)."""
    text = str(err)
    cls: type[ServerError]
    if isinstance(err, OutOfMemoryError) or text.startswith("OOM"):
        cls = OutOfMemory
    elif isinstance(err, ReadOnlyError) or text.startswith("READONLY"):
        cls = ReadOnlyReplica
    elif isinstance(err, NoPermissionError) or "NOPERM" in text or "ACL failure" in text:
        cls = PermissionDenied
    elif text.startswith("BUSY ") or text.startswith("BUSY\n") or text == "BUSY":
        cls = ServerBusy
    elif text.startswith("WRONGTYPE"):
        cls = WrongType
    elif group_missing(err):
        cls = GroupMissing
    else:
        cls = ServerError
    return cls(f"{what}: the server refused it: {text}")


class RetryPolicy:
    """How a bus rides out transient faults (``connect(retry=...)``): a read or
    an idempotent write is tried up to ``attempts`` times within
    ``max_delay_s`` seconds, with jittered exponential waits of at most 1 s; a
    write that is not idempotent is retried only after a fault that proves it
    did not run (module docstring). Size ``max_delay_s`` to outlast a failover
    (docs/kubernetes.md)."""

    def __init__(self, attempts: int = 5, max_delay_s: float = 10.0) -> None:
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise InvalidValue(f"attempts must be an int of at least 1, got {attempts!r}")
        if (
            isinstance(max_delay_s, bool)
            or not isinstance(max_delay_s, int | float)
            or not 0 <= max_delay_s < float("inf")
        ):
            raise InvalidValue(f"max_delay_s must be a number of seconds >= 0, got {max_delay_s!r}")
        self.attempts = attempts
        self.max_delay_s = float(max_delay_s)

    async def idempotent(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run a read or an idempotent write, retrying transient faults. The
        first attempt is a plain call: the retry machinery starts after a fault."""
        try:
            return await call()
        except TRANSIENT as err:
            if self.attempts <= 1:
                raise _exhausted(what, 1, err) from err
        except RedisError as err:
            if not redirected_out(err):
                raise server_error(what, err) from err
            if self.attempts <= 1:
                raise _exhausted(what, 1, err) from err
        # The wait tenacity would have made before its second attempt.
        await asyncio.sleep(random.uniform(0, 0.05))
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(transient),
                stop=stop_after_attempt(self.attempts - 1) | stop_after_delay(self.max_delay_s),
                wait=wait_random_exponential(multiplier=0.05, max=1.0),
                reraise=False,
            ):
                with attempt:
                    return await call()
        except RetryError as err:
            cause = err.last_attempt.exception()
            assert cause is not None
            raise _exhausted(what, self.attempts, cause) from cause
        except RedisError as err:
            raise server_error(what, err) from err
        raise AssertionError("unreachable")  # pragma: no cover

    async def once(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run a non-idempotent write at most once: retried only after a fault
        that proves it did not run."""
        last: BaseException | None = None
        for attempt in range(max(1, self.attempts)):
            if attempt:
                await asyncio.sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)))
            try:
                return await call()
            except TRANSIENT as err:
                if not never_ran(err):
                    raise WriteOutcomeUnknown(
                        f"{what}: the connection failed after the write was sent, so it may "
                        f"or may not have been applied ({err}); it was not retried because a "
                        "retry could duplicate it. Re-read the process, or append with a "
                        "replay key to make retries safe."
                    ) from err
                last = err
            except RedisError as err:
                if not redirected_out(err):
                    raise server_error(what, err) from err
                last = err
        if isinstance(last, ReadOnlyError):
            raise server_error(what, last) from last
        raise NotWritten(
            f"{what} was not written: {last}; nothing was applied, so it is safe to retry"
        ) from last


def _exhausted(what: str, attempts: int, cause: BaseException) -> LashStreamsError:
    if isinstance(cause, RedisError) and isinstance(cause, ReadOnlyError):
        return server_error(what, cause)
    plural = "s" if attempts != 1 else ""
    return ConnectionFailed(f"{what} failed after {attempts} attempt{plural}: {cause}")
