"""A server at ``maxmemory`` with ``noeviction``: writes are refused with
``OutOfMemory`` and leave nothing half-written; reads go on; raising the
limit lets writes through again."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
import redis

import lash_streams as ls
from lash_streams import errors
from lash_streams.model import InputExternal
from lash_streams.server import LocalServer
from tests.conformance.fixtures import S, owner, plain, reg

from ._tools import (
    BINARIES,
    EVENT,
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

BLOB = "x" * 40_000


@pytest.fixture(scope="module", params=BINARIES)
def limited(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    started = server(request.param, maxmemory="64mb").start()
    yield started
    started.stop()


def _admin(server: LocalServer) -> redis.Redis:
    return redis.Redis.from_url(server.url)


def _keys_of(server: LocalServer, namespace: str, pid: str) -> list[bytes]:
    client = _admin(server)
    try:
        found = list(client.scan_iter(match=f"{namespace}:*{{{pid}}}*", count=1000))
        for index in client.scan_iter(match=f"{namespace}:*", count=1000, _type="zset"):
            if client.zscore(index, pid) is not None:
                found.append(index)
        return found
    finally:
        client.close()


async def test_appends_up_to_maxmemory_stop_at_a_refused_one_and_resume(
    limited: LocalServer,
) -> None:
    """maxmemory + noeviction reached by appending 40 kB events: an append
    is acknowledged or refused with OutOfMemory (never another error), a
    refused one is not stored, the log stays gapless; once the limit is
    raised the same bus appends again after the last stored event."""
    admin = _admin(limited)
    bus = await open_bus(limited.url, new_namespace())
    try:
        assert admin.config_get("maxmemory")["maxmemory"] == str(64 * 1024 * 1024)
        await register(bus, "p")
        admin.config_set("maxmemory", int(admin.info("memory")["used_memory"]) + 2_000_000)
        history = History("p")
        for n in range(200):
            value = f"big-{n}"
            big = ls.ProcessEventAppendRequest.new(EVENT, {"v": value, "blob": BLOB})
            try:
                result = await bus.append_event("p", big.with_replay_key(value))
            except errors.OutOfMemory:
                history.refused.add(value)
                break
            history.acked[value] = result.event.sequence
        else:
            pytest.fail("maxmemory was never reached")
        verdict = await read_log(bus, history)
        assert not verdict.lost and not verdict.duplicated and not verdict.unexpected
        assert not history.refused & set(verdict.values)
        assert_gapless(verdict.sequences)

        admin.config_set("maxmemory", 64 * 1024 * 1024)
        after = await bus.append_event("p", request("after"))
        assert after.event.sequence == len(verdict.sequences) + 1
    finally:
        admin.config_set("maxmemory", 64 * 1024 * 1024)
        admin.close()
        await bus.aclose()


async def test_registers_at_the_edge_of_maxmemory_leave_no_half_written_process(
    limited: LocalServer,
) -> None:
    """Registrations (20 kB of metadata each) until maxmemory refuses one:
    each is either stored whole (its call returns, even when a step after the
    record was refused) or refused with OutOfMemory, and a refused one leaves
    no key behind: its id entered the worklist before the record step (RX-2,
    docs/atomicity.md), and the refused call takes it out again."""
    admin = _admin(limited)
    namespace = new_namespace()
    bus = await open_bus(limited.url, namespace)
    try:
        admin.config_set("maxmemory", int(admin.info("memory")["used_memory"]) + 1_000_000)
        for n in range(200):
            registration = reg(f"r{n}", plain(EVENT))
            registration = msgspec.structs.replace(
                registration, input=InputExternal(metadata={"blob": BLOB[:20_000]})
            )
            try:
                await bus.register_process(registration)
            except errors.OutOfMemory:
                assert await bus.get_process(f"r{n}") is None
                assert f"r{n}" not in {r.id for r in await bus.list_non_terminal()}
                assert _keys_of(limited, namespace, f"r{n}") == [], "a refused register left keys"
                break
            assert await bus.get_process(f"r{n}") is not None
        else:
            pytest.fail("maxmemory was never reached")
    finally:
        admin.config_set("maxmemory", 64 * 1024 * 1024)
        admin.close()
        await bus.aclose()


async def test_terminals_at_the_edge_of_maxmemory_are_stored_or_refused_whole(
    limited: LocalServer,
) -> None:
    """complete_process with a 20 kB output on process after process until
    maxmemory refuses one: each call returns a terminal record or raises
    OutOfMemory, and a refused one left the process without a terminal."""
    admin = _admin(limited)
    namespace = new_namespace()
    bus = await open_bus(limited.url, namespace)
    try:
        for n in range(60):
            await register(bus, f"c{n}")
        admin.config_set("maxmemory", int(admin.info("memory")["used_memory"]) + 500_000)
        for n in range(60):
            try:
                record = await bus.complete_process(f"c{n}", S({"blob": BLOB[:20_000]}))
            except errors.OutOfMemory:
                stored = await bus.get_process(f"c{n}")
                assert stored is not None and not stored.is_terminal(), (
                    "complete_process raised OutOfMemory but the terminal was written"
                )
                assert await bus.events_after(f"c{n}", 0) == []
                break
            assert record.is_terminal()
        else:
            pytest.fail("maxmemory was never reached")
    finally:
        admin.config_set("maxmemory", 64 * 1024 * 1024)
        admin.close()
        await bus.aclose()


async def test_every_write_over_maxmemory_is_refused_and_writes_nothing(
    limited: LocalServer,
) -> None:
    """Memory well over the limit: register, keyed and unkeyed append,
    batch, terminal and lease claim each raise OutOfMemory and write
    nothing; reads answer; raising the limit lets the same calls through."""
    admin = _admin(limited)
    namespace = new_namespace()
    bus = await open_bus(limited.url, namespace)
    try:
        await register(bus, "p")
        await bus.register_process(reg("q", plain(EVENT)))
        await bus.append_event("p", request("first"))
        admin.config_set("maxmemory", 1)
        writes = {
            "register": lambda: bus.register_process(reg("r", plain(EVENT))),
            "append": lambda: bus.append_event("p", request("no")),
            "keyed append": lambda: bus.append_event("p", request("no-k", keyed=True)),
            "batch": lambda: bus.append_events(
                [("p", request("no-b1", keyed=True)), ("q", request("no-b2", keyed=True))]
            ),
            "complete": lambda: bus.complete_process("q", S("done")),
            "claim lease": lambda: bus.claim_process_lease("q", owner("w"), 10_000),
        }
        for name, call in writes.items():
            try:
                await call()
            except errors.OutOfMemory:
                continue
            except Exception as err:
                pytest.fail(f"{name} over maxmemory raised {type(err).__name__}: {err}")
            pytest.fail(f"{name} over maxmemory was accepted")
        assert _keys_of(limited, namespace, "r") == [], "a refused register left keys"
        assert await bus.get_process("r") is None
        assert [e.sequence for e in await bus.events_after("p", 0)] == [1]
        assert await bus.events_after("q", 0) == []
        assert (await bus.get_process_lease("q")) is None

        admin.config_set("maxmemory", 64 * 1024 * 1024)
        await bus.register_process(reg("r", plain(EVENT)))
        assert (await bus.append_event("p", request("after"))).event.sequence == 2
        assert (await bus.complete_process("q", S("done"))).is_terminal()
    finally:
        admin.config_set("maxmemory", 64 * 1024 * 1024)
        admin.close()
        await bus.aclose()
