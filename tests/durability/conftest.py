"""A primary and a replica of the embedded server, started per test (faults
here kill and stop them), and a bus on the primary."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from lash_streams.server import LocalServer


@dataclass
class Pair:
    primary: LocalServer
    replica: LocalServer

    def stop_replica(self) -> None:
        """SIGSTOP: the replica stays connected but acknowledges nothing."""
        assert self.replica.pid is not None
        os.kill(self.replica.pid, signal.SIGSTOP)

    def resume_replica(self) -> None:
        assert self.replica.pid is not None
        os.kill(self.replica.pid, signal.SIGCONT)

    async def promote_replica(self) -> None:
        """The primary is gone: the replica takes its place (REPLICAOF NO ONE)."""
        client = Redis.from_url(self.replica.url)
        try:
            await client.execute_command("REPLICAOF", "NO", "ONE")
        finally:
            await client.aclose()


@pytest.fixture
def pair_servers() -> Iterator[Pair]:
    primary = LocalServer().start()
    replica: LocalServer | None = None
    try:
        # Started, linked and acknowledging (LocalServer.replica waits for all three).
        replica = primary.replica()
        yield Pair(primary, replica)
    finally:
        if replica is not None:
            if replica.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(replica.pid, signal.SIGCONT)
            replica.stop()
        primary.stop()


@pytest.fixture
async def pair(pair_servers: Pair) -> AsyncIterator[Pair]:
    yield pair_servers
