"""Lease clocks moved under a holder: its lease lapses early (``expires``
moved into the past on the server clock), or its row is shortened to
nothing (``PEXPIRE``) or deleted (``DEL``) as an operator or an eviction
policy would. The stale owner must be refused, another worker must get in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

import lash_streams as ls
from lash_streams import errors
from lash_streams.bus import Bus
from lash_streams.model import LeaseAcquired, ProcessLease
from lash_streams.server import LocalServer
from tests.conformance.fixtures import S, owner, plain, rr_reg

from ._tools import BINARIES, EVENT, assert_gapless, new_namespace, open_bus, request, server

pytestmark = pytest.mark.slow

TTL_MS = 60_000


@pytest.fixture(scope="module", params=BINARIES)
def upstream(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    started = server(request.param).start()
    yield started
    started.stop()


@pytest.fixture
async def bus(upstream: LocalServer) -> AsyncIterator[Bus]:
    opened = await open_bus(upstream.url, new_namespace())
    await opened.register_process(rr_reg("p", plain(EVENT)))
    yield opened
    await opened.aclose()


async def _claim(bus: Bus, who: str) -> ProcessLease:
    outcome = await bus.claim_process_lease("p", owner(who), TTL_MS)
    assert isinstance(outcome, LeaseAcquired), outcome
    return outcome.lease


async def _lapse(bus: Bus, url: str) -> None:
    """Move the lease's clock: its expiry is now in the past on the server
    clock, as if the holder had paused past its TTL."""
    admin = Redis.from_url(url)
    try:
        seconds, micros = await admin.time()
        await admin.hset(
            bus.keys.process("p").lease, "expires", seconds * 1000 + micros // 1000 - 1
        )
    finally:
        await admin.aclose()


async def _drop(bus: Bus, url: str, how: str) -> None:
    admin = Redis.from_url(url)
    key = bus.keys.process("p").lease
    try:
        if how == "del":
            assert await admin.delete(key) == 1
        else:
            assert await admin.pexpire(key, 1)
            while await admin.exists(key):  # the server expires it within a few ms
                pass
    finally:
        await admin.aclose()


async def _stale_owner_is_refused(bus: Bus, stale: ProcessLease) -> None:
    with pytest.raises(errors.LeaseFenced):
        await bus.append_event("p", request("stale"), lease=stale)
    with pytest.raises(errors.LeaseFenced):
        await bus.append_event("p", request("stale-k", keyed=True), lease=stale)
    with pytest.raises(errors.LeaseFenced):
        await bus.complete_process("p", S("stale"), lease=stale)
    with pytest.raises(errors.LeaseExpired):
        await bus.renew_process_lease(stale, TTL_MS)


async def _new_owner_works(bus: Bus, stale: ProcessLease) -> ProcessLease:
    fresh = await _claim(bus, "worker-b")
    await _stale_owner_is_refused(bus, stale)
    await bus.append_event("p", request("fresh"), lease=fresh)
    fresh = await bus.renew_process_lease(fresh, TTL_MS)
    record = await bus.complete_process("p", S("done"), lease=fresh)
    assert record.is_terminal()
    events = await bus.events_after("p", 0)
    assert_gapless(e.sequence for e in events)
    values = [e.payload.get("v") for e in events if isinstance(e.payload, dict)]
    assert "stale" not in values and "stale-k" not in values
    return fresh


async def test_a_lapsed_lease_fences_its_holder_and_lets_another_claim(
    bus: Bus, upstream: LocalServer
) -> None:
    """The holder's lease lapses on the server clock before it renews: its
    fenced appends, keyed or not, and its fenced terminal raise LeaseFenced,
    its renewal LeaseExpired; another worker claims with a higher fencing
    token and writes; the stale writes never land."""
    stale = await _claim(bus, "worker-a")
    await bus.append_event("p", request("held"), lease=stale)
    await _lapse(bus, upstream.url)
    await _stale_owner_is_refused(bus, stale)
    fresh = await _new_owner_works(bus, stale)
    assert fresh.fencing_token == stale.fencing_token + 1


@pytest.mark.parametrize("how", ["del", "pexpire"])
async def test_a_deleted_lease_row_fences_its_holder_and_lets_another_claim(
    bus: Bus, upstream: LocalServer, how: str
) -> None:
    """The lease row deleted (DEL) or shortened to nothing (PEXPIRE) under
    its holder: the holder's fenced writes raise LeaseFenced and its renewal
    LeaseExpired (the lease token is random per acquisition, so even a reset
    fencing counter does not let it in); another worker claims and writes."""
    stale = await _claim(bus, "worker-a")
    await _drop(bus, upstream.url, how)
    await _stale_owner_is_refused(bus, stale)
    await _new_owner_works(bus, stale)


async def test_a_deleted_lease_row_restarts_the_fencing_counter(
    bus: Bus, upstream: LocalServer
) -> None:
    """The documented limit of LS-5 (docs/operating.md, memory policy): the
    fencing counter lives in the lease row, so a row deleted (DEL, PEXPIRE,
    an allkeys-* eviction) restarts it at 1. The stale holders stay fenced
    (their random lease tokens differ); only an external system comparing
    fencing tokens would be misled."""
    first = await _claim(bus, "worker-a")
    await bus.complete_process_lease(ls.ProcessLeaseCompletion.from_lease(first))
    second = await _claim(bus, "worker-b")
    assert second.fencing_token == first.fencing_token + 1
    await _drop(bus, upstream.url, "del")
    third = await _claim(bus, "worker-c")
    assert third.fencing_token == 1
    for stale in (first, second):
        with pytest.raises(errors.LeaseFenced):
            await bus.append_event("p", request("stale"), lease=stale)
