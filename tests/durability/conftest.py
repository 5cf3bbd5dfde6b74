"""A primary and a replica of the embedded server, started per test (faults
here kill and stop them), and a bus on the primary."""

from __future__ import annotations

import asyncio
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


async def linked(replica: LocalServer, timeout: float = 10.0) -> None:
    client = Redis.from_url(replica.url)
    try:
        async with asyncio.timeout(timeout):
            while (await client.info("replication")).get("master_link_status") != "up":  # noqa: ASYNC110 - polling another process
                await asyncio.sleep(0.05)
    finally:
        await client.aclose()


@pytest.fixture
def pair_servers() -> Iterator[Pair]:
    # No 5 s wait for more replicas before the first full sync.
    primary = LocalServer(extra_args=["--repl-diskless-sync-delay", "0"]).start()
    replica = LocalServer(extra_args=["--replicaof", "127.0.0.1", str(primary.port)])
    try:
        replica.start()
        pair = Pair(primary, replica)
        yield pair
    finally:
        if replica.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(replica.pid, signal.SIGCONT)
        replica.stop()
        primary.stop()


@pytest.fixture
async def pair(pair_servers: Pair) -> AsyncIterator[Pair]:
    await linked(pair_servers.replica)
    yield pair_servers
