"""The embedded/local servers (lash_streams.server) and the suite's server
fixtures: start/stop, persistence across restart, no orphans, the cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from lash_streams.errors import EmbeddedServerError
from lash_streams.server import MARKER, LocalCluster, LocalServer, is_running, spawned_pids
from tests._servers import Backend, leftover_keys

ROOT = Path(__file__).resolve().parent.parent


def _wait_dead(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while is_running(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not is_running(pid)


def test_start_stop_embedded_server() -> None:
    server = LocalServer().start()
    pid, folder = server.pid, server.data_dir
    assert pid is not None and pid in spawned_pids()
    try:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert server.version.name == "valkey"
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        config = client.config_get("*")
        client.close()
        assert config["bind"] == "127.0.0.1"
        assert config["protected-mode"] == "yes"
        assert config["maxmemory-policy"] == "noeviction"
        assert config["appendonly"] == "no" and config["save"] == ""
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            assert MARKER.encode() in fh.read()  # what .ci/run looks for
    finally:
        server.stop()
    assert not is_running(pid)
    assert not folder.exists()
    server.stop()  # idempotent


def test_config_options_reach_the_server(tmp_path: Path) -> None:
    with LocalServer(data_dir=tmp_path, persistence="aof", keyspace_events="Ex") as server:
        client = redis.Redis.from_url(server.url)
        config = client.config_get("*")
        client.close()
        assert config["appendonly"] == "yes" and config["appendfsync"] == "everysec"
        assert set(config["notify-keyspace-events"]) == {"E", "x"}
        assert Path(config["dir"]) == tmp_path.resolve()
    assert tmp_path.exists()  # a folder the user chose is kept


def test_aof_survives_restart(tmp_path: Path) -> None:
    with LocalServer(persistence="aof", data_dir=tmp_path) as server:
        port, pid = server.port, server.pid
        client = redis.Redis.from_url(server.url)
        client.xadd("s", {"f": "v"}, id="1-0")
        client.close()
        server.restart()  # SIGTERM flushes the AOF
        assert server.port == port and server.pid != pid
        client = redis.Redis.from_url(server.url)
        assert client.xrange("s") == [(b"1-0", {b"f": b"v"})]
        client.close()


def test_aof_survives_a_crash_after_fsync() -> None:
    with LocalServer(persistence="aof") as server:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        client.close()
        time.sleep(1.3)  # appendfsync everysec
        server.restart(hard=True)  # SIGKILL: only what reached the disk survives
        client = redis.Redis.from_url(server.url)
        assert client.get("k") == b"v"
        client.close()


def test_non_persistent_server_loses_data_on_restart() -> None:
    with LocalServer() as server:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        client.close()
        server.restart()
        client = redis.Redis.from_url(server.url)
        assert client.get("k") is None
        client.close()


def test_redis_server_binary() -> None:
    try:
        server = LocalServer.redis()
    except EmbeddedServerError:
        pytest.skip("redis-server is not on PATH")
    with server:
        assert server.version.name == "redis"
        assert redis.Redis.from_url(server.url).ping()


async def test_async_context_manager() -> None:
    async with LocalServer() as server:
        pid = server.pid
        assert pid is not None
        client = AsyncRedis.from_url(server.url)
        assert await client.ping()
        await client.aclose()
    assert _wait_dead(pid, 1.0)


def test_a_server_started_on_a_short_lived_thread_outlives_it() -> None:
    # PDEATHSIG fires when the forking *thread* ends: servers must be forked
    # from a thread that lives as long as the interpreter.
    server = LocalServer()
    thread = threading.Thread(target=server.start)
    thread.start()
    thread.join()
    try:
        assert server.pid is not None
        time.sleep(0.3)
        assert server.running and is_running(server.pid)
    finally:
        server.stop()


def test_no_orphan_after_the_parent_is_sigkilled() -> None:
    code = textwrap.dedent(
        """
        import time
        from lash_streams.server import LocalServer
        server = LocalServer().start()
        print(server.pid, flush=True)
        time.sleep(60)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env)
    try:
        assert parent.stdout is not None
        server_pid = int(parent.stdout.readline())
        assert is_running(server_pid)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    assert _wait_dead(server_pid), "the server outlived its SIGKILLed parent"


def test_bad_binary_is_a_typed_error() -> None:
    with pytest.raises(EmbeddedServerError, match="cannot start"):
        LocalServer(binary="/nonexistent/valkey-server").start()
    with pytest.raises(EmbeddedServerError, match="persistence"):
        LocalServer(persistence="sometimes")


def test_a_server_that_exits_reports_its_log() -> None:
    server = LocalServer(extra_args=["--no-such-option", "1"])
    with pytest.raises(EmbeddedServerError, match="no-such-option"):
        server.start(timeout=5)
    assert server.pid is None


def test_a_taken_port_is_not_mistaken_for_ours() -> None:
    with LocalServer() as first:
        second = LocalServer(port=first.port)
        with pytest.raises(EmbeddedServerError):
            second.start(timeout=5)


@pytest.mark.cluster(only=True)
async def test_cluster_routes_keys_of_different_slots(backend: Backend) -> None:
    assert backend.is_cluster
    host, port = backend.url.removeprefix("redis://").rsplit(":", 1)
    client = RedisCluster(startup_nodes=[ClusterNode(host, int(port))])
    try:
        await client.initialize()
        keys = [f"k{i}" for i in range(30)]
        slots = {client.keyslot(k) for k in keys}
        owners = {client.get_node_from_key(k).name for k in keys}
        assert len(slots) > 1 and len(owners) == 3
        for key in keys:
            await client.set(key, key, px=60_000)
        assert [await client.get(k) for k in keys] == [k.encode() for k in keys]
    finally:
        await client.aclose()


async def test_backend_fixture(backend: Backend, namespace: str) -> None:
    assert backend.name in ("valkey", "redis", "custom")
    client = backend.client()
    try:
        assert await client.ping()
        await client.set(f"{namespace}:scratch", "x", px=60_000)
    finally:
        await client.aclose()


async def test_any_backend_includes_the_cluster(any_backend: Backend, namespace: str) -> None:
    client = any_backend.client()
    try:
        await client.set(f"{namespace}:a", "1", px=60_000)
        assert await client.get(f"{namespace}:a") == b"1"
    finally:
        await client.aclose()


@pytest.mark.no_key_hygiene
async def test_key_hygiene_flags_a_ttl_less_key(any_backend: Backend, namespace: str) -> None:
    client = any_backend.client()
    try:
        # Spread over slots so a cluster needs the scan on every master.
        stray = [f"{namespace}:stray{{{i}}}" for i in range(6)]
        for key in stray:
            await client.set(key, "x")
        await client.set(f"{namespace}:with-ttl", "x", px=60_000)
        bad = await leftover_keys(any_backend.url, any_backend.is_cluster, namespace)
        assert bad == sorted(stray)
        for key in stray:
            await client.delete(key)
    finally:
        await client.aclose()


async def test_cluster_restart_keeps_slots_and_aof_data() -> None:
    async with LocalCluster(persistence="aof") as local:
        host, port = local.startup_nodes[0]
        client = RedisCluster(host=host, port=port)
        keys = [f"r{i}" for i in range(10)]
        for key in keys:
            await client.set(key, key)
        await client.aclose()
        pids = local.pids
        await local.arestart()  # from a worker thread: the nodes must outlive it
        assert set(local.pids).isdisjoint(pids)
        client = RedisCluster(host=host, port=port)
        try:
            assert [await client.get(k) for k in keys] == [k.encode() for k in keys]
        finally:
            await client.aclose()
