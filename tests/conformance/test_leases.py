"""Section I: leases (LS-*, LV-*). The death oracle is the scenarios' injected
one (LV-4): only `not-the-current-process-start` holders on host-a are dead."""

from __future__ import annotations

import asyncio

import pytest

from lash_streams import errors
from lash_streams.model import LeaseAcquired, LeaseBusy, ProcessLeaseCompletion

from .fixtures import CLAIMANT, DEAD, S, fixture_oracle, local, owner, reg


@pytest.fixture
def leased_bus(bus):
    bus.death_oracle = fixture_oracle
    return bus


def release(lease):
    return ProcessLeaseCompletion(process_id=lease.process_id, lease_token=lease.lease_token)


async def test_s_ls_01_active_process_lease_fences_competing_owner(leased_bus):
    """S-LS-01 · LS-2, LS-4, LS-5."""
    bus = leased_bus
    await bus.register_process(reg("proc-lease-active"))
    a = await bus.claim_process_lease("proc-lease-active", owner("owner-a"), 60_000)
    assert isinstance(a, LeaseAcquired) and a.lease.fencing_token == 1
    b = await bus.claim_process_lease("proc-lease-active", owner("owner-b"), 60_000)
    assert isinstance(b, LeaseBusy) and b.holder.lease_token == a.lease.lease_token
    again = await bus.claim_process_lease("proc-lease-active", owner("owner-a"), 120_000)
    assert isinstance(again, LeaseAcquired)
    assert again.lease.lease_token == a.lease.lease_token
    assert again.lease.fencing_token == a.lease.fencing_token
    assert again.lease.expires_at_epoch_ms >= a.lease.expires_at_epoch_ms


async def test_s_ls_02_superseded_process_lease_cannot_renew(leased_bus):
    """S-LS-02 · LS-3, LS-4, LS-7."""
    bus = leased_bus
    await bus.register_process(reg("proc-lease-superseded"))
    old = (await bus.claim_process_lease("proc-lease-superseded", owner("owner-a"), 0)).lease
    assert old.fencing_token == 1
    new = await bus.claim_process_lease("proc-lease-superseded", owner("owner-b"), 60_000)
    assert isinstance(new, LeaseAcquired) and new.lease.fencing_token == 2
    with pytest.raises(errors.LeaseExpired, match="missing or expired"):
        await bus.renew_process_lease(old, 60_000)


async def test_s_ls_03_renewed_process_lease_survives_original_expiry(leased_bus):
    """S-LS-03 · LS-7."""
    bus = leased_bus
    await bus.register_process(reg("proc-lease-renew"))
    lease = (await bus.claim_process_lease("proc-lease-renew", owner("owner-a"), 20)).lease
    renewed = await bus.renew_process_lease(lease, 60_000)
    await asyncio.sleep(0.03)
    again = await bus.renew_process_lease(renewed, 60_000)
    assert again.expires_at_epoch_ms >= renewed.expires_at_epoch_ms


async def test_s_ls_04_completed_lease_releases_and_reclaim_bumps_fencing(leased_bus):
    """S-LS-04 · LS-5, LS-8."""
    bus = leased_bus
    await bus.register_process(reg("proc-lease-complete"))
    a = (await bus.claim_process_lease("proc-lease-complete", owner("owner-a"), 60_000)).lease
    assert a.fencing_token == 1
    await bus.complete_process_lease(release(a))
    assert await bus.get_process_lease("proc-lease-complete") is None
    b = await bus.claim_process_lease("proc-lease-complete", owner("owner-b"), 60_000)
    assert isinstance(b, LeaseAcquired) and b.lease.fencing_token == 2


async def test_s_ls_05_stale_lease_completion_cannot_release_live_lease(leased_bus):
    """S-LS-05 · LS-8, LS-4, LS-7."""
    bus = leased_bus
    pid = "proc-lease-stale-complete"
    await bus.register_process(reg(pid))
    old = (await bus.claim_process_lease(pid, owner("owner-a"), 0)).lease
    cur = (await bus.claim_process_lease(pid, owner("owner-b"), 60_000)).lease
    await bus.complete_process_lease(release(old))
    assert isinstance(await bus.claim_process_lease(pid, owner("owner-c"), 60_000), LeaseBusy)
    await bus.renew_process_lease(cur, 60_000)


async def test_s_ls_06_to_10_process_lease_reclaim_contract(leased_bus):
    """S-LS-06 .. S-LS-10 · LS-10, LV-2."""
    bus = leased_bus
    # S-LS-06: fenced reclaim of a provably dead holder.
    await bus.register_process(reg("proc-lease-reclaim-dead"))
    held = (await bus.claim_process_lease("proc-lease-reclaim-dead", DEAD, 60_000)).lease
    assert held.fencing_token == 1
    assert isinstance(
        await bus.claim_process_lease("proc-lease-reclaim-dead", CLAIMANT, 60_000), LeaseBusy
    )
    won = await bus.reclaim_process_lease("proc-lease-reclaim-dead", CLAIMANT, held, 60_000)
    assert isinstance(won, LeaseAcquired) and won.lease.fencing_token == 2
    # S-LS-07: a stale observation cannot clear the newer lease.
    late = local("late-claimant", "host-a", "late-claimant-start")
    stale = await bus.reclaim_process_lease("proc-lease-reclaim-dead", late, held, 60_000)
    assert isinstance(stale, LeaseBusy) and stale.holder.lease_token == won.lease.lease_token
    await bus.complete_process_lease(release(won.lease))
    # S-LS-08: a reclaim race has exactly one winner.
    await bus.register_process(reg("proc-lease-reclaim-race"))
    held = (await bus.claim_process_lease("proc-lease-reclaim-race", DEAD, 60_000)).lease
    left = local("race-left", "host-a", "race-left-start")
    right = local("race-right", "host-a", "race-right-start")
    outcomes = await asyncio.gather(
        bus.reclaim_process_lease("proc-lease-reclaim-race", left, held, 60_000),
        bus.reclaim_process_lease("proc-lease-reclaim-race", right, held, 60_000),
    )
    acquired = [o for o in outcomes if isinstance(o, LeaseAcquired)]
    assert len(acquired) == 1 and acquired[0].lease.fencing_token == 2
    assert sum(isinstance(o, LeaseBusy) for o in outcomes) == 1
    # S-LS-09: another host is never provably dead.
    await bus.register_process(reg("proc-lease-reclaim-cross-host"))
    held = (await bus.claim_process_lease("proc-lease-reclaim-cross-host", DEAD, 60_000)).lease
    cross = local("cross-host-claimant", "host-b", "claimant-start")
    assert isinstance(
        await bus.reclaim_process_lease("proc-lease-reclaim-cross-host", cross, held, 60_000),
        LeaseBusy,
    )
    # S-LS-10: an opaque holder is never provably dead.
    await bus.register_process(reg("proc-lease-reclaim-opaque"))
    held = (
        await bus.claim_process_lease("proc-lease-reclaim-opaque", owner("opaque-holder"), 60_000)
    ).lease
    assert isinstance(
        await bus.reclaim_process_lease("proc-lease-reclaim-opaque", CLAIMANT, held, 60_000),
        LeaseBusy,
    )


async def test_s_ls_11_lease_edge_cases(leased_bus):
    """S-LS-11 · LS-4, LS-7..LS-10, LS-13."""
    bus = leased_bus
    with pytest.raises(errors.UnknownProcess):
        await bus.claim_process_lease("missing", owner("a"), 1000)
    await bus.register_process(reg("p"))
    lease = (await bus.claim_process_lease("p", owner("a"), 0)).lease
    with pytest.raises(errors.UnknownProcess):
        await bus.reclaim_process_lease("missing", CLAIMANT, lease, 1000)
    import msgspec

    with pytest.raises(errors.LeaseExpired):
        await bus.renew_process_lease(msgspec.structs.replace(lease, process_id="missing"), 1000)
    await bus.complete_process_lease(ProcessLeaseCompletion(process_id="missing", lease_token="x"))
    assert await bus.get_process_lease("missing") is None
    again = (await bus.claim_process_lease("p", owner("a"), 60_000)).lease
    assert again.fencing_token == 2 and again.lease_token != lease.lease_token

    await bus.register_process(reg("q"))
    short = (await bus.claim_process_lease("q", owner("a"), 50)).lease
    await asyncio.sleep(0.06)
    with pytest.raises(errors.LeaseExpired):
        await bus.renew_process_lease(short, 60_000)

    await bus.register_process(reg("r"))
    fresh = await bus.reclaim_process_lease("r", CLAIMANT, lease, 60_000)
    assert isinstance(fresh, LeaseAcquired) and fresh.lease.fencing_token == 1

    await bus.register_process(reg("t"))
    await bus.complete_process("t", S(None))
    assert isinstance(await bus.claim_process_lease("t", owner("a"), 60_000), LeaseAcquired)


async def test_ls_9_expired_lease_stays_readable(leased_bus):
    """LS-9: get_lease returns the held lease even after it expired."""
    bus = leased_bus
    await bus.register_process(reg("p"))
    lease = (await bus.claim_process_lease("p", owner("a"), 1)).lease
    await asyncio.sleep(0.01)
    seen = await bus.get_process_lease("p")
    assert seen is not None and seen.lease_token == lease.lease_token
    assert seen.expires_at_epoch_ms == lease.expires_at_epoch_ms
