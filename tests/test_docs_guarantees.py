"""Claims in docs/guarantees.md and docs/operating.md that no other test pins.

- RX-3 / RG-4: the append's compare-and-set on the registration hash. A client
  that cached a process's registration plans against it; after prune and a
  re-registration with other event types, its next append is re-planned
  against the new registration, never written under the old one.
- GEN-2 / RX-11: every timestamp that decides something comes from the
  server's ``TIME``, whatever the client's wall clock says.
- noeviction: at ``maxmemory`` a write is refused whole (the append script
  fails at its first write) and nothing is half-written; raising the limit
  lets the process go on at the next sequence.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

import lash_streams as ls
from lash_streams import errors
from lash_streams.bus import Bus
from lash_streams.server import LocalServer
from tests._bus import bus_factory  # noqa: F401 - fixture
from tests._servers import Backend

from .conformance.fixtures import S, plain, reg


async def test_append_from_a_stale_cache_is_replanned_after_re_registration(
    bus_factory: Callable[[], Awaitable[Bus]],  # noqa: F811
) -> None:
    old, other = await bus_factory(), await bus_factory()
    await old.register_process(reg("p", plain("x")))
    await old.append_event("p", ls.ProcessEventAppendRequest.new("x", {}))  # caches "p"
    await other.complete_process("p", S(None))
    now = await other.server_time_ms()
    assert (await other.prune_terminal_processes(now + 1)).pruned_processes == 1
    await other.register_process(reg("p", plain("y")))  # same id, other event types
    with pytest.raises(errors.UndeclaredEventType):
        await old.append_event("p", ls.ProcessEventAppendRequest.new("x", {}))
    landed = await old.append_event("p", ls.ProcessEventAppendRequest.new("y", {}))
    assert landed.event.sequence == 1  # a new process: its log starts again
    assert [e.event_type for e in await other.events_after("p", 0)] == ["y"]


@pytest.mark.no_key_hygiene  # a private server
async def test_a_write_refused_at_maxmemory_changes_nothing() -> None:
    with LocalServer(extra_args=["--maxmemory", "4mb"]) as server:
        async with ls.connect(server.url, namespace="oom") as bus:
            await bus.register_process(ls.ProcessRegistration.external("p"))
            sent = 0
            with pytest.raises(ls.errors.OutOfMemory):  # typed (issue 11), not raw redis-py
                for sent in range(10_000):
                    request = ls.ProcessEventAppendRequest.new("process.waiting", {"x": "y" * 1000})
                    await bus.append_event("p", request.with_replay_key(f"k{sent}"))
            keys = bus.keys.process("p")
            assert int(await bus.redis.hget(keys.record, "seq")) == sent
            assert await bus.redis.xlen(keys.events) == sent
            assert await bus.redis.hlen(keys.replay) == sent
            assert len(await bus.recent_events("p", 5)) == 5  # reads still work
            await bus.redis.config_set("maxmemory", "0")
            after = await bus.append_event(
                "p", ls.ProcessEventAppendRequest.new("process.waiting", {})
            )
            assert after.event.sequence == sent + 1


async def test_timestamps_come_from_the_server_clock(
    any_backend: Backend, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client's wall clock is ten days off; every stored time still lies
    between two readings of the server's ``TIME``."""
    import time

    skew_s = 10 * 24 * 3600
    real_time, real_time_ns = time.time, time.time_ns
    monkeypatch.setattr(time, "time", lambda: real_time() - skew_s)
    monkeypatch.setattr(time, "time_ns", lambda: real_time_ns() - skew_s * 10**9)
    async with ls.connect(any_backend.connect_url, namespace=namespace) as bus:
        before = await bus.server_time_ms()
        record = await bus.register_process(reg("p", plain("x")))
        event = (await bus.append_event("p", ls.ProcessEventAppendRequest.new("x", {}))).event
        owner = ls.LeaseOwnerIdentity.opaque("w", "1")
        lease = (await bus.claim_process_lease("p", owner, 60_000)).lease
        after = await bus.server_time_ms()
        assert abs(int(time.time() * 1000) - before) > skew_s * 1000 // 2  # the skew is real
        for stamp in (
            record.created_at_ms,
            event.occurred_at_ms,
            (await bus.get_process("p")).updated_at_ms,
            lease.claimed_at_epoch_ms,
            lease.expires_at_epoch_ms - 60_000,
        ):
            assert before <= stamp <= after
