"""``connect(durability=...)``: writes that wait for replicas or an fsync,
and the report of what an acknowledged write survives (RX-13, DT-1).

Real faults on real local servers: a replica stopped with SIGSTOP (connected,
acknowledging nothing), a primary killed with SIGKILL, a replica promoted with
``REPLICAOF NO ONE``."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest

import lash_streams as ls
from lash_streams import errors
from lash_streams.server import LocalServer, redis_binary

from ..conformance.fixtures import S, owner, plain, reg, req
from .conftest import Pair

pytestmark = pytest.mark.slow

ONE = ls.Durability(replicas=1, timeout_ms=300)


async def _events(url: str, namespace: str, pid: str) -> list[Any]:
    async with ls.connect(url, namespace=namespace) as bus:
        return [e.payload for e in await bus.events_after(pid, 0)]


# -- the argument ---------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"replicas": -1},
        {"replicas": True},
        {"replicas": 1.0},
        {"timeout_ms": 0},
        {"timeout_ms": -5},
        {"timeout_ms": 2.5},
        {"timeout_ms": 10**9},
        {"fsync": "yes"},
    ],
)
def test_a_bad_durability_is_refused_with_a_typed_error(options: dict[str, Any]) -> None:
    with pytest.raises(errors.InvalidValue):
        ls.Durability(**options)


@pytest.mark.parametrize("value", ["replicas=1", 1, {"replicas": 1}])
async def test_connect_refuses_a_durability_that_is_not_a_durability(value: Any) -> None:
    with pytest.raises(errors.InvalidValue, match=r"lash_streams\.Durability"):
        await ls.connect("redis://127.0.0.1:1", durability=value)


async def test_on_a_cluster_without_replicas_each_write_reports_the_wait_not_met(
    cluster: Any, namespace: str
) -> None:
    """The suite's cluster has no replicas: a script write (append) and a
    pipelined one (registration's index step) each raise DurabilityNotMet
    after the timeout, on the node that took the write; reads do not wait."""
    async with ls.connect(cluster.connect_url, namespace=namespace) as bus:
        await bus.register_process(reg("p", plain("x")))
    wanted = ls.Durability(replicas=1, timeout_ms=100)
    async with ls.connect(cluster.connect_url, namespace=namespace, durability=wanted) as bus:
        with pytest.raises(errors.DurabilityNotMet):
            await bus.append_event("p", req("x", 1, key="k"))
        with pytest.raises(errors.DurabilityNotMet):
            await bus.register_process(reg("q", plain("x")))
        assert [e.payload for e in await bus.events_after("p", 0)] == [1]
    async with ls.connect(cluster.connect_url, namespace=namespace) as bus:
        await bus.complete_process("p", S(None))
        await bus.prune_terminal_processes(await bus.server_time_ms() + 1)


async def test_fsync_on_a_cluster_without_aof_is_refused_at_connect(cluster: Any) -> None:
    # No AOF (Valkey) or no WAITAOF at all (Redis 7.0): either way, at connect.
    with pytest.raises(errors.InvalidValue, match=r"appendonly|WAITAOF"):
        await ls.connect(cluster.connect_url, durability=ls.Durability(fsync=True))


# -- replicas -------------------------------------------------------------------


async def test_each_acknowledged_write_survives_a_failover_when_it_waits_for_the_replica(
    pair: Pair,
) -> None:
    """RX-13: with ``replicas=1`` every acknowledged append is on the replica,
    so a SIGKILL of the primary and a promotion lose none of them."""
    async with ls.connect(pair.primary.url, namespace="d", durability=ONE) as bus:
        await bus.register_process(reg("p", plain("x")))
        for value in range(20):
            await bus.append_event("p", req("x", value, key=f"k{value}"))
        assert bus.durability().failover == "kept"
        pair.primary.kill()
    await pair.promote_replica()
    assert await _events(pair.replica.url, "d", "p") == list(range(20))


async def test_without_a_wait_a_failover_loses_acknowledged_writes(pair: Pair) -> None:
    """The row of docs/guarantees.md this library exists to warn about:
    replication is asynchronous, so an append acknowledged by the primary and
    not yet copied is gone after a failover. The report says so up front."""
    async with ls.connect(pair.primary.url, namespace="d") as bus:
        report = bus.durability()
        assert (report.failover, report.replicas_connected) == ("lost", 1)
        assert bus.durability_tier() is ls.DurabilityTier.INLINE
        await bus.register_process(reg("p", plain("x")))
        await bus.append_event("p", req("x", "copied", key="a"))
        await asyncio.sleep(0.3)
        # The replica is cut off (stopped, its link closed by the primary), as
        # a partition or a slow replica would be: the next write is not copied.
        pair.stop_replica()
        await bus.redis.execute_command("CLIENT", "KILL", "TYPE", "replica")
        await bus.append_event("p", req("x", "acknowledged, never copied", key="b"))
        pair.primary.kill()
    pair.resume_replica()
    await pair.promote_replica()
    assert await _events(pair.replica.url, "d", "p") == ["copied"]


async def test_a_wait_not_met_raises_durability_not_met_and_a_keyed_retry_lands_once(
    pair: Pair,
) -> None:
    """A stopped replica acknowledges nothing: the append is applied on the
    primary but the call raises ``DurabilityNotMet`` (a ``WriteOutcomeUnknown``,
    so callers that retry keyed writes already handle it), after about the
    timeout. The keyed retry returns the stored event and writes nothing."""
    async with ls.connect(pair.primary.url, namespace="d", durability=ONE) as bus:
        await bus.register_process(reg("p", plain("x")))
        pair.stop_replica()
        start = time.monotonic()
        with pytest.raises(errors.DurabilityNotMet) as caught:
            await bus.append_event("p", req("x", "v", key="k"))
        assert time.monotonic() - start < 5
        assert isinstance(caught.value, errors.WriteOutcomeUnknown)
        assert (caught.value.wanted, caught.value.acknowledged) == (1, 0)
        assert "0 of 1 replica" in str(caught.value)
        pair.resume_replica()
        again = await bus.append_event("p", req("x", "v", key="k"))
        assert again.event.sequence == 1
        assert [e.payload for e in await bus.events_after("p", 0)] == ["v"]


async def test_every_kind_of_write_waits(pair: Pair) -> None:
    """Scripts (append, lease claim, complete), pipelines (registration) and
    plain commands all wait; reads do not."""
    async with ls.connect(pair.primary.url, namespace="d", durability=ONE) as bus:
        await bus.register_process(reg("p", plain("x")))
        rerun = ls.RecoveryDisposition.RERUNNABLE
        await bus.register_process(reg("r", plain("x"), disposition=rerun))
        pair.stop_replica()
        writes = {
            "register_process": lambda: bus.register_process(reg("q", plain("x"))),
            "append_event": lambda: bus.append_event("p", req("x", 1, key="k")),
            "claim_process_lease": lambda: bus.claim_process_lease("r", owner("w"), 10_000),
            "complete_process": lambda: bus.complete_process("p", S("done")),
        }
        for name, write in writes.items():
            with pytest.raises(errors.DurabilityNotMet):
                await write()
            del name
        start = time.monotonic()
        assert (await bus.get_process("p")) is not None
        await bus.events_after("p", 0)
        assert time.monotonic() - start < 0.25  # no read waited out a 300 ms wait
        pair.resume_replica()


async def test_a_replica_that_comes_back_makes_writes_succeed_again(pair: Pair) -> None:
    async with ls.connect(pair.primary.url, namespace="d", durability=ONE) as bus:
        await bus.register_process(reg("p", plain("x")))
        pair.stop_replica()
        with pytest.raises(errors.DurabilityNotMet):
            await bus.append_event("p", req("x", 1, key="a"))
        pair.resume_replica()
        await bus.append_event("p", req("x", 2, key="b"))
        assert [e.payload for e in await bus.events_after("p", 0)] == [1, 2]


# -- fsync ----------------------------------------------------------------------


async def test_fsync_needs_an_append_only_file() -> None:
    with (
        LocalServer(persistence="none") as server,
        pytest.raises(errors.InvalidValue, match="appendonly"),
    ):
        await ls.connect(server.url, durability=ls.Durability(fsync=True))


@pytest.mark.skipif(redis_binary() is None, reason="redis-server is not on PATH")
async def test_fsync_on_a_server_without_waitaof_is_refused_at_connect() -> None:
    server = LocalServer.redis(persistence="aof")
    with server:
        major, minor = (int(x) for x in server.version.version.split(".")[:2])
        if (major, minor) >= (7, 2):  # pragma: no cover - depends on the machine
            pytest.skip("this redis-server has WAITAOF")
        with pytest.raises(errors.InvalidValue, match="WAITAOF"):
            await ls.connect(server.url, durability=ls.Durability(fsync=True))


async def test_fsync_writes_survive_a_server_kill() -> None:
    """``fsync=True`` (WAITAOF 1 0): a write is acknowledged only once the
    primary fsynced it, so SIGKILL + restart (AOF everysec) keeps all of it."""
    server = LocalServer(persistence="aof")
    with server:
        wanted = ls.Durability(fsync=True, timeout_ms=2000)
        async with ls.connect(server.url, namespace="d", durability=wanted) as bus:
            report = bus.durability()
            assert report.server_crash == "kept"
            assert bus.durability_tier() is ls.DurabilityTier.DURABLE
            await bus.register_process(reg("p", plain("x")))
            for value in range(10):
                await bus.append_event("p", req("x", value, key=f"k{value}"))
            assert server.pid is not None
            os.kill(server.pid, signal.SIGKILL)
        server.restart()
        assert await _events(server.url, "d", "p") == list(range(10))


# -- the report -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("persistence", "fsync", "server_crash", "tier"),
    [
        ("none", None, "lost", "inline"),
        ("aof", "everysec", "lost", "inline"),
        ("aof", "always", "kept", "durable"),
    ],
)
async def test_the_report_names_what_a_server_crash_keeps(
    persistence: str, fsync: str | None, server_crash: str, tier: str
) -> None:
    extra = ["--appendfsync", fsync] if fsync else []
    with LocalServer(persistence=persistence, extra_args=extra) as server:
        async with ls.connect(server.url, namespace="d") as bus:
            report = bus.durability()
            assert report.process_crash == "kept"
            assert report.server_crash == server_crash
            assert report.failover == "kept"  # no replica: nothing to promote
            assert report.replicas_connected == 0
            assert bus.durability_tier().value == tier
            assert report.detail


async def test_a_bus_that_cannot_read_the_settings_reports_unknown() -> None:
    from lash_streams.testing import fake_bus

    async with fake_bus() as bus:
        report = bus.durability()
        assert (report.server_crash, report.failover) == ("unknown", "unknown")
        assert bus.durability_tier() is ls.DurabilityTier.INLINE


def test_doctor_says_what_a_write_survives_and_counts_replicas(pair_servers: Pair) -> None:
    import json

    from typer.testing import CliRunner

    from lash_streams.cli import app

    result = CliRunner().invoke(app, ["doctor", "--url", pair_servers.primary.url, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["survives"] == {
        "process_crash": "kept",
        "server_crash": "lost",
        "failover": "lost",
    }
    assert report["replicas_connected"] == 1
    assert report["durability_tier"] == "inline"
    assert any("Durability(replicas=N)" in line for line in report["advice"])
    text = CliRunner().invoke(app, ["doctor", "--url", pair_servers.primary.url])
    assert "an acknowledged write survives: process crash: kept" in text.output
