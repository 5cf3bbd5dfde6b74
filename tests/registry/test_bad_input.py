"""Bad input gets a typed error and leaves nothing half-written."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from lash_streams import errors
from lash_streams.model import (
    AbandonRequest,
    LeaseOwnerIdentity,
    ProcessExternalRef,
    ProcessHandleDescriptor,
    ProcessLease,
    ProcessLeaseCompletion,
    ProcessStarted,
    WaitSignal,
    WaitState,
)
from lash_streams.store.append import MAX_EVENT_BYTES

from ..conformance.fixtures import S, owner, plain, reg, req, scope, wake

NASTY_IDS = [
    "{curly}",
    "a}b{c",
    "colon:sep:arated",
    "glob*?[x]",
    "with space",
    "new\nline",
    "ünïcödé-🚀",
    "%41",
    "A",
    "tab\tand\0nul",
]


async def _keys(bus) -> set[bytes]:
    found: set[bytes] = set()
    async for key in bus.redis.scan_iter(match=f"{bus.namespace}:*"):
        found.add(key)
    return found


@pytest.mark.parametrize("pid", NASTY_IDS)
async def test_ids_with_special_characters_round_trip_in_one_slot(bus, pid):
    """Cluster-safe keys: any id stays in one slot and never collides."""
    await bus.register_process(reg(pid, wake("w")))
    result = await bus.append_event(pid, req("w", {"wake_input": "x"}, key="k", target=scope(pid)))
    assert result.event.process_id == pid
    assert (await bus.get_process(pid)).id == pid
    await bus.claim_process_lease(pid, owner("o"), 1000)
    await bus.grant_handle(scope(pid), pid, ProcessHandleDescriptor())
    await bus.complete_process(pid, S(pid))
    slots = {key_slot(k.encode()) for k in bus.keys.process(pid).all()}
    assert len(slots) == 1
    assert [r.id for r in await bus.list_processes()] == []
    await bus.prune_terminal_processes(2**63 - 1)
    assert await bus.get_process(pid) is None


async def test_similar_ids_do_not_collide(bus):
    await bus.register_process(reg("%41", plain("x")))
    await bus.register_process(reg("A", plain("x")))
    await bus.append_event("A", req("x", {}))
    assert len(await bus.events_after("%41", 0)) == 0
    assert len(await bus.events_after("A", 0)) == 1


@pytest.mark.parametrize(
    "bad", ["x" * 513, "\ud800lone-surrogate", "é" * 300], ids=["long", "surrogate", "long-utf8"]
)
async def test_unstorable_ids_are_rejected(bus, bad):
    before = await _keys(bus)
    with pytest.raises(errors.InvalidId):
        await bus.register_process(reg(bad))
    with pytest.raises(errors.InvalidId):
        await bus.append_event(bad, req("x", {}))
    assert await _keys(bus) == before


async def test_one_megabyte_payload_is_accepted(bus):
    await bus.register_process(reg("big", plain("x")))
    payload = {"blob": "y" * (1024 * 1024)}
    result = await bus.append_event("big", req("x", payload))
    assert (await bus.events_after("big", 0))[0].payload == payload
    assert result.event.sequence == 1


async def test_payload_over_the_limit_is_rejected_and_writes_nothing(bus):
    await bus.register_process(reg("huge", plain("x")))
    before = await _keys(bus)
    seq_before = await bus.redis.hget(bus.keys.process("huge").record, "seq")
    with pytest.raises(errors.PayloadTooLarge, match="limit"):
        await bus.append_event("huge", req("x", {"blob": "z" * (MAX_EVENT_BYTES + 1)}))
    assert await _keys(bus) == before
    assert await bus.redis.hget(bus.keys.process("huge").record, "seq") == seq_before


async def test_schema_failure_writes_nothing(bus):
    typed = plain("t", {"type": "object", "properties": {"n": {"type": "integer"}}})
    await bus.register_process(reg("p", typed))
    before = await _keys(bus)
    with pytest.raises(errors.InvalidPayload, match="invalid `t` payload"):
        await bus.append_event("p", req("t", {"n": "nope"}))
    assert await _keys(bus) == before


async def test_unknown_process_on_every_method(bus):
    """§14: unknown_process from every per-process operation but the reads
    lash defines as returning none (get_process, get_lease, release)."""
    pid = "missing"
    lease = ProcessLease(
        schema_version=2,
        process_id=pid,
        owner=owner("o"),
        lease_token="t",
        fencing_token=1,
        claimed_at_epoch_ms=0,
        expires_at_epoch_ms=0,
    )
    wait = WaitState(
        kind=WaitSignal(name="r", event_type="signal.r", key="k", ordinal=1), since_ms=0
    )
    calls = [
        bus.append_event(pid, req("x", {})),
        bus.events_after(pid, 0),
        bus.count_events_through(pid, "x", 1),
        bus.recent_events(pid, 1),
        bus.wake_events_after(pid, 0),
        bus.complete_process(pid, S(1)),
        bus.record_first_started(pid, ProcessStarted(owner=owner("o"), started_at_ms=1)),
        bus.request_process_abandon(pid, AbandonRequest(requested_by="x", requested_at_ms=1)),
        bus.set_process_wait(pid, wait),
        bus.clear_process_wait(pid),
        bus.ack_wake(pid, 1),
        bus.set_external_ref(pid, ProcessExternalRef(backend="b", id="i")),
        bus.grant_handle(scope("s"), pid, ProcessHandleDescriptor()),
        bus.handle_grants_for_process(pid),
        bus.claim_process_lease(pid, owner("o"), 1000),
        bus.reclaim_process_lease(pid, owner("o"), lease, 1000),
        bus.await_terminal(pid, timeout=1),
        bus.send_signal(pid, "r", "s1", {}),
        bus.request_cancel(pid, "why"),
    ]
    for call in calls:
        with pytest.raises(errors.UnknownProcess, match="unknown process `missing`"):
            await call
    assert await bus.get_process(pid) is None
    assert await bus.get_process_lease(pid) is None
    await bus.complete_process_lease(ProcessLeaseCompletion(process_id=pid, lease_token="t"))
    assert not await bus.has_handle_grant(scope("s"), pid)
    with pytest.raises(errors.LeaseExpired):
        await bus.renew_process_lease(lease, 1000)
    assert await _keys(bus) == set()


async def test_bad_namespace_is_rejected():
    from lash_streams.store.keys import Keyspace

    for bad in ["", "a b", "x{y}", "ns:with:colon", "n" * 65]:
        with pytest.raises(errors.InvalidId):
            Keyspace(bad)


def test_owner_identity_decodes_with_default_liveness():
    from lash_streams.model._codec import decode

    ident = decode(b'{"owner_id":"a","incarnation_id":"b"}', LeaseOwnerIdentity)
    assert ident.liveness.__class__.__name__ == "LivenessOpaque"
