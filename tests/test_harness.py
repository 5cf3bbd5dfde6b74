"""The harness itself: servers, key hygiene, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from redis.asyncio import Redis

from lash_streams.errors import EmbeddedServerError
from lash_streams.server import LocalServer
from lash_streams.store.keys import retention_rule
from tests.conftest import _alive, _leftover_keys


async def test_key_hygiene_flags_a_stray_key(standalone_servers, namespace):
    url = next(iter(standalone_servers.values()))
    client = Redis.from_url(url)
    try:
        await client.set(f"{namespace}:stray", "x")
        await client.set(f"{namespace}:with-ttl", "x", px=60_000)
        assert await _leftover_keys(url, False, namespace) == [f"{namespace}:stray"]
        await client.delete(f"{namespace}:stray")
    finally:
        await client.aclose()


def test_retention_rules_cover_the_documented_keys():
    ns = "lash"
    for key in [
        "lash:p:{a%7Bb}",
        "lash:p:{x}:ev",
        "lash:p:{x}:lease",
        "lash:idx:{lash}:run",
        "lash:s:{session%3As}:grants",
        "lash:ss:{s}:targets",
    ]:
        assert retention_rule(ns, key) is not None, key
    assert retention_rule(ns, "lash:p:{x}:unknown") is None
    assert retention_rule(ns, "other:p:{x}") is None


def test_aof_server_keeps_data_across_restart():
    import redis

    with LocalServer(persistence="aof") as server:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        client.execute_command("BGREWRITEAOF")
        time.sleep(1.2)  # everysec fsync
        client.close()
        server.restart()
        client = redis.Redis.from_url(server.url)
        assert client.get("k") == b"v"
        client.close()


def test_non_persistent_server_loses_data_on_restart():
    import redis

    with LocalServer(persistence="none") as server:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        client.close()
        server.restart()
        client = redis.Redis.from_url(server.url)
        assert client.get("k") is None
        client.close()


def test_server_dies_with_a_sigkilled_parent():
    code = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {os.getcwd()!r})
        from lash_streams.server import LocalServer
        s = LocalServer().start()
        print(s.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    server_pid = int(parent.stdout.readline())
    assert _alive(server_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(server_pid)


def test_bad_binary_is_a_typed_error():
    with pytest.raises(EmbeddedServerError):
        LocalServer(binary="/nonexistent/valkey-server").start()
    with pytest.raises(EmbeddedServerError):
        LocalServer(persistence="sometimes")
