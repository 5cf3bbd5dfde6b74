"""Wake streams as streams: a lost group, retention below what every group
acknowledged (``XTRIM MINID``), and the backlog gauges."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from lash_streams import observability as obs
from lash_streams.errors import InvalidValue
from lash_streams.ids import id_bytes
from lash_streams.model import SessionScope
from lash_streams.store.retry import group_missing

if TYPE_CHECKING:
    from lash_streams.observability.metrics import Metrics
    from lash_streams.store import Store

log = logging.getLogger("lash_streams.wakes")


async def sample_backlog(
    store: Store, group: str, streams: Sequence[str], metrics: Metrics
) -> None:
    """Set a group's lag, pending and oldest-pending-age gauges per stream from
    ``XINFO GROUPS`` (and ``XPENDING`` when something is pending)."""
    server_ms = await store.server_time_ms()
    for stream in streams:
        try:
            groups = await store.redis.xinfo_groups(stream)
            info = next((g for g in groups if text(g["name"]) == group), None)
            if info is None:
                continue
            pending = int(info["pending"])
            oldest_s = 0.0
            if pending:
                summary = await store.redis.xpending(stream, group)
                if summary["min"] is not None:
                    oldest_s = max(0, server_ms - _id(summary["min"])[0]) / 1000
        except ResponseError:
            continue  # a sample must never stop consumption; the read handles a lost group
        # Redis answers a null lag when it cannot tell (entries deleted mid-stream).
        lag = float("nan") if info.get("lag") is None else float(info["lag"])
        metrics.wake_backlog(group, stream, lag, pending, oldest_s)


#: How often a consumer repeats its warning while the server stays unreachable.
OUTAGE_LOG_EVERY_S = 30.0


class Outage:
    """A consumer's server faults, seen rather than silent (issue 16: during an
    outage ``next()`` returned None for ever, the pod looking healthy): a
    warning when an outage starts, again every ``OUTAGE_LOG_EVERY_S`` while it
    lasts and when it ends, and a counter per fault."""

    def __init__(self, who: str, group: str) -> None:
        self.who = who
        self.group = group
        self.since: float | None = None  # monotonic time the outage began
        self._logged = 0.0

    def fault(self, err: BaseException) -> None:
        now = time.monotonic()
        if self.since is None:
            self.since = self._logged = now
            log.warning(
                "%s: the server is unreachable (%s: %s); retrying",
                self.who,
                type(err).__name__,
                err,
            )
        elif now - self._logged >= OUTAGE_LOG_EVERY_S:
            self._logged = now
            log.warning(
                "%s: the server is still unreachable after %.0f s (%s)",
                self.who,
                now - self.since,
                err,
            )
        if obs.hooks is not None:
            obs.hooks.consumer_fault(self.group)

    def over(self) -> None:
        if self.since is not None:
            log.warning(
                "%s: the server answers again after %.1f s", self.who, time.monotonic() - self.since
            )
            self.since = None


#: The stream or its group is gone (server restarted without persistence,
#: stream deleted): the store's one test of it, under the wake layer's name.
group_lost = group_missing


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def scope_id_of(scope: object) -> str:
    """A scope's id from a ``SessionScope`` or a scope id string
    (``session:<session id>``, ``session:<session id>/frame:<frame id>``).
    Anything else is refused: a bare session id taken as a scope id would
    read a stream nothing writes to, silently (issue 16)."""
    if isinstance(scope, SessionScope):
        return scope.id()
    if isinstance(scope, str) and scope.startswith("session:") and len(scope) > len("session:"):
        id_bytes("scope id", scope)
        return scope
    hint = (
        f" (for session `{scope}` pass SessionScope(session_id={scope!r}) or 'session:{scope}')"
        if isinstance(scope, str)
        else ""
    )
    raise InvalidValue(
        f"a scope is a SessionScope or a scope id such as 'session:<session id>', "
        f"got {scope!r}{hint}"
    )


async def trim_wake_stream(store: Store, scope: SessionScope | str) -> int:
    """Trim a scope's wake stream below what every group acknowledged; returns
    the number of entries removed. Never trims a stream nobody consumes."""
    scope_id = scope_id_of(scope)
    return await trim_acknowledged(store, store.keys.wake_stream(scope_id))


async def trim_acknowledged(store: Store, stream: str) -> int:
    """Remove the entries of ``stream`` that every consumer group has read and
    acknowledged (below the oldest pending entry or last delivered id)."""
    try:
        groups = await store.redis.xinfo_groups(stream)
    except ResponseError:
        return 0
    if not groups:
        return 0
    floors: list[tuple[int, int]] = []
    for group in groups:
        # Read after XINFO: entries acked meanwhile leave nothing pending.
        summary = await store.redis.xpending(stream, group["name"]) if group["pending"] else None
        if summary and summary.get("min") is not None:
            floors.append(_id(summary["min"]))
        else:
            ms, seq = _id(group["last-delivered-id"])
            floors.append((ms, seq + 1))
    ms, seq = min(floors)
    removed: int = await store.redis.execute_command("XTRIM", stream, "MINID", f"{ms}-{seq}")
    return removed


def _id(value: Any) -> tuple[int, int]:
    ms, _, seq = text(value).partition("-")
    return int(ms), int(seq or 0)
