"""What a write must reach before a call returns, and what it then survives.

``Durability`` is what a user asks of ``connect()``; ``DurabilityReport`` is
what the bus can promise, from that request and the server's settings read at
connect time. Redis replication is asynchronous: without a wait, a failover
can lose acknowledged writes (docs/guarantees.md, "Durability")."""

from __future__ import annotations

import msgspec

from lash_streams.errors import InvalidValue
from lash_streams.model.process import DurabilityTier

__all__ = ["Durability", "DurabilityReport"]

#: The three answers a report gives per fault.
KEPT = "kept"
LOST = "lost"
UNKNOWN = "unknown"


class Durability(msgspec.Struct, frozen=True, kw_only=True):
    """``connect(url, durability=Durability(replicas=1))``.

    - ``replicas``: every write waits (``WAIT``) until this many replicas hold
      it. A failover to one of them keeps every acknowledged write.
    - ``fsync``: every write waits (``WAITAOF``, Redis 7.2+ / Valkey) until the
      primary, and the ``replicas`` counted, have fsynced it to their
      append-only file. A crash of the server keeps it.
    - ``timeout_ms``: how long one write waits. When the wait is not met the
      call raises ``errors.DurabilityNotMet``: the write *is* applied on the
      primary but may not survive the fault it was meant to survive.
    """

    replicas: int = 0
    fsync: bool = False
    timeout_ms: int = 1000

    def __post_init__(self) -> None:
        if type(self.replicas) is not int or self.replicas < 0:
            raise InvalidValue(f"replicas must be an int >= 0, got {self.replicas!r}")
        if type(self.fsync) is not bool:
            raise InvalidValue(f"fsync must be True or False, got {self.fsync!r}")
        if type(self.timeout_ms) is not int or not 0 < self.timeout_ms <= 3_600_000:
            # WAIT 0 blocks for ever: a dead replica would stop every writer.
            raise InvalidValue(
                f"timeout_ms must be an int between 1 and 3600000, got {self.timeout_ms!r}"
            )

    @property
    def waits(self) -> bool:
        """Whether writes wait at all (plain asynchronous writes otherwise)."""
        return self.replicas > 0 or self.fsync

    def wait_command(self) -> tuple[str | int, ...]:
        """The command sent after each write, on the write's connection."""
        if self.fsync:
            return ("WAITAOF", 1, self.replicas, self.timeout_ms)
        return ("WAIT", self.replicas, self.timeout_ms)


class DurabilityReport(msgspec.Struct, frozen=True, kw_only=True):
    """What an acknowledged write survives on this bus: ``kept``, ``lost``
    (some acknowledged writes can be lost; ``detail`` says which) or
    ``unknown`` (the server would not say: ``CONFIG``/``INFO`` refused).

    - ``process_crash``: the calling process dies after the call returned;
      always kept (the server holds the write).
    - ``server_crash``: the server is killed and restarted from its own disk.
    - ``failover``: a replica is promoted in the primary's place (Sentinel,
      Cluster, an operator's ``REPLICAOF NO ONE``).
    """

    requested: Durability
    appendonly: bool | None
    appendfsync: str | None
    replicas_connected: int | None
    process_crash: str
    server_crash: str
    failover: str
    detail: list[str]

    @property
    def tier(self) -> DurabilityTier:
        """lash's DT-1 tier: ``durable`` only when both a server crash and a
        failover keep every acknowledged write (RX-13); ``inline`` otherwise."""
        if self.server_crash == KEPT and self.failover == KEPT:
            return DurabilityTier.DURABLE
        return DurabilityTier.INLINE


def assess(
    requested: Durability,
    *,
    appendonly: bool | None,
    appendfsync: str | None,
    save: bool | None,
    replicas_connected: int | None,
) -> DurabilityReport:
    """The report for a request and the server settings read at connect."""
    detail: list[str] = []
    if requested.fsync:
        server_crash = KEPT
        detail.append("server crash: each write waits for the primary's AOF fsync (WAITAOF)")
    elif appendonly is None:
        server_crash = UNKNOWN
        detail.append("server crash: unknown (CONFIG GET refused)")
    elif appendonly and appendfsync == "always":
        server_crash = KEPT
        detail.append("server crash: AOF with appendfsync always fsyncs every write")
    elif appendonly:
        server_crash = LOST
        window = "about 1 s" if appendfsync == "everysec" else "up to ~30 s (the OS flush)"
        detail.append(f"server crash: AOF appendfsync {appendfsync}: the last {window} lost")
    else:
        server_crash = LOST
        detail.append(
            "server crash: no AOF: writes since the last RDB snapshot lost"
            if save
            else "server crash: no persistence: every write lost"
        )
    if requested.replicas > 0:
        failover = KEPT
        detail.append(
            f"failover: each write waits for {requested.replicas} replica(s); kept when the "
            "promoted replica is one that acknowledged (always, when every replica is counted)"
        )
    elif replicas_connected is None:
        failover = UNKNOWN
        detail.append("failover: unknown (INFO replication refused)")
    elif replicas_connected == 0:
        failover = KEPT
        detail.append("failover: no replica is connected, so none can be promoted")
    else:
        failover = LOST
        detail.append(
            f"failover: {replicas_connected} replica(s) copy writes asynchronously: writes "
            "not yet copied are lost (connect with durability=Durability(replicas=N))"
        )
    return DurabilityReport(
        requested=requested,
        appendonly=appendonly,
        appendfsync=appendfsync,
        replicas_connected=replicas_connected,
        process_crash=KEPT,
        server_crash=server_crash,
        failover=failover,
        detail=detail,
    )
