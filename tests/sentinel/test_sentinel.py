"""``redis+sentinel://`` URLs: master discovery, and a failover followed by
every client of the bus, the blocking ones included (issue 17)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import lash_streams as ls
from lash_streams import errors
from lash_streams.server.sentinel import LocalSentinelSet

from ..conformance.fixtures import plain, reg, req, scope, wake

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://127.0.0.1:26379", "names its service"),
        ("redis+sentinel://127.0.0.1:26379/", "names its service"),
        ("redis+sentinel://127.0.0.1:nope/svc", "must be host:port"),
        ("redis+sentinel://127.0.0.1:0/svc", "must be host:port"),
        ("redis+sentinel://a:1,,b:2/svc", "must be host:port"),
        ("redis+sentinel://127.0.0.1:26379/svc/x", "must be a number"),
        ("redis+sentinel://127.0.0.1:26379/svc/0/more", "names its service"),
        ("redis+sentinel://127.0.0.1:26379/svc?sentinel_pasword=x", "unknown sentinel URL"),
    ],
)
async def test_a_bad_sentinel_url_is_refused_with_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(errors.InvalidValue, match=says):
        await ls.connect(url)


async def test_no_reachable_sentinel_is_a_connection_error_without_the_password() -> None:
    with pytest.raises(errors.ConnectionFailed) as caught:
        await ls.connect("redis+sentinel://:secret@127.0.0.1:1/svc?sentinel_password=hush")
    assert "secret" not in str(caught.value) and "hush" not in str(caught.value)


async def test_an_unknown_service_is_a_connection_error(sentinel_set: LocalSentinelSet) -> None:
    url = sentinel_set.url.replace(sentinel_set.service, "no-such-service")
    with pytest.raises(errors.ConnectionFailed, match="no-such-service"):
        await ls.connect(url)


async def test_a_sentinel_url_reaches_the_primary(sentinel_set: LocalSentinelSet) -> None:
    async with ls.connect(sentinel_set.url, namespace="disc") as bus:
        await bus.register_process(reg("p", plain("x")))
        await bus.append_event("p", req("x", 1, key="a"))
        assert [e.payload for e in await bus.events_after("p", 0)] == [1]
        assert bus.durability().replicas_connected == 1
        assert bus.durability().failover == "lost"  # asynchronous replication, said up front


async def _append_until(bus: ls.Bus, pid: str, stop: asyncio.Event, acked: list[int]) -> None:
    """Keyed appends (retried on faults) until ``stop``; ``acked`` gets each
    value whose call returned."""
    value = 0
    while not stop.is_set():
        try:
            await bus.append_event(pid, req("x", value, key=f"k{value}"))
        except errors.BackendError:
            continue  # the switch outlasted the retries: the same key again
        acked.append(value)
        value += 1
        await asyncio.sleep(0.005)


async def test_every_client_follows_a_failover(sentinel_set: LocalSentinelSet) -> None:
    """Appends keep landing through ``SENTINEL FAILOVER``: every acknowledged
    value is in the log once, in order (keyed retries never duplicate), and a
    wake consumer whose blocking read was open before the switch gets the
    wakes appended after it (its blocking client found the new primary too).

    The writes wait for the replica: between the promotion and the old
    primary's demotion, a pooled connection still reaches the old primary,
    and an unwaited write acknowledged there is lost at the demotion (the
    Sentinel window docs/operating.md describes). With the wait it fails
    (``DurabilityNotMet``) and the keyed retry lands on the new primary."""
    wanted = ls.Durability(replicas=1, timeout_ms=1000)
    async with ls.connect(sentinel_set.url, namespace="follow", durability=wanted) as bus:
        await bus.register_process(reg("p", plain("x")))
        await bus.register_process(reg("w", wake("ping")))
        consumer = bus.wake_consumer(group="g", consumer="c", scopes=[scope("s")], block_ms=200)
        assert await consumer.next(timeout=0.3) is None  # its blocking connection is open
        stop, acked = asyncio.Event(), []
        writer = asyncio.create_task(_append_until(bus, "p", stop, acked))
        await asyncio.sleep(0.3)
        before = sentinel_set.primary_port()
        new = await asyncio.to_thread(sentinel_set.failover)
        assert new != before
        await asyncio.sleep(0.5)
        stop.set()
        await writer
        assert acked and len(acked) > 10
        values = [e.payload for e in await bus.events_after("p", 0)]
        assert values == sorted(set(values)), "a keyed append landed twice or out of order"
        assert set(acked) <= set(values)
        sequences = [e.sequence for e in await bus.events_after("p", 0)]
        assert sequences == list(range(1, len(sequences) + 1))
        woken = await bus.append_event(
            "w", req("ping", {"wake_input": 1}, key="after", target=scope("s"))
        )
        assert woken.wake_delivery is not None
        got: Any = None
        for _ in range(50):
            got = await consumer.next(timeout=1.0)
            if got is not None:
                break
        assert got is not None and got.delivery.process_id == "w"
        await got.ack()
        await consumer.aclose()


async def test_a_primary_killed_loses_no_write_that_waited_for_its_replica(
    sentinel_set: LocalSentinelSet,
) -> None:
    """RX-13 on Sentinel: with ``Durability(replicas=1)`` every acknowledged
    append is on the replica, so SIGKILL of the primary and the sentinels'
    own failover (no operator) keep them all; the bus then writes to the new
    primary through the same URL."""
    wanted = ls.Durability(replicas=1, timeout_ms=2000)
    async with ls.connect(sentinel_set.url, namespace="kill", durability=wanted) as bus:
        await bus.register_process(reg("p", plain("x")))
        for value in range(20):
            await bus.append_event("p", req("x", value, key=f"k{value}"))
        old = sentinel_set.primary_port()
        sentinel_set.server_on(old).kill()
        await asyncio.to_thread(sentinel_set.wait_for_new_primary, old, 30.0)
    async with ls.connect(sentinel_set.url, namespace="kill") as bus:
        assert [e.payload for e in await bus.events_after("p", 0)] == list(range(20))
        await bus.append_event("p", req("x", 20, key="k20"))
        assert len(await bus.events_after("p", 0)) == 21
    sentinel_set.server_on(old).restart()  # back as a server; sentinels make it a replica


def test_doctor_on_a_sentinel_url(sentinel_set: LocalSentinelSet) -> None:
    from typer.testing import CliRunner

    from lash_streams.cli import app

    result = CliRunner().invoke(app, ["doctor", "--url", sentinel_set.url])
    assert result.exit_code == 0, result.output
    assert "an acknowledged write survives" in result.output


async def test_a_burst_through_sentinel_queues_instead_of_failing(
    sentinel_set: LocalSentinelSet,
) -> None:
    """redis-py's sentinel pool refused a caller past its bound ("Too many
    connections"); the bus's pool queues (lash_streams.pool.BoundedSentinelPool)."""
    async with ls.connect(sentinel_set.url, namespace="burst") as bus:
        regs = [ls.ProcessRegistration.external(f"b{i}") for i in range(500)]
        records = await asyncio.gather(*(bus.register_process(r) for r in regs))
        assert len(records) == 500
        assert len(bus.redis.connection_pool._in_use_connections) == 0
        assert len(bus.redis.connection_pool._available_connections) <= 64


def test_soak_through_sentinel(sentinel_set: LocalSentinelSet, tmp_path: Any) -> None:
    """``lash-streams soak`` takes a sentinel URL (issue 17) and says so."""
    import json

    from typer.testing import CliRunner

    from lash_streams.cli import app

    out = tmp_path / "soak.json"
    args = ["soak", "--url", sentinel_set.url, "--duration", "4s", "--faults", "kill,proxy"]
    result = CliRunner().invoke(app, [*args, "--seed", "5", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "through Sentinel" in result.output
    report = json.loads(out.read_text())
    assert report["server"]["topology"] == "sentinel"
    # The proxy cannot stand between Sentinel clients and their nodes: said, not a crash.
    assert any(note.startswith("proxy: skipped") for note in report["notes"])
