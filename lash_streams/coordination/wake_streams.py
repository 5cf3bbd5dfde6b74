"""Wake streams as streams: a lost group, retention below what every group
acknowledged (``XTRIM MINID``), and the backlog gauges."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from lash_streams.errors import InvalidValue
from lash_streams.ids import id_bytes
from lash_streams.model import SessionScope

if TYPE_CHECKING:
    from lash_streams.observability.metrics import Metrics
    from lash_streams.store import Store


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


def group_lost(err: ResponseError) -> bool:
    """The stream or its group is gone (server restarted without persistence,
    stream deleted); fakeredis words the same condition differently."""
    return "NOGROUP" in str(err) or "requires the key to exist" in str(err)


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
