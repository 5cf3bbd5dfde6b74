"""Shared pieces of the fault tests: servers per binary, a bus with a short
socket timeout, a unique-value workload and the log checker."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import lash_streams as ls
from lash_streams.bus import Bus
from lash_streams.errors import LashStreamsError
from lash_streams.server import LocalServer
from tests._servers import has_redis_server
from tests.conformance.fixtures import plain, reg

#: The binaries every fault runs on: the embedded Valkey, and Redis when
#: ``redis-server`` is on PATH (7.0 on the CI image).
BINARIES = [
    "valkey",
    pytest.param(
        "redis",
        marks=pytest.mark.skipif(not has_redis_server(), reason="redis-server not on PATH"),
    ),
]

#: The event type every workload appends: any JSON payload.
EVENT = "x"


def server(binary: str, **options: Any) -> LocalServer:
    """A (not yet started) local server of ``binary``; stop it yourself."""
    return LocalServer.redis(**options) if binary == "redis" else LocalServer(**options)


@contextlib.asynccontextmanager
async def running(binary: str, **options: Any) -> AsyncIterator[LocalServer]:
    started = await server(binary, **options).astart()
    try:
        yield started
    finally:
        await started.astop()


async def open_bus(
    url: str,
    namespace: str,
    *,
    socket_timeout: float | None = None,
    retry: ls.RetryPolicy | None = None,
    cluster: bool | None = None,
) -> Bus:
    """``ls.connect``, optionally with a shorter socket timeout than the
    library's 10 s (``?socket_timeout=`` in the URL, docs/operating.md)."""
    if socket_timeout is not None:
        url += ("&" if "?" in url else "?") + f"socket_timeout={socket_timeout}"
    return await ls.connect(url, namespace=namespace, retry=retry, cluster=cluster)


def new_namespace() -> str:
    return f"f{uuid.uuid4().hex[:10]}"


async def register(bus: Bus, pid: str) -> None:
    await bus.register_process(reg(pid, plain(EVENT)))


def request(value: str, *, keyed: bool = False) -> ls.ProcessEventAppendRequest:
    """An append whose payload is the unique ``value`` (its replay key too,
    when ``keyed``)."""
    req = ls.ProcessEventAppendRequest.new(EVENT, {"v": value})
    return req.with_replay_key(value) if keyed else req


@dataclass
class History:
    """What a workload meant to append to one process and what came of it:
    acknowledged (with the sequence the bus returned), unknown (the call
    raised a typed error after it may have been sent), refused (a typed
    error that proves nothing was written)."""

    pid: str
    acked: dict[str, int] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    errors: list[LashStreamsError] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    values: list[str]
    sequences: list[int]
    lost: set[str]
    duplicated: set[str]
    unexpected: set[str]


async def read_log(bus: Bus, history: History) -> Verdict:
    """Classify every value of ``history`` against the stored log."""
    events = await bus.events_after(history.pid, 0)
    values = [
        e.payload["v"]
        for e in events
        if e.event_type == EVENT and isinstance(e.payload, dict) and "v" in e.payload
    ]
    seen: set[str] = set()
    duplicated = {v for v in values if v in seen or seen.add(v)}  # type: ignore[func-returns-value]
    possible = set(history.acked) | history.unknown
    return Verdict(
        values=values,
        sequences=[e.sequence for e in events],
        lost=set(history.acked) - set(values),
        duplicated=duplicated,
        unexpected=set(values) - possible,
    )


def assert_gapless(sequences: Iterable[int]) -> None:
    found = list(sequences)
    assert found == list(range(1, len(found) + 1)), f"sequences not gapless: {found}"


def aof_tail(data_dir: Path) -> Path:
    """The AOF file new writes go to (the last ``incr`` file of a multi-part
    AOF, Redis >= 7 and Valkey)."""
    incr = sorted(
        (data_dir / "appendonlydir").glob("*.incr.aof"),
        key=lambda p: int(p.name.split(".")[-3]),
    )
    assert incr, f"no AOF increment file under {data_dir}"
    return incr[-1]


def lose_aof_tail(data_dir: Path, nbytes: int) -> int:
    """Cut the last ``nbytes`` of the AOF (what an OS crash loses of a file
    not yet fsynced; a SIGKILL alone loses nothing the server has written to
    the page cache). Returns how many bytes were cut."""
    path = aof_tail(data_dir)
    size = path.stat().st_size
    cut = min(nbytes, size)
    with path.open("r+b") as fh:
        fh.truncate(size - cut)
    return cut
