"""Server plumbing for the suite: the ``Backend`` value tests receive, key
hygiene (TTL-less keys need a retention rule) and the orphan check."""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from lash_streams.server import LocalCluster, LocalServer, is_running

#: Points the suite at one server instead of the ones it starts.
URL_ENV = "LASH_STREAMS_TEST_URL"
#: With ``URL_ENV``: an existing cluster for the ``cluster`` backend.
CLUSTER_URL_ENV = "LASH_STREAMS_TEST_CLUSTER_URL"

STANDALONE = ("valkey", "redis")
OVERRIDE = "custom"


def override_url() -> str | None:
    return os.environ.get(URL_ENV) or None


def standalone_names() -> list[str]:
    """The ``backend`` params: fixed names, so test ids are the same on every
    machine (a missing server is a skip, not a missing test)."""
    return [OVERRIDE] if override_url() else list(STANDALONE)


def has_redis_server() -> bool:
    return shutil.which("redis-server") is not None


@dataclass(frozen=True)
class Backend:
    """One server a test runs against.

    ``url`` is a plain ``redis://`` URL (the first node of a cluster);
    ``connect_url`` is what ``lash_streams.connect`` and worker subprocesses
    take (``redis+cluster://`` for a cluster)."""

    name: str
    url: str
    server: LocalServer | LocalCluster | None = None
    is_cluster: bool = False

    @property
    def connect_url(self) -> str:
        if self.is_cluster and self.url.startswith("redis://"):
            return "redis+cluster://" + self.url.removeprefix("redis://")
        return self.url

    def client(self) -> Any:
        """A fresh async client (``RedisCluster`` for a cluster); close it."""
        url = self.url.replace("redis+cluster://", "redis://")
        if self.is_cluster:
            return RedisCluster.from_url(url)
        return Redis.from_url(url)


async def _masters(url: str) -> list[str]:
    """``redis://host:port`` of every master a cluster node knows."""
    node = Redis.from_url(url.replace("redis+cluster://", "redis://"))
    try:
        raw = await node.execute_command("CLUSTER", "NODES")
    finally:
        await node.aclose()
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) > 2 and "master" in parts[2].split(","):
            found.append("redis://" + parts[1].split("@")[0].split(",")[0])
    return found


def _retention_rule() -> Callable[[str, str], str | None] | None:
    try:
        from lash_streams.store.keys import retention_rule
    except ImportError:
        return None
    return retention_rule


async def leftover_keys(url: str, cluster: bool, namespace: str) -> list[str]:
    """Keys under ``<namespace>:`` with no TTL that no retention rule covers
    (SCAN on every master of a cluster)."""
    rule = _retention_rule()
    if rule is None:
        warnings.warn(
            "lash_streams.store.keys.retention_rule is missing: key hygiene skipped",
            stacklevel=2,
        )
        return []
    urls = await _masters(url) if cluster else [url]
    bad: list[str] = []
    for node_url in urls:
        client = Redis.from_url(node_url)
        try:
            async for raw in client.scan_iter(match=f"{namespace}:*", count=1000):
                key = raw.decode(errors="replace")
                if await client.pttl(raw) == -1 and rule(namespace, key) is None:
                    bad.append(key)
        finally:
            await client.aclose()
    return sorted(bad)


async def check_key_hygiene(backend: Backend, namespace: str) -> None:
    bad = await leftover_keys(backend.url, backend.is_cluster, namespace)
    assert not bad, (
        f"{backend.name}: keys without a TTL that no retention rule covers "
        f"(lash_streams.store.keys.retention_rule / docs/keys.md): {bad}"
    )


def orphans(pids: list[int]) -> list[int]:
    return [pid for pid in pids if is_running(pid)]


def _describe() -> None:
    """Print the servers the suite will run on (``make servers``, CI)."""
    import subprocess

    from lash_streams.server import redis_binary, valkey_binary

    url = override_url()
    if url is not None:
        print(f"custom: {url} ({URL_ENV})")
        return
    binaries = {"valkey": valkey_binary(), "redis": redis_binary()}
    for name, binary in binaries.items():
        if binary is None:
            print(f"{name}: not installed (its tests skip)")
            continue
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
        print(f"{name}: {binary}: {out.stdout.strip()}")
    print(f"cluster: 3 masters of {'redis' if binaries['redis'] else 'valkey'}")


if __name__ == "__main__":
    _describe()
