"""TLS with a private CA and client certificates on every client a cluster
bus opens: the cluster client and the per-node clients of blocking reads
(``await_terminal``, wake consumers) (issue 17, TLS everywhere)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import lash_streams as ls
from lash_streams import errors
from lash_streams.server import LocalServer, free_port, redis_binary
from lash_streams.server.proc import _command
from tests.conformance.fixtures import S, plain, reg, req, scope, wake
from tests.test_docs_examples import _make_certs

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed"),
    # The embedded Valkey is built without TLS; Redis from the OS package has it.
    pytest.mark.skipif(redis_binary() is None, reason="redis-server is not on PATH"),
]


def _tls_args(certs: dict[str, Path], tls_port: int) -> list[str]:
    return [
        "--tls-port", str(tls_port),
        "--tls-cert-file", str(certs["server.crt"]),
        "--tls-key-file", str(certs["server.key"]),
        "--tls-ca-cert-file", str(certs["ca.crt"]),
        "--tls-auth-clients", "yes",
        "--tls-cluster", "yes",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Path]]]:
    """Three TLS masters (plain ports kept for the admin steps only): the
    ``rediss+cluster://`` URL of the first one, and the certificates."""
    certs = _make_certs(tmp_path_factory.mktemp("certs"))
    nodes: list[tuple[LocalServer, int]] = []
    try:
        for _ in range(3):
            tls_port = free_port(cluster_bus=True)
            node = LocalServer(
                binary=redis_binary(), cluster=True, extra_args=_tls_args(certs, tls_port)
            )
            nodes.append((node, tls_port))
            node.start()
        per = 16384 // 3
        for index, (node, _) in enumerate(nodes):
            high = 16383 if index == 2 else (index + 1) * per - 1
            _command(node.port, "CLUSTER", "ADDSLOTSRANGE", index * per, high)
        # With tls-cluster the bus port follows the TLS port (+10000).
        for node, _ in nodes[1:]:
            _command(node.port, "CLUSTER", "MEET", "127.0.0.1", nodes[0][1])
        deadline = time.monotonic() + 30
        while True:
            states = [_command(n.port, "CLUSTER", "INFO") for n, _ in nodes]
            if all(b"cluster_state:ok" in s for s in states):
                break
            assert time.monotonic() < deadline, f"the TLS cluster did not form: {states}"
            time.sleep(0.1)
        query = (
            f"ssl_ca_certs={certs['ca.crt']}&ssl_certfile={certs['client.crt']}"
            f"&ssl_keyfile={certs['client.key']}"
        )
        yield f"rediss+cluster://127.0.0.1:{nodes[0][1]}/?{query}", certs
    finally:
        for node, _ in nodes:
            node.stop()


async def test_every_client_of_a_cluster_bus_speaks_tls_with_a_private_ca(
    tls_cluster: tuple[str, dict[str, Path]],
) -> None:
    url, _ = tls_cluster
    async with ls.connect(url, namespace="tls") as bus:
        assert bus.cluster
        # Processes on every node, so each per-node client is used.
        pids = [f"p{i}" for i in range(12)]
        for pid in pids:
            await bus.register_process(reg(pid, plain("x")))
            await bus.append_event(pid, req("x", pid, key="k"))
        waiting = [asyncio.create_task(bus.await_terminal(pid, timeout=20)) for pid in pids]
        await asyncio.sleep(0.2)
        for pid in pids:
            await bus.complete_process(pid, S(pid))
        assert await asyncio.gather(*waiting) == [S(pid) for pid in pids]
        await bus.register_process(reg("w", wake("ping")))
        consumer = bus.wake_consumer(group="g", consumer="c", scopes=[scope("s")], block_ms=200)
        await bus.append_event("w", req("ping", {"wake_input": 1}, key="a", target=scope("s")))
        message = await consumer.next(timeout=10)
        assert message is not None
        await message.ack()
        await consumer.aclose()


async def test_a_cluster_url_without_the_client_certificate_is_refused(
    tls_cluster: tuple[str, dict[str, Path]],
) -> None:
    url, certs = tls_cluster
    bare = url.split("?")[0] + f"?ssl_ca_certs={certs['ca.crt']}"
    with pytest.raises(errors.ConnectionFailed):
        await ls.connect(bare, namespace="tls")


async def test_cluster_true_with_a_rediss_url_is_the_same_bus(
    tls_cluster: tuple[str, dict[str, Path]],
) -> None:
    url, _ = tls_cluster
    async with ls.connect(url.replace("rediss+cluster://", "rediss://"), cluster=True) as bus:
        assert bus.cluster
        await bus.register_process(reg("q", plain("x")))


async def test_a_cluster_url_to_a_server_without_cluster_mode_is_a_typed_error() -> None:
    """redis-py's ``RedisClusterException`` is no ``RedisError``: it used to
    escape ``connect`` raw."""
    async with LocalServer() as server:
        url = server.url.replace("redis://", "redis+cluster://")
        with pytest.raises(errors.ConnectionFailed, match="cannot reach"):
            await ls.connect(url)
