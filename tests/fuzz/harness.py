"""The fuzz property: a call returns a correct result or raises a typed
``LashStreamsError`` with a plain message, and a refused call leaves the
namespace exactly as it was (keys, types and sizes)."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from hypothesis import strategies as st

from lash_streams.bus import Bus
from lash_streams.errors import LashStreamsError

Target = Callable[[Bus, st.DataObject], Awaitable[None]]
#: Bus method name -> the fuzz target exercising it.
TARGETS: dict[str, Target] = {}

_SIZE = {
    "hash": "hlen",
    "stream": "xlen",
    "zset": "zcard",
    "set": "scard",
    "list": "llen",
    "string": "strlen",
}


def target(*methods: str) -> Callable[[Target], Target]:
    def register(fn: Target) -> Target:
        for method in methods:
            assert method not in TARGETS, method
            TARGETS[method] = fn
        return fn

    return register


def fresh(prefix: str = "f") -> str:
    """A new id per example: examples never see each other's writes."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def unique(raw: Any) -> Any:
    """``raw`` made unique per example when it is text (its hostile
    characters kept), else unchanged."""
    return f"{fresh()}-{raw}" if isinstance(raw, str) and raw else raw


async def snapshot(bus: Bus) -> dict[bytes, tuple[str, int, bool]]:
    """Every key of the bus's namespace: its type, size, and whether it has a
    TTL (such a key may expire between two snapshots)."""
    found: dict[bytes, tuple[str, int, bool]] = {}
    r = bus.redis
    async for key in r.scan_iter(match=f"{bus.keys.namespace}:*", count=1_000):
        kind = (await r.type(key)).decode()
        size = await getattr(r, _SIZE[kind])(key) if kind in _SIZE else -1
        found[key] = (kind, int(size), await r.pttl(key) > 0)
    return found


def unchanged(before: dict[bytes, Any], after: dict[bytes, Any]) -> bool:
    """Equal but for keys with a TTL that expired in between."""
    gone = {key for key in before.keys() - after.keys() if before[key][2]}
    return {k: v for k, v in before.items() if k not in gone} == after


def plain_message(err: LashStreamsError) -> None:
    message = str(err)
    assert message.strip(), f"{type(err).__name__} without a message"
    for raw in ("Traceback", "redis.exceptions", "msgspec.", "RecursionError"):
        assert raw not in message, f"raw detail in the message: {message[:300]}"


async def call(
    bus: Bus, make: Callable[[], Any], *, write: bool = True
) -> tuple[Any, LashStreamsError | None]:
    """Run ``make()`` (awaiting its result if it is awaitable): ``(result,
    None)``, or ``(None, error)`` for a typed refusal; for a write (``write``)
    the namespace must then be unchanged. Anything else fails the example."""
    before = await snapshot(bus) if write else None
    try:
        result = make()
        if inspect.isawaitable(result):
            result = await result
    except LashStreamsError as err:
        plain_message(err)
        if before is not None:
            after = await snapshot(bus)
            assert unchanged(before, after), f"refused ({err!r}) but the namespace changed"
        return None, err
    except BaseException as err:  # the property: nothing untyped escapes
        if isinstance(err, AssertionError | KeyboardInterrupt):
            raise
        raise AssertionError(
            f"untyped {type(err).__module__}.{type(err).__name__}: {str(err)[:300]}"
        ) from err
    return result, None


def is_text_id(value: Any) -> bool:
    """Whether ``value`` is an id the bus must accept."""
    if not isinstance(value, str) or not value:
        return False
    try:
        return len(value.encode("utf-8")) <= 512
    except UnicodeEncodeError:
        return False
