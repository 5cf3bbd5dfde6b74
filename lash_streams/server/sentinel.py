"""A local Sentinel set: a primary, its replicas and N sentinels watching
them, all on loopback, for tests and for trying ``redis+sentinel://`` URLs.

``failover()`` asks a sentinel to promote a replica (``SENTINEL FAILOVER``)
and waits until every sentinel names the new primary and it answers as one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lash_streams.errors import EmbeddedServerError
from lash_streams.server.local import LocalServer
from lash_streams.server.managed import Managed
from lash_streams.server.proc import _client, _command, _proc_title

__all__ = ["LocalSentinel", "LocalSentinelSet"]


class LocalSentinel(LocalServer):
    """One sentinel process (the server binary with ``--sentinel``) watching
    ``service`` at ``127.0.0.1:primary_port``."""

    def __init__(
        self,
        service: str,
        primary_port: int,
        *,
        binary: str | None = None,
        quorum: int = 2,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 10_000,
    ) -> None:
        super().__init__(binary=binary)
        self.service = service
        self.primary_port = primary_port
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms

    @property
    def config_path(self) -> Path:
        return self.data_dir / "sentinel.conf"

    def _args(self) -> list[str]:
        # A sentinel rewrites its own file as it learns the set; a restart
        # keeps what it learned.
        path = self.config_path
        if not path.exists() or f"port {self.port}\n" not in path.read_text():
            s = self.service
            self.config_path.write_text(
                f"port {self.port}\n"
                "bind 127.0.0.1\n"
                f"dir {self.data_dir}\n"
                f"logfile {self.log_path}\n"
                f"sentinel monitor {s} 127.0.0.1 {self.primary_port} {self.quorum}\n"
                f"sentinel down-after-milliseconds {s} {self.down_after_ms}\n"
                f"sentinel failover-timeout {s} {self.failover_timeout_ms}\n"
                f"sentinel parallel-syncs {s} 1\n"
            )
        return [
            self.binary,
            str(self.config_path),
            "--sentinel",
            "--proc-title-template",
            _proc_title(),
        ]


class LocalSentinelSet(Managed):
    """A primary, ``replicas`` replicas and ``sentinels`` sentinels (quorum: a
    majority). ``url`` is the ``redis+sentinel://`` URL a bus connects with."""

    def __init__(
        self,
        *,
        replicas: int = 1,
        sentinels: int = 3,
        service: str = "lash-primary",
        binary: str | None = None,
        down_after_ms: int = 1000,
    ) -> None:
        if replicas < 1 or sentinels < 1:
            raise EmbeddedServerError("a sentinel set needs a replica and a sentinel")
        self.binary = binary
        self.service = service
        self.replica_count = replicas
        self.sentinel_count = sentinels
        self.down_after_ms = down_after_ms
        self.servers: list[LocalServer] = []
        self.sentinels: list[LocalSentinel] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}"

    @property
    def pids(self) -> list[int]:
        return [n.pid for n in (*self.servers, *self.sentinels) if n.pid is not None]

    def start(self, timeout: float = 30.0) -> LocalSentinelSet:
        if self.servers:
            return self
        deadline = time.monotonic() + timeout
        try:
            # No 5 s wait for more replicas before a full sync.
            quick = ["--repl-diskless-sync-delay", "0"]
            primary = LocalServer(binary=self.binary, extra_args=quick).start(timeout)
            self.servers.append(primary)
            for _ in range(self.replica_count):
                replica = LocalServer(
                    binary=self.binary,
                    extra_args=[*quick, "--replicaof", "127.0.0.1", str(primary.port)],
                )
                self.servers.append(replica)
                replica.start(timeout)
            for replica in self.servers[1:]:
                self._wait(deadline, lambda r=replica: _linked(r.port), "replica link")
            quorum = self.sentinel_count // 2 + 1
            for _ in range(self.sentinel_count):
                sentinel = LocalSentinel(
                    self.service,
                    primary.port,
                    binary=self.binary,
                    quorum=quorum,
                    down_after_ms=self.down_after_ms,
                )
                self.sentinels.append(sentinel)
                sentinel.start(timeout)
            self._wait(deadline, self._settled, "sentinels to see every replica and each other")
        except BaseException:
            self.stop()
            raise
        return self

    def _settled(self) -> bool:
        for sentinel in self.sentinels:
            master = _pairs(_command(sentinel.port, "SENTINEL", "MASTER", self.service))
            if int(master.get("num-slaves", 0)) < self.replica_count:
                return False
            if int(master.get("num-other-sentinels", 0)) < self.sentinel_count - 1:
                return False
        return True

    def primary_port(self) -> int:
        """The primary's port as the first sentinel names it."""
        reply = _command(
            self.sentinels[0].port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service
        )
        return int(reply[1])

    def server_on(self, port: int) -> LocalServer:
        for server in self.servers:
            if server.port == port:
                return server
        raise EmbeddedServerError(f"no server of this set listens on {port}")

    @property
    def primary(self) -> LocalServer:
        return self.server_on(self.primary_port())

    def failover(self, timeout: float = 30.0) -> int:
        """Promote a replica (``SENTINEL FAILOVER``); wait until every sentinel
        names it, it answers as a primary and the old primary has become its
        replica. Returns its port.

        Until that last step the old primary still takes writes from clients
        connected to it, and loses them when it is demoted (writes that wait
        for a replica, ``Durability(replicas=1)``, fail there instead)."""
        old = self.primary_port()
        deadline = time.monotonic() + timeout
        _command(self.sentinels[0].port, "SENTINEL", "FAILOVER", self.service)
        new = self.wait_for_new_primary(old, timeout)

        def demoted() -> bool:
            return _text(_command(old, "ROLE")[0]) in ("slave", "replica")

        self._wait(deadline, demoted, "the old primary to become a replica")
        return new

    def wait_for_new_primary(self, old: int, timeout: float = 30.0) -> int:
        """After a fault: wait until every sentinel names a primary other than
        ``old`` and that server answers ``role`` as master."""
        deadline = time.monotonic() + timeout

        def moved() -> bool:
            ports = {
                int(_command(s.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)[1])
                for s in self.sentinels
                if s.running
            }
            if len(ports) != 1 or old in ports:
                return False
            role = _command(ports.pop(), "ROLE")
            return bool(role) and _text(role[0]) == "master"

        self._wait(deadline, moved, "a new primary")
        return self.primary_port()

    def _wait(self, deadline: float, ready: Any, what: str) -> None:
        while time.monotonic() < deadline:
            try:
                if ready():
                    return
            except Exception:  # a node still starting or switching
                pass
            time.sleep(0.05)
        raise EmbeddedServerError(f"sentinel set: timed out waiting for {what}")

    def stop(self) -> None:
        for node in (*self.sentinels, *self.servers):
            node.stop()
        self.sentinels.clear()
        self.servers.clear()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(reply: Any) -> dict[str, Any]:
    if isinstance(reply, dict):
        return {_text(k): v for k, v in reply.items()}
    items = list(reply)
    return {_text(items[i]): _text(items[i + 1]) for i in range(0, len(items) - 1, 2)}


def _linked(port: int) -> bool:
    client = _client(port, timeout=1.0)
    try:
        info = client.info("replication")
        return info.get("master_link_status") == "up"
    finally:
        client.close()
