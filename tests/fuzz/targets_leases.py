"""Fuzz targets: leases, handle grants, sessions and retention."""

from __future__ import annotations

from hypothesis import strategies as st

from lash_streams.bus import Bus
from lash_streams.model import (
    AwaitSuccess,
    LeaseOwnerIdentity,
    LivenessLocalProcess,
    ProcessHandleDescriptor,
    ProcessLease,
    ProcessLeaseCompletion,
)

from .harness import call, target, unique
from .strategies import id_text, ids, numbers, scopes
from .targets_processes import registered


def owners(data: st.DataObject) -> LeaseOwnerIdentity:
    if data.draw(st.booleans(), "local liveness"):
        liveness = LivenessLocalProcess(
            host_id=data.draw(id_text),
            boot_id=data.draw(id_text),
            pid=data.draw(numbers, "pid"),
            process_start=data.draw(id_text),
        )
        return LeaseOwnerIdentity(
            owner_id=data.draw(ids), incarnation_id=data.draw(ids), liveness=liveness
        )
    return LeaseOwnerIdentity.opaque(data.draw(ids, "owner"), data.draw(ids, "incarnation"))


@target(
    "claim_process_lease",
    "reclaim_process_lease",
    "renew_process_lease",
    "complete_process_lease",
    "complete_job",
    "live_leases",
    "is_definitely_dead",
)
async def fuzz_leases(bus: Bus, data: st.DataObject) -> None:
    pid = await registered(bus) if data.draw(st.booleans()) else unique(data.draw(ids))
    owner = owners(data)
    ttl = data.draw(numbers, "lease_ttl_ms")
    claimed, err = await call(bus, lambda: bus.claim_process_lease(pid, owner, ttl))
    if err is None:
        lease = getattr(claimed, "lease", None)
        if lease is not None:
            assert (await bus.get_process_lease(pid)) == lease
    token = data.draw(ids, "lease token")
    fencing = data.draw(numbers, "fencing token")
    forged = ProcessLease(
        schema_version=2,
        process_id=pid,
        owner=owner,
        lease_token=token,
        fencing_token=fencing,
        claimed_at_epoch_ms=0,
        expires_at_epoch_ms=data.draw(numbers, "expires"),
    )
    claimant = owners(data)
    await call(bus, lambda: bus.reclaim_process_lease(pid, claimant, forged, ttl))
    await call(bus, lambda: bus.renew_process_lease(forged, ttl))
    completion = ProcessLeaseCompletion(process_id=pid, lease_token=token)
    await call(bus, lambda: bus.complete_process_lease(completion))
    lease = forged if data.draw(st.booleans()) else getattr(claimed, "lease", forged)
    done, err = await call(bus, lambda: bus.complete_job(pid, AwaitSuccess(value=1), lease=lease))
    if err is None:
        assert done.is_terminal() and await bus.get_process_lease(pid) is None
    many = data.draw(st.lists(ids, max_size=3) | ids)
    now = data.draw(st.none() | numbers)
    await call(bus, lambda: bus.live_leases(many, now), write=False)
    await call(bus, lambda: bus.is_definitely_dead(owner, claimant), write=False)


@target(
    "grant_handle",
    "revoke_handle",
    "transfer_handle_grants",
    "list_handle_grants",
    "list_live_handle_grants",
    "has_handle_grant",
)
async def fuzz_grants(bus: Bus, data: st.DataObject) -> None:
    pid = await registered(bus) if data.draw(st.booleans()) else unique(data.draw(ids))
    scope, other = data.draw(scopes, "scope"), data.draw(scopes, "to scope")
    label = data.draw(st.none() | ids, "label")
    descriptor = ProcessHandleDescriptor(kind=data.draw(st.none() | id_text), label=label)
    grant, err = await call(bus, lambda: bus.grant_handle(scope, pid, descriptor))
    if err is None:
        assert grant.process_id == pid
        assert await bus.has_handle_grant(scope, pid)
    await call(bus, lambda: bus.list_handle_grants(scope), write=False)
    await call(bus, lambda: bus.list_live_handle_grants(scope), write=False)
    await call(bus, lambda: bus.has_handle_grant(scope, pid), write=False)
    await call(bus, lambda: bus.transfer_handle_grants(scope, other, [pid]))
    await call(bus, lambda: bus.revoke_handle(other, pid))


@target("delete_session_process_state", "prune_terminal_processes")
async def fuzz_sessions_and_retention(bus: Bus, data: st.DataObject) -> None:
    session = unique(data.draw(ids, "session id"))
    await call(bus, lambda: bus.delete_session_process_state(session))
    cutoff = data.draw(numbers, "cutoff")
    await call(bus, lambda: bus.prune_terminal_processes(cutoff))
