"""Replication of local servers: start a replica of a running server, wait
until it caught up, promote it (``REPLICAOF NO ONE``) or hand it the primary
role (``FAILOVER``, Redis/Valkey >= 6.2)."""

from __future__ import annotations

import time
from typing import Any, Self, cast

import redis

from lash_streams.errors import EmbeddedServerError
from lash_streams.server.proc import _client

__all__ = ["Replication", "info"]

#: The key ``wait_replicated`` writes to have an offset to ``WAIT`` for.
_PROBE = "lash-streams:replication-probe"


def info(port: int, section: str) -> dict[str, Any]:
    """``INFO section`` of the server on ``port``."""
    client = _client(port)
    try:
        found: dict[str, Any] = client.info(section)
        return found
    finally:
        client.close()


def _wait(what: str, check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            pass
        time.sleep(0.02)
    raise EmbeddedServerError(f"{what}: not reached in {timeout:g} s")


class Replication:
    """What a ``LocalServer`` does as a primary or a replica (a mixin: the
    server class is not imported here, ``local`` imports this module)."""

    port: int
    binary: str
    debug: bool
    replica_of: Any

    @property
    def role(self) -> str:
        """``master`` or ``slave``, as the server says now."""
        return str(info(self.port, "replication")["role"])

    def replica(self, timeout: float = 15.0, **options: Any) -> Self:
        """Start a replica of this (running) server, same binary, and wait
        until its link is up and it has every write made so far. Stop it
        yourself (``stop()``)."""
        options.setdefault("binary", self.binary)
        options.setdefault("debug", self.debug)
        factory: Any = type(self)
        replica = factory(replica_of=self, **options)
        replica.start(timeout)
        try:
            self.wait_replicated(timeout, include=replica.port)
        except BaseException:
            replica.stop()
            raise
        return cast(Self, replica)

    def wait_link_up(self, timeout: float = 15.0) -> None:
        """As a replica: wait for ``master_link_status:up`` (the first sync done)."""
        _wait(
            f"replica on port {self.port}: master link up",
            lambda: info(self.port, "replication").get("master_link_status") == "up",
            timeout,
        )

    def wait_replicated(self, timeout: float = 15.0, *, include: int | None = None) -> None:
        """As a primary: wait until every connected replica has every write
        made so far (``include``: the replica on that port must be among
        them). A probe write (a key that expires in a second) and
        ``WAIT`` on its connection: the server asks its replicas for an
        acknowledgement at once instead of waiting for their 1 s heartbeat."""
        deadline = time.monotonic() + timeout

        def online() -> list[dict[str, Any]]:
            now = info(self.port, "replication")
            return [
                v
                for k, v in now.items()
                if k.startswith("slave") and k[5:].isdigit() and isinstance(v, dict)
            ]

        def ready() -> bool:
            replicas = online()
            return include is None or any(int(r["port"]) == include for r in replicas)

        _wait(f"replica on port {include} connected to {self.port}", ready, timeout)
        count = len(online())
        client = _client(self.port, timeout=timeout + 1)
        try:
            client.set(_PROBE, 1, px=1000)
            left_ms = max(1, int((deadline - time.monotonic()) * 1000))
            acked = int(client.execute_command("WAIT", count, left_ms))  # type: ignore[no-untyped-call]
        finally:
            client.close()
        if acked < count:
            raise EmbeddedServerError(
                f"replicas of port {self.port}: {acked} of {count} caught up in {timeout:g} s"
            )

    def promote(self, timeout: float = 15.0) -> None:
        """As a replica: ``REPLICAOF NO ONE`` (a manual promotion: the old
        primary stays a primary, nothing tells it)."""
        client = _client(self.port)
        try:
            client.execute_command("REPLICAOF", "NO", "ONE")  # type: ignore[no-untyped-call]
        finally:
            client.close()
        self.replica_of = None
        _wait(f"port {self.port} promoted", lambda: self.role == "master", timeout)

    def failover(self, to: Self, timeout: float = 15.0) -> None:
        """As a primary: ``FAILOVER TO`` the replica ``to`` (writes paused
        until it caught up, then the roles swap: this server becomes its
        replica). Redis/Valkey >= 6.2."""
        client = _client(self.port)
        try:
            client.execute_command(  # type: ignore[no-untyped-call]
                "FAILOVER", "TO", "127.0.0.1", to.port, "TIMEOUT", int(timeout * 1000)
            )
        finally:
            client.close()
        _wait(
            f"failover from port {self.port} to {to.port}",
            lambda: to.role == "master" and self.role == "slave",
            timeout,
        )
        to.replica_of = None
        self.replica_of = to
        self.wait_link_up(timeout)
