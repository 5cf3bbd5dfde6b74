"""Running one row under a renewed lease (SW-13): the renewer, the cancel
helpers and the outputs a run that cannot produce one ends with (SW-14)."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from msgspec import UNSET

from lash_streams import errors
from lash_streams import observability as obs
from lash_streams.errors import InvalidValue
from lash_streams.model import (
    AwaitFailure,
    ProcessAwaitOutput,
    ProcessLease,
    ProcessRecord,
    ToolFailureClass,
)
from lash_streams.semantics.inputs import require

if TYPE_CHECKING:
    from lash_streams.store import Store

#: Executes one row and returns its outcome; it may be cancelled (lease lost,
#: cancel requested).
Runner = Callable[[ProcessRecord, ProcessLease], Awaitable[ProcessAwaitOutput]]

#: A cancelled run (lease lost, cancel requested) is cancelled again after this
#: long if it is still going: its first cancel may have been dropped.
RUNNER_CANCEL_REPEAT_S = 5.0


class LeaseHolder:
    """Renews a run's lease every ``renew_every_ms``; on a refused renewal the
    lease is lost (a newer owner is the single writer) and the run cancelled."""

    def __init__(
        self, store: Store, lease: ProcessLease, *, ttl_ms: int, renew_every_ms: int
    ) -> None:
        self.store = store
        self.lease = lease
        self.ttl_ms = ttl_ms
        self.renew_every_ms = renew_every_ms
        self.lost = False

    async def keep(self, run: asyncio.Task[ProcessAwaitOutput], *, since_s: float = 0.0) -> None:
        """Until ``run`` ends; ``since_s``: how long ago the lease was taken
        (the first renewal is one period after that)."""
        every = self.renew_every_ms / 1000
        wait = max(0.0, every - since_s)
        while not run.done():
            await asyncio.sleep(wait)
            wait = every
            try:
                self.lease = await self.store.renew_process_lease(self.lease, self.ttl_ms)
            except errors.LeaseExpired:
                self.lost = True
                if obs.hooks is not None:
                    obs.hooks.lease_lost("run")
                await cancel_until_done(run, every_s=RUNNER_CANCEL_REPEAT_S)
                return
            except errors.BackendError:
                continue  # keep trying until the lease itself says it is gone


async def cancel_until_done(*tasks: asyncio.Task[Any], every_s: float = 0.25) -> None:
    """Cancel ``tasks`` until they end: on Python 3.11 a cancel that lands while
    redis-py is inside asyncio.wait_for can be dropped (CPython gh-86296). A
    longer ``every_s`` lets a runner's own cleanup finish before a repeat."""
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=every_s)


def stopping() -> bool:
    """Whether the current task itself is being cancelled (not just a task it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def recovery_failure(message: str, raw: dict[str, str] | None = None) -> AwaitFailure:
    return AwaitFailure(
        class_=ToolFailureClass.EXECUTION,
        code="process_recovery_failed",
        message=message,
        raw=UNSET if raw is None else raw,
    )


#: The end of a runner's traceback kept in its failure (``raw.traceback``).
MAX_TRACEBACK_CHARS = 8_000


def runner_failure(err: BaseException) -> AwaitFailure:
    """What a runner that raised ends as: the exception's type and message,
    and (in ``raw``) its qualified type and the end of its traceback, so the
    row says what went wrong where (issue 16: ``str(err)`` alone was ``'tool'``)."""
    kind = type(err)
    message = f"{kind.__name__}: {err}" if str(err) else kind.__name__
    trace = "".join(traceback.format_exception(err))[-MAX_TRACEBACK_CHARS:]
    return recovery_failure(
        message, {"exception": f"{kind.__module__}.{kind.__qualname__}", "traceback": trace}
    )


def check_settings(ttl_ms: int, renew_every_ms: int, max_runs: int, unrunnable: str) -> None:
    if isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1:
        raise InvalidValue(f"max_runs must be a positive integer, got {max_runs!r}")
    if unrunnable not in ("fail", "skip"):
        raise InvalidValue(f"unrunnable must be 'fail' or 'skip', got {unrunnable!r}")
    require(ttl_ms, int, "lease_ttl_ms")
    require(renew_every_ms, int, "renew_every_ms")
    if ttl_ms < 1 or renew_every_ms < 1 or ttl_ms < 3 * renew_every_ms:
        raise InvalidValue(
            "lease timings need ttl >= 1 ms, renew >= 1 ms, and a ttl at least 3 x renew "
            "(so a lease outlives two missed renewals), "
            f"got ttl={ttl_ms} renew={renew_every_ms}"
        )
