"""The server options the fault tests rely on reach the server
(``lash_streams.server``: appendfsync, debug, maxmemory, replicas)."""

from __future__ import annotations

import pytest
import redis

from lash_streams.errors import EmbeddedServerError
from lash_streams.server import LocalServer

from ._tools import BINARIES, server

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("binary", BINARIES)
def test_fsync_debug_and_maxmemory_options(binary: str) -> None:
    """appendfsync, enable-debug-command and maxmemory are what was asked;
    DEBUG is refused without ``debug=True`` (Redis >= 7.0, Valkey)."""
    with server(binary, persistence="aof", appendfsync="always", debug=True, maxmemory="8mb") as s:
        client = redis.Redis.from_url(s.url)
        config = client.config_get("*")
        assert config["appendfsync"] == "always"
        assert config["maxmemory"] == str(8 * 1024 * 1024)
        assert config["maxmemory-policy"] == "noeviction"
        assert client.execute_command("DEBUG", "SLEEP", "0") in (b"OK", "OK", True)
        client.close()
    with server(binary) as plain:
        client = redis.Redis.from_url(plain.url)
        with pytest.raises(redis.ResponseError):
            client.execute_command("DEBUG", "SLEEP", "0")
        client.close()


def test_bad_appendfsync_is_a_typed_error() -> None:
    with pytest.raises(EmbeddedServerError, match="appendfsync"):
        LocalServer(appendfsync="sometimes")


@pytest.mark.parametrize("binary", BINARIES)
def test_replica_promote_and_failover(binary: str) -> None:
    """primary.replica() is linked and has the data; failover() swaps the
    roles; promote() makes a replica a master again."""
    with server(binary) as primary:
        client = redis.Redis.from_url(primary.url)
        client.set("k", "v")
        client.close()
        replica = primary.replica()
        try:
            assert replica.role == "slave" and replica.replica_of is primary
            assert redis.Redis.from_url(replica.url).get("k") == b"v"
            primary.failover(replica)
            assert (primary.role, replica.role) == ("slave", "master")
            assert primary.replica_of is replica and replica.replica_of is None
            primary.promote()
            assert primary.role == "master" and primary.replica_of is None
        finally:
            replica.stop()
