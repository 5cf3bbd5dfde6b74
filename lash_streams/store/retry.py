"""Connection-fault policy (RX-18, DESIGN "Known facts").

Reads and idempotent writes are retried on transient connection errors with
bounded, jittered backoff. A non-idempotent write (an append without a replay
key) is never retried: the caller gets ``WriteOutcomeUnknown``, because the
command may have executed before the reply was lost.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import BusyLoadingError, ClusterDownError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from lash_streams.errors import ConnectionFailed, WriteOutcomeUnknown

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
)


class RetryPolicy:
    def __init__(self, attempts: int = 5, max_delay_s: float = 10.0) -> None:
        self.attempts = attempts
        self.max_delay_s = max_delay_s

    async def idempotent(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run a read or an idempotent write, retrying transient faults. The
        first attempt is a plain call: the retry machinery starts after a fault."""
        try:
            return await call()
        except TRANSIENT as err:
            if self.attempts <= 1:
                raise ConnectionFailed(f"{what} failed after 1 attempt: {err}") from err
        # The wait tenacity would have made before its second attempt.
        await asyncio.sleep(random.uniform(0, 0.05))
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(TRANSIENT),
                stop=stop_after_attempt(self.attempts - 1) | stop_after_delay(self.max_delay_s),
                wait=wait_random_exponential(multiplier=0.05, max=1.0),
                reraise=False,
            ):
                with attempt:
                    return await call()
        except RetryError as err:
            cause = err.last_attempt.exception()
            raise ConnectionFailed(
                f"{what} failed after {self.attempts} attempts: {cause}"
            ) from cause
        raise AssertionError("unreachable")  # pragma: no cover

    async def once(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run a non-idempotent write exactly once."""
        try:
            return await call()
        except TRANSIENT as err:
            raise WriteOutcomeUnknown(
                f"{what}: the connection failed after the write was sent, so it may or may not "
                f"have been applied ({err}); it was not retried because a retry could duplicate "
                "it. Re-read the process, or append with a replay key to make retries safe."
            ) from err
