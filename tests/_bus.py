"""Bus fixtures shared by the registry-level test packages.

``bus`` runs a test against every backend the session has: the embedded
Valkey, Redis from ``redis-server`` when on PATH, a local 3-master cluster,
and ``lash_streams.testing`` (fakeredis). ``reopen()`` opens another,
independent bus on the same data (another client, as another worker would).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import lash_streams as ls
from lash_streams.bus import Bus

BACKENDS = ["valkey", "redis", "cluster", "fake"]


@pytest.fixture(params=BACKENDS)
async def bus_factory(
    request: pytest.FixtureRequest, namespace: str
) -> AsyncIterator[Callable[[], Awaitable[Bus]]]:
    name = request.param
    opened: list[Bus] = []
    if name == "fake":
        from lash_streams.testing import FakeServer, fake_bus

        server = FakeServer()

        async def make() -> Bus:
            bus = await fake_bus(namespace, server=server)
            opened.append(bus)
            return bus
    else:
        target: Any = request.getfixturevalue("servers").get(name)
        if target is None:
            pytest.skip(f"{name} is not available on this machine")
        url, cluster = target

        async def make() -> Bus:
            bus = await ls.connect(url, namespace=namespace, cluster=cluster)
            opened.append(bus)
            return bus

    yield make
    for bus in opened:
        await bus.aclose()


@pytest.fixture
async def bus(bus_factory: Callable[[], Awaitable[Bus]]) -> Bus:
    return await bus_factory()


@pytest.fixture
def reopen(bus: Bus, bus_factory: Callable[[], Awaitable[Bus]]) -> Callable[[], Awaitable[Bus]]:
    return bus_factory


@pytest.fixture(params=["valkey", "redis"])
async def standalone_bus(
    request: pytest.FixtureRequest, namespace: str
) -> AsyncIterator[tuple[Bus, str]]:
    """A bus on a real single-node server, with its URL (for fault injection)."""
    target: Any = request.getfixturevalue("servers").get(request.param)
    if target is None:
        pytest.skip(f"{request.param} is not available on this machine")
    url = target[0]
    bus = await ls.connect(url, namespace=namespace)
    yield bus, url
    await bus.aclose()


@pytest.fixture(params=["valkey", "redis", "cluster"])
async def real_bus(
    request: pytest.FixtureRequest, namespace: str
) -> AsyncIterator[tuple[Bus, str]]:
    """A bus on a real server (cluster included) and the URL another OS
    process can connect with (``redis+cluster://`` for the cluster)."""
    target: Any = request.getfixturevalue("servers").get(request.param)
    if target is None:
        pytest.skip(f"{request.param} is not available on this machine")
    url, cluster = target
    if cluster:
        url = url.replace("redis://", "redis+cluster://")
    bus = await ls.connect(url, namespace=namespace)
    yield bus, url
    await bus.aclose()
