"""``LocalCluster``: local servers joined into a Redis Cluster on loopback,
optionally with replicas (for ``CLUSTER FAILOVER``), and the slot moves a
resharding makes (``CLUSTER SETSLOT`` + ``MIGRATE``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import redis

from lash_streams.errors import EmbeddedServerError
from lash_streams.server.local import AppendFsync, LocalServer
from lash_streams.server.managed import Managed
from lash_streams.server.proc import (
    Persistence,
    ServerVersion,
    _command,
    redis_binary,
    valkey_binary,
)
from lash_streams.server.replicas import info

__all__ = ["ClusterNodeState", "LocalCluster"]

_SLOTS = 16384
#: How long a manual failover may take before the server aborts it (its
#: CLUSTER_MF_TIMEOUT is 5 s), plus slack.
_MANUAL_FAILOVER_S = 6.0


@dataclass(frozen=True)
class ClusterNodeState:
    """One line of ``CLUSTER NODES``: a node's id, port, role, its master's
    id (a replica) and the slots it serves (a master)."""

    node_id: str
    port: int
    role: str
    master_id: str | None
    slots: tuple[tuple[int, int], ...]

    def serves(self, slot: int) -> bool:
        return any(low <= slot <= high for low, high in self.slots)


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def parse_nodes(raw: Any) -> list[ClusterNodeState]:
    states = []
    for line in _text(raw).splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        flags = parts[2].split(",")
        slots: list[tuple[int, int]] = []
        for item in parts[8:]:
            if item.startswith("["):
                continue  # a slot being migrated or imported
            low, _, high = item.partition("-")
            slots.append((int(low), int(high or low)))
        states.append(
            ClusterNodeState(
                node_id=parts[0],
                port=int(parts[1].split("@")[0].split(",")[0].rsplit(":", 1)[1]),
                role="master" if "master" in flags else "replica",
                master_id=None if parts[3] == "-" else parts[3],
                slots=tuple(slots),
            )
        )
    return states


class LocalCluster(Managed):
    """``masters`` masters of one binary joined into a Redis Cluster on
    loopback (slots split evenly with ``CLUSTER ADDSLOTSRANGE``, nodes
    introduced with ``CLUSTER MEET``), each with ``replicas`` replicas
    (``CLUSTER REPLICATE``). ``nodes`` lists masters first, then replicas;
    roles change with ``failover()``, ``topology()`` says who is what now."""

    def __init__(
        self,
        masters: int = 3,
        *,
        replicas: int = 0,
        binary: str | None = None,
        keyspace_events: str = "",
        persistence: Persistence | str = "none",
        appendfsync: AppendFsync | str = "everysec",
        debug: bool = False,
    ) -> None:
        if masters < 1:
            raise EmbeddedServerError("a cluster needs at least one master")
        if replicas < 0:
            raise EmbeddedServerError("replicas must be >= 0")
        self.binary = binary or valkey_binary()
        self.masters = masters
        self.replicas = replicas
        self.keyspace_events = keyspace_events
        self.persistence = persistence
        self.appendfsync = appendfsync
        self.debug = debug
        self.nodes: list[LocalServer] = []

    @classmethod
    def redis(cls, masters: int = 3, **options: Any) -> LocalCluster:
        """A cluster of ``redis-server`` from PATH."""
        binary = redis_binary()
        if binary is None:
            raise EmbeddedServerError("redis-server is not on PATH")
        return cls(masters, binary=binary, **options)

    @property
    def url(self) -> str:
        """The first node; a cluster client discovers the rest."""
        if not self.nodes:
            raise EmbeddedServerError("the cluster has not been started")
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """(host, port) of every node, for ``ClusterNode(host, port)``."""
        return [("127.0.0.1", node.port) for node in self.nodes]

    @property
    def pids(self) -> list[int]:
        return [node.pid for node in self.nodes if node.pid is not None]

    @property
    def version(self) -> ServerVersion:
        if not self.nodes:
            raise EmbeddedServerError("the cluster has not been started")
        return self.nodes[0].version

    def start(self, timeout: float = 30.0) -> LocalCluster:
        if self.nodes:
            return self
        try:
            for _ in range(self.masters * (1 + self.replicas)):
                node = LocalServer(
                    binary=self.binary,
                    cluster=True,
                    keyspace_events=self.keyspace_events,
                    persistence=self.persistence,
                    appendfsync=self.appendfsync,
                    debug=self.debug,
                )
                self.nodes.append(node)
                node.start(timeout)
            per = _SLOTS // self.masters
            for index, node in enumerate(self.nodes[: self.masters]):
                low = index * per
                high = _SLOTS - 1 if index == self.masters - 1 else (index + 1) * per - 1
                _command(node.port, "CLUSTER", "ADDSLOTSRANGE", low, high)
            first = self.nodes[0].port
            for node in self.nodes[1:]:
                _command(node.port, "CLUSTER", "MEET", "127.0.0.1", first)
            deadline = time.monotonic() + timeout
            self._replicate(deadline)
            self._wait_ok(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _replicate(self, deadline: float) -> None:
        """Replica k of master m is node masters + m * replicas + k."""
        for index, replica in enumerate(self.nodes[self.masters :]):
            master = self.nodes[index // self.replicas]
            master_id = _text(_command(master.port, "CLUSTER", "MYID"))
            # CLUSTER REPLICATE needs the replica to know the master already.
            while master_id not in _text(_command(replica.port, "CLUSTER", "NODES")):
                if time.monotonic() > deadline:
                    raise EmbeddedServerError(f"node {replica.port} never met {master.port}")
                time.sleep(0.05)
            _command(replica.port, "CLUSTER", "REPLICATE", master_id)

    def topology(self, via: LocalServer | None = None) -> list[ClusterNodeState]:
        """``CLUSTER NODES`` as ``via`` (default: the first live node) sees it."""
        for node in [via] if via is not None else self.nodes:
            if node is not None and node.running:
                return parse_nodes(_command(node.port, "CLUSTER", "NODES"))
        raise EmbeddedServerError("no cluster node is running")

    def node(self, port: int) -> LocalServer:
        for node in self.nodes:
            if node.port == port:
                return node
        raise EmbeddedServerError(f"no node of this cluster on port {port}")

    def primaries(self) -> list[LocalServer]:
        """The nodes that are masters now."""
        return [self.node(s.port) for s in self.topology() if s.role == "master"]

    def master_for(self, key: str) -> LocalServer:
        """The master serving ``key``'s slot now."""
        slot = int(_command(self.nodes[0].port, "CLUSTER", "KEYSLOT", key))
        for state in self.topology():
            if state.role == "master" and state.serves(slot):
                return self.node(state.port)
        raise EmbeddedServerError(f"no master serves slot {slot}")

    def replicas_of(self, master: LocalServer) -> list[LocalServer]:
        states = self.topology()
        master_id = next(s.node_id for s in states if s.port == master.port)
        return [self.node(s.port) for s in states if s.master_id == master_id]

    def failover(self, replica: LocalServer, timeout: float = 30.0) -> None:
        """``CLUSTER FAILOVER`` on ``replica`` (a coordinated failover: its
        master stops writes until the replica caught up, then they swap) and
        wait until every node sees it as a master and the cluster is ok. A
        manual failover the replica could not finish in time (it must catch
        up with its master within 5 s, hard under load) is aborted by the
        server: it is asked again until ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                _command(replica.port, "CLUSTER", "FAILOVER")
            attempt_ends = min(deadline, time.monotonic() + _MANUAL_FAILOVER_S)
            while time.monotonic() < attempt_ends:
                if self._sees_master(replica):
                    self._wait_ok(deadline)
                    return
                time.sleep(0.05)
        raise EmbeddedServerError(f"CLUSTER FAILOVER to {replica.port} did not complete")

    def _sees_master(self, node: LocalServer) -> bool:
        """Every running node sees ``node`` as a master."""
        try:
            views = [self.topology(n) for n in self.nodes if n.running]
        except redis.RedisError:
            return False
        return all(any(s.port == node.port and s.role == "master" for s in v) for v in views)

    def move_slot(
        self, slot: int, to: LocalServer, *, batch: int = 100, pause_s: float = 0.0
    ) -> int:
        """Reshard one slot to the master ``to`` the way redis-cli does:
        IMPORTING on the target, MIGRATING on the source, ``MIGRATE`` the keys
        in batches (``pause_s`` between them: a longer window in which the
        slot's keys are split over two nodes), then ``SETSLOT NODE``
        everywhere. Meanwhile a command finds its keys with ASK redirections,
        or TRYAGAIN when they are split. Returns how many keys moved."""
        states = self.topology()
        source = self.node(next(s.port for s in states if s.role == "master" and s.serves(slot)))
        if source is to:
            return 0
        ids = {s.port: s.node_id for s in states}
        _command(to.port, "CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source.port])
        _command(source.port, "CLUSTER", "SETSLOT", slot, "MIGRATING", ids[to.port])
        moved = 0
        while True:
            keys = _command(source.port, "CLUSTER", "GETKEYSINSLOT", slot, batch)
            if not keys:
                break
            _command(source.port, "MIGRATE", "127.0.0.1", to.port, "", 0, 5000, "KEYS", *keys)
            moved += len(keys)
            time.sleep(pause_s)
        for port in (to.port, source.port):
            _command(port, "CLUSTER", "SETSLOT", slot, "NODE", ids[to.port])
        for state in states:
            if state.role == "master" and state.port not in (to.port, source.port):
                with contextlib.suppress(redis.RedisError):
                    _command(state.port, "CLUSTER", "SETSLOT", slot, "NODE", ids[to.port])
        return moved

    def restart(self, timeout: float = 30.0, *, hard: bool = False) -> LocalCluster:
        """Restart every node in place (same ports, folders and cluster config;
        data survives only with AOF) and wait for ``cluster_state:ok``."""
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            node.restart(max(deadline - time.monotonic(), 1.0), hard=hard)
        self._wait_ok(deadline)
        return self

    async def arestart(self, timeout: float = 30.0, *, hard: bool = False) -> LocalCluster:
        return await asyncio.to_thread(self.restart, timeout, hard=hard)

    async def afailover(self, replica: LocalServer, timeout: float = 30.0) -> None:
        await asyncio.to_thread(self.failover, replica, timeout)

    def _wait_ok(self, deadline: float) -> None:
        want = f"cluster_known_nodes:{len(self.nodes)}"
        states: dict[int, str] = {}
        while time.monotonic() < deadline:
            for node in self.nodes:
                with contextlib.suppress(redis.RedisError):
                    states[node.port] = _text(_command(node.port, "CLUSTER", "INFO"))
            if (
                len(states) == len(self.nodes)
                and all("cluster_state:ok" in s and want in s for s in states.values())
                and self._replicas_linked()
            ):
                return
            time.sleep(0.05)
        tails = "\n".join(f"--- node {n.port} ---\n{n._log_tail(8)}" for n in self.nodes)
        raise EmbeddedServerError(f"local cluster did not reach cluster_state:ok\n{tails}")

    def _replicas_linked(self) -> bool:
        if not self.replicas:
            return True
        with contextlib.suppress(redis.RedisError):
            states = self.topology()
            replicas = [s for s in states if s.role == "replica"]
            if len(replicas) != self.masters * self.replicas:
                return False
            return all(
                info(s.port, "replication").get("master_link_status") == "up" for s in replicas
            )
        return False

    def stop(self) -> None:
        nodes, self.nodes = self.nodes, []
        for node in nodes:
            node.stop()
