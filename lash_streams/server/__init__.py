"""Private Redis-protocol servers on loopback (a surface): the embedded default
that ``connect()`` starts without a URL, and the test suite's servers.

``local`` owns a server's lifecycle, ``replicas`` its replication (start a
replica, promote, fail over), ``cluster`` the cluster's (replicas, failover,
slot moves); ``proc`` owns process spawning (never orphaned), ports and
binaries.
"""

from lash_streams.server.cluster import ClusterNodeState, LocalCluster
from lash_streams.server.local import AppendFsync, LocalServer
from lash_streams.server.proc import (
    DIR_PREFIX,
    MARKER,
    TAG_ENV,
    Persistence,
    ServerVersion,
    free_port,
    is_running,
    redis_binary,
    spawned_pids,
    valkey_binary,
)
from lash_streams.server.sentinel import LocalSentinel, LocalSentinelSet

__all__ = [
    "DIR_PREFIX",
    "MARKER",
    "TAG_ENV",
    "AppendFsync",
    "ClusterNodeState",
    "LocalCluster",
    "LocalSentinel",
    "LocalSentinelSet",
    "LocalServer",
    "Persistence",
    "ServerVersion",
    "free_port",
    "is_running",
    "redis_binary",
    "spawned_pids",
    "valkey_binary",
]
