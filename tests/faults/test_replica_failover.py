"""A primary and its replica: the replica takes over (``FAILOVER``, or
``REPLICAOF NO ONE`` with the old primary then made its replica, as Sentinel
does) while a bus writes to the old primary."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

import lash_streams as ls
from lash_streams import errors
from lash_streams.bus import Bus
from lash_streams.server import LocalServer
from lash_streams.server.proc import _command
from tests.conformance.fixtures import S, owner, reg

from ._tools import (
    BINARIES,
    History,
    assert_gapless,
    new_namespace,
    open_bus,
    read_log,
    register,
    request,
    server,
)

pytestmark = pytest.mark.slow

#: Short retries: a write refused by a replica ends quickly in its typed error.
FAST = ls.RetryPolicy(attempts=2, max_delay_s=0.3)


@pytest.fixture(params=BINARIES)
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[LocalServer, LocalServer]]:
    primary = server(request.param).start()
    try:
        replica = primary.replica()
    except BaseException:
        primary.stop()
        raise
    yield primary, replica
    replica.stop()
    primary.stop()


async def _write_until_refused(bus: Bus, history: History, prefix: str) -> None:
    """Keyed and unkeyed appends until one fails: it must be a typed error."""
    n = 0
    while True:
        value = f"{prefix}-{n}"
        n += 1
        try:
            result = await bus.append_event(history.pid, request(value, keyed=n % 2 == 0))
        except errors.LashStreamsError as err:
            history.errors.append(err)
            if isinstance(err, errors.ReadOnlyReplica | errors.NotWritten):
                history.refused.add(value)
            else:
                history.unknown.add(value)
            return
        history.acked[value] = result.event.sequence
        await asyncio.sleep(0)


def _writes(bus: Bus) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
    return [
        ("append", lambda: bus.append_event("p", request("late"))),
        ("keyed append", lambda: bus.append_event("p", request("late-k", keyed=True))),
        ("batch", lambda: bus.append_events([("p", request("late-b", keyed=True))])),
        ("register", lambda: bus.register_process(reg("new"))),
        ("complete", lambda: bus.complete_process("p", S("done"))),
        ("claim lease", lambda: bus.claim_process_lease("p", owner("w"), 10_000)),
    ]


async def _old_primary_refuses_writes(bus: Bus) -> None:
    for name, call in _writes(bus):
        try:
            await call()
        except errors.ReadOnlyReplica:
            continue
        except Exception as err:  # a raw redis-py error, or another kind
            pytest.fail(f"{name} on the demoted primary raised {type(err).__name__}: {err}")
        pytest.fail(f"{name} on the demoted primary was accepted")


async def _takeover(
    primary: LocalServer, replica: LocalServer, promote: Callable[[], None]
) -> tuple[History, set[str], set[str]]:
    """Writers on the old primary while ``promote`` runs. Returns the
    history, what was acknowledged before ``promote`` began (replicated by
    then) and what the promoted replica lacks of the acknowledged appends."""
    namespace = new_namespace()
    old = await open_bus(primary.url, namespace, retry=FAST)
    new: Bus | None = None
    try:
        await register(old, "p")
        history = History("p")
        writers = [
            asyncio.create_task(_write_until_refused(old, history, f"w{i}")) for i in range(3)
        ]
        while len(history.acked) < 20:  # noqa: ASYNC110 - a count, not an event
            await asyncio.sleep(0.005)
        before = set(history.acked)
        await asyncio.to_thread(promote)
        await asyncio.wait_for(asyncio.gather(*writers), 30)
        assert all(isinstance(e, errors.ReadOnlyReplica) for e in history.errors), history.errors
        await _old_primary_refuses_writes(old)

        new = await open_bus(replica.url, namespace)
        verdict = await read_log(new, history)
        assert not before & verdict.lost, "an append replicated before the promotion was lost"
        assert not verdict.duplicated and not verdict.unexpected
        assert_gapless(verdict.sequences)
        after = await new.append_event("p", request("after"))
        assert after.event.sequence == len(verdict.sequences) + 1
        return history, before, verdict.lost
    finally:
        await old.aclose()
        if new is not None:
            await new.aclose()


async def test_failover_demotes_the_old_primary_and_keeps_every_acknowledged_append(
    pair: tuple[LocalServer, LocalServer],
) -> None:
    """FAILOVER TO the replica while three writers append: every write to
    the demoted primary ends in ReadOnlyReplica (never a raw redis-py error,
    never accepted); the promoted replica holds every acknowledged append
    once, sequences gapless, and takes the next append."""
    primary, replica = pair
    _, _, lost = await _takeover(primary, replica, lambda: primary.failover(replica))
    assert not lost, "FAILOVER waits for the replica: nothing acknowledged may be lost"
    assert primary.role == "slave" and replica.role == "master"


async def test_replicaof_no_one_then_repointing_the_old_primary(
    pair: tuple[LocalServer, LocalServer],
) -> None:
    """REPLICAOF NO ONE on a caught-up replica while writers go on, then the
    old primary made its replica (what Sentinel does). Every append
    acknowledged before the promotion (replicated) is on the promoted
    replica, once, gapless; writes on the old primary then end in
    ReadOnlyReplica. Appends the old primary acknowledged between the
    promotion and its demotion are lost (asynchronous replication: the
    window that writes waiting for replicas would close, issue 14 item 4)."""
    primary, replica = pair

    def promote() -> None:
        primary.wait_replicated()
        replica.promote()
        _command(primary.port, "REPLICAOF", "127.0.0.1", replica.port)
        primary.replica_of = replica
        primary.wait_link_up()

    history, before, lost = await _takeover(primary, replica, promote)
    assert lost <= set(history.acked) - before
