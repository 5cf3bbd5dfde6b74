"""Defects the fuzz suite found, each pinned without Hypothesis."""

from __future__ import annotations

import asyncio
import math

import msgspec
import pytest

from lash_streams import errors
from lash_streams.model import (
    LeaseOwnerIdentity,
    LivenessLocalProcess,
    ProcessEventAppendRequest,
    ProcessLease,
    ProcessRegistration,
    ProcessWakeDelivery,
)

from ..conformance.fixtures import owner, plain, reg, scope
from .harness import snapshot, unchanged


async def test_a_wrong_argument_type_is_a_typed_error_that_is_still_a_type_error(bus):
    """Was a bare TypeError/ValueError: now InvalidType/InvalidValue
    (LashStreamsError subclasses, still TypeError/ValueError)."""
    await bus.register_process(reg("p", plain("x")))
    with pytest.raises(errors.InvalidType, match="item 0 process id"):
        await bus.append_events([(b"p", ProcessEventAppendRequest(event_type="x", payload={}))])
    with pytest.raises(errors.InvalidType, match="sequence"):
        await bus.ack_wake("p", None)
    with pytest.raises(errors.InvalidValue, match="after_sequence"):
        await bus.events_after("p", -2)
    with pytest.raises(errors.InvalidValue, match="timeout"):
        await bus.await_terminal("p", timeout=math.nan)
    with pytest.raises(errors.InvalidValue, match="lease_ttl_ms"):
        await bus.claim_process_lease("p", owner("o"), 10**12)
    assert issubclass(errors.InvalidType, TypeError)


async def test_a_reclaim_with_a_bad_claimant_or_ttl_writes_no_lease(bus):
    """Was: reclaim_process_lease encoded the claimant unchecked and took
    int(ttl), so a claimant with a negative pid wrote a lease hash that no
    read could decode (DecodeError on every later lease read)."""
    await bus.register_process(reg("p"))
    holder = owner("o")
    observed = ProcessLease(
        schema_version=2,
        process_id="p",
        owner=holder,
        lease_token="t",
        fencing_token=19,
        claimed_at_epoch_ms=0,
        expires_at_epoch_ms=1,
    )
    bad = LeaseOwnerIdentity(
        owner_id="c",
        incarnation_id="c:1",
        liveness=LivenessLocalProcess(host_id="h", boot_id="b", pid=-301, process_start="s"),
    )
    before = await snapshot(bus)
    with pytest.raises(errors.InvalidValue, match="pid"):
        await bus.reclaim_process_lease("p", bad, observed, 1000)
    for ttl in (-1, math.nan, "1000"):
        with pytest.raises(errors.LashStreamsError, match="lease_ttl_ms"):
            await bus.reclaim_process_lease("p", owner("c"), observed, ttl)
    assert unchanged(before, await snapshot(bus))
    assert await bus.get_process_lease("p") is None


async def test_a_scope_that_is_not_a_session_scope_is_refused(bus):
    """Was AttributeError ('str' object has no attribute 'session_id') from
    register_process, append_event, revoke_handle, transfer_handle_grants."""
    await bus.register_process(reg("p", plain("x")))
    with pytest.raises(errors.InvalidType, match="wake target"):
        await bus.register_process(
            msgspec.structs.replace(ProcessRegistration.external("q"), wake_target="session:s")
        )
    request = ProcessEventAppendRequest(event_type="x", payload={}, wake_target_scope="s")
    with pytest.raises(errors.InvalidType, match="wake target"):
        await bus.append_event("p", request)
    with pytest.raises(errors.InvalidType, match="session_scope"):
        await bus.revoke_handle("s", "p")
    with pytest.raises(errors.InvalidType, match="to_scope"):
        await bus.transfer_handle_grants(scope("s"), "t", ["p"])
    assert await bus.get_process("q") is None
    assert await bus.events_after("p", 0) == []


def _fields(struct):
    return {name: getattr(struct, name) for name in struct.__struct_fields__}


async def test_a_signal_name_that_is_not_text_is_refused(bus):
    """Was TypeError ('bool' object is not iterable) from send_signal."""
    await bus.register_process(reg("p"))
    with pytest.raises(errors.InvalidSignalName, match="string"):
        await bus.send_signal("p", True, "s1", {})


async def test_a_wake_delivery_that_is_not_json_is_refused_before_writing(bus):
    """Was NotImplementedError (cannot encode complex) from deliver_wake."""
    await bus.register_process(reg("p"))
    delivery = ProcessWakeDelivery(
        wake_id="w",
        target_session_id="s",
        target_scope_id="session:s",
        process_id="p",
        sequence=1,
        dedupe_key="d",
        input=1j,
        created_at_ms=0,
    )
    before = await snapshot(bus)
    with pytest.raises(errors.InvalidValue):
        await bus.deliver_wake(delivery)
    with pytest.raises(errors.InvalidType, match="item 0"):
        await bus.deliver_wakes([delivery])
    assert unchanged(before, await snapshot(bus))


async def test_ready_stream_reads_check_their_kinds(bus):
    """Was TypeError (unhashable list) from ensure_ready_group and
    RuntimeError (StopIteration) from read_ready with no kind."""
    with pytest.raises(errors.InvalidId, match="job kind"):
        await bus.ensure_ready_group(["k"])
    assert await bus.read_ready([], "c", 1, None) == []
    with pytest.raises(errors.InvalidType, match="kinds"):
        await bus.read_ready("k", "c", 1, None)


@pytest.mark.parametrize(
    "knobs",
    [
        {"batch": math.nan},
        {"batch": "4"},
        {"claim_idle_ms": 1.5},
        {"block_ms": -1},
        {"group": b"g"},
        {"consumer": "\ud800"},
        {"scopes": 5},
    ],
    ids=str,
)
async def test_wake_consumer_settings_are_checked(bus, knobs):
    """Was: NaN accepted silently (the consumer then failed later), a string
    a raw TypeError from a comparison, a bad group name a raw encode error."""
    settings = {"group": "g", "consumer": "c", "scopes": [scope("s")], **knobs}
    with pytest.raises(errors.LashStreamsError):
        bus.wake_consumer(**settings)


@pytest.mark.parametrize(
    "knobs",
    [{"lease_ms": math.nan}, {"max_scopes": "2"}, {"block_ms": -1}, {"pod": b"p"}],
    ids=str,
)
async def test_fleet_consumer_settings_are_checked(bus, knobs):
    with pytest.raises(errors.LashStreamsError):
        bus.fleet_consumer(**{"group": "g", "pod": "p", **knobs})


@pytest.mark.parametrize(
    "knobs",
    [{"lease_ttl_ms": math.nan}, {"renew_every_ms": "1"}, {"max_runs": 0}, {"unrunnable": "x"}],
    ids=str,
)
async def test_recovery_settings_are_checked(bus, knobs):
    with pytest.raises(errors.InvalidValue if "max_runs" in knobs else errors.LashStreamsError):
        bus.recovery(owner("w"), **knobs)


async def test_listings_of_many_ids_take_a_list(bus):
    with pytest.raises(errors.InvalidType, match="process_ids"):
        await bus.live_leases(5)
    with pytest.raises(errors.InvalidType, match="process_ids"):
        await bus.gather_records(True)


async def test_a_consumer_with_block_ms_zero_does_not_wait_for_ever(bus):
    """Was: block_ms=0 became XREADGROUP BLOCK 0 (wait for ever), so
    ``next(timeout=0.01)`` of a fleet or wake consumer never returned."""
    fleet = bus.fleet_consumer(group="g", pod="p", block_ms=0)
    wakes = bus.wake_consumer(group="g", consumer="c", scopes=[scope("s")], block_ms=0)
    try:
        assert await asyncio.wait_for(fleet.next(timeout=0.01), 5) is None
        assert await asyncio.wait_for(wakes.next(timeout=0.01), 5) is None
    finally:
        await fleet.aclose()
        await wakes.aclose()
        await bus.drop_fleet_group("g")


async def test_a_registration_id_that_is_not_text_is_refused(bus):
    """Was TypeError ('NoneType' object is not iterable) from register_process."""
    for bad in (None, 5):
        with pytest.raises(errors.InvalidRegistration, match="non-empty string"):
            await bus.register_process(ProcessRegistration.external(bad))


async def test_ready_jobs_are_checked_before_they_are_requeued_or_settled(bus):
    """Was AttributeError ('str' object has no attribute 'value')."""
    from lash_streams.store.dispatch import ReadyJob

    job = ReadyJob(kind="k", entry_id="0-1", process_id="p", disposition="rerunnable")
    before = await snapshot(bus)
    with pytest.raises(errors.InvalidValue, match="disposition"):
        await bus.requeue_ready([job])
    with pytest.raises(errors.InvalidValue, match="disposition"):
        await bus.settle_ready([job])
    assert unchanged(before, await snapshot(bus))


async def test_start_job_checks_its_owners_before_claiming(bus):
    """Was UnicodeEncodeError from start_job with a lone surrogate in the
    attempt's owner id (encoded unchecked), and a TTL past the lease limit."""
    record = await bus.submit("k", id="job-1")
    bad = LeaseOwnerIdentity.opaque("\ud800", "w:1")
    before = await snapshot(bus)
    with pytest.raises(errors.InvalidValue, match="attempt"):
        await bus.start_job(record.id, record.disposition, bad, owner("w"), 1000)
    with pytest.raises(errors.InvalidValue, match="lease_ttl_ms"):
        await bus.start_job(record.id, record.disposition, owner("w"), owner("w"), 10**12)
    with pytest.raises(errors.InvalidValue, match="disposition"):
        await bus.start_job(record.id, "rerunnable", owner("w"), owner("w"), 1000)
    assert unchanged(before, await snapshot(bus))
    assert await bus.get_process_lease(record.id) is None


async def test_an_unhashable_id_is_an_invalid_id(bus):
    """Was TypeError (unhashable type: 'list') from the key builders' caches."""
    for call in (
        lambda: bus.get_process(["p"]),
        lambda: bus.events_after({"p": 1}, 0),
        lambda: bus.delete_session_process_state(["s"]),
    ):
        with pytest.raises(errors.InvalidId, match="must be a string"):
            await call()


async def test_unencodable_text_is_refused_before_the_command_is_sent(bus):
    """Was UnicodeEncodeError from redis-py's command packing."""
    await bus.register_process(reg("p"))
    claimed = await bus.claim_process_lease("p", owner("o"), 10_000)
    forged = ProcessLease(
        **{**_fields(claimed.lease), "owner": LeaseOwnerIdentity.opaque("a\udc80", "i")}
    )
    with pytest.raises(errors.InvalidValue, match="lease"):
        await bus.renew_process_lease(forged, 10_000)
    with pytest.raises(errors.InvalidId, match="group"):
        await bus.drop_fleet_group("g\udfff")


async def test_an_event_type_that_is_not_text_is_refused(bus):
    """Was NotImplementedError (cannot encode object) from the payload hash."""
    await bus.register_process(reg("p", plain("x")))
    with pytest.raises(errors.InvalidType, match="event_type"):
        await bus.append_event("p", ProcessEventAppendRequest(event_type=object(), payload={}))
    assert await bus.events_after("p", 0) == []


async def test_submit_and_worker_refuse_bad_arguments_typed(bus):
    """Was RecursionError from submit with a 10k-deep payload, and
    AttributeError from worker(handlers=5)."""
    deep: list = []
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(errors.InvalidValue, match="nested"):
        await bus.submit("k", deep)
    with pytest.raises(errors.InvalidType, match="handlers"):
        bus.worker(owner("w"), 5)


async def test_ensure_ready_group_refuses_a_blank_kind(bus):
    """Was: ensure_ready_group("") created a ready stream no job kind has,
    without a TTL and outside every retention rule (key hygiene failed)."""
    for blank in ("", "  "):
        with pytest.raises(errors.InvalidValue, match="job kind"):
            await bus.ensure_ready_group(blank)
    assert await snapshot(bus) == {}


def test_the_state_cache_checks_ids_before_hashing(bus):
    """Was TypeError (unhashable type: 'list') from forget/cached_state."""
    with pytest.raises(errors.InvalidId):
        bus.forget(["p"])
    with pytest.raises(errors.InvalidId):
        bus.cached_state({"p": 1})


async def test_state_checks_ids_before_hashing(bus):
    with pytest.raises(errors.InvalidId):
        await bus.state(["p"])


async def test_a_bad_url_option_is_an_invalid_value(servers):
    """Was a raw ValueError from redis-py ("Invalid value for
    'max_connections' in connection URL")."""
    import lash_streams as ls

    url = servers.get("valkey")[0]
    with pytest.raises(errors.InvalidValue, match="max_connections"):
        await ls.connect(url + "?max_connections=x", namespace="n")


async def test_cluster_options_on_a_standalone_url_are_typed_errors(servers):
    """Was RedisClusterException / TypeError (RedisCluster got an unexpected
    keyword argument 'timeout') from connect."""
    import lash_streams as ls

    url = servers.get("valkey")[0]
    with pytest.raises(errors.InvalidValue, match="cluster must be"):
        await ls.connect(url, namespace="n", cluster="yes")
    with pytest.raises(errors.InvalidValue, match="not usable"):
        await ls.connect(url + "?db=99", namespace="n", cluster=True)
    with pytest.raises(errors.ConnectionFailed):
        await ls.connect(url, namespace="n", cluster=True)


@pytest.mark.parametrize("window", [math.nan, math.inf, 1j, -5, "10", 10**13], ids=repr)
async def test_a_bad_wake_dedupe_window_is_refused_before_connecting(servers, window):
    """Was ValueError/OverflowError/TypeError from int(window) after the bus
    was open (its connections left open), and -5 or "10" taken silently."""
    import lash_streams as ls

    with pytest.raises(errors.LashStreamsError, match="wake_dedupe_window_ms"):
        await ls.connect(servers.get("valkey")[0], namespace="n", wake_dedupe_window_ms=window)


async def test_reading_a_kind_without_its_group_is_a_typed_error(bus):
    """Was: a raw redis ResponseError (NOGROUP) from read_ready and
    reclaim_ready for a kind whose ready stream or group does not exist."""
    with pytest.raises(errors.GroupMissing, match="ensure_ready_group"):
        await bus.read_ready(["k"], "c", 1, None)
    with pytest.raises(errors.GroupMissing):
        await bus.reclaim_ready(["k"], "c", 1, 1)
    await bus.ensure_ready_group("k")
    assert await bus.read_ready(["k"], "c", 1, None) == []
    assert await bus.reclaim_ready(["k"], "c", 1, 1) == []


async def test_a_refused_scheduled_registration_leaves_no_schedule_entry(bus):
    """Was: schedule_process (and submit with delay_s) wrote the schedule
    entry before the registration was checked, so a refused registration
    (blank id, a wake target too long to store) left a schedule member."""
    from lash_streams.model import RecoveryDisposition, SessionScope

    before = await snapshot(bus)
    blank = ProcessRegistration.external(" ", disposition=RecoveryDisposition.RERUNNABLE)
    with pytest.raises(errors.InvalidRegistration, match="non-empty"):
        await bus.schedule_process(blank, 0)
    with pytest.raises(errors.InvalidId, match="wake target"):
        await bus.submit("k", id="j1", delay_s=1, session=SessionScope(session_id="s" * 510))
    assert unchanged(before, await snapshot(bus))


async def test_has_handle_grant_checks_the_process_id(bus):
    """Was UnicodeEncodeError (a lone surrogate sent as the hash field)."""
    with pytest.raises(errors.InvalidId):
        await bus.has_handle_grant(scope("s"), "p\ud800")


async def test_a_replay_key_that_is_not_text_is_refused(bus):
    """Was: RuntimeReplay(key=5) was stored and read back as the text "5",
    so the stored event differed from the one the append returned."""
    from lash_streams.model import RuntimeReplay

    await bus.register_process(reg("p", plain("x")))
    request = ProcessEventAppendRequest(event_type="x", payload={}, replay=RuntimeReplay(key=5))
    with pytest.raises(errors.InvalidType, match="replay key"):
        await bus.append_event("p", request)
    with pytest.raises(errors.InvalidType, match="replay key"):
        await bus.append_events([("p", request)])
    assert await bus.events_after("p", 0) == []


async def test_a_lease_completion_with_unencodable_text_is_refused(bus):
    """Was UnicodeEncodeError from complete_process_lease (token sent unchecked)."""
    from lash_streams.model import ProcessLeaseCompletion

    with pytest.raises(errors.InvalidValue, match="completion"):
        await bus.complete_process_lease(
            ProcessLeaseCompletion(process_id="p", lease_token="\udfff")
        )


async def test_a_scope_holding_a_non_text_id_is_refused(bus):
    """Was NotImplementedError (cannot encode object) from revoke_handle."""
    from lash_streams.model import SessionScope

    await bus.register_process(reg("p"))
    with pytest.raises(errors.InvalidId):
        await bus.revoke_handle(SessionScope(session_id=object()), "p")


@pytest.mark.parametrize("knobs", [{"lease_ms": 2**68}, {"max_scopes": 10**12}], ids=str)
async def test_consumer_settings_past_what_redis_takes_are_refused(bus, knobs):
    """Was a raw ResponseError (Invalid min-idle-time argument for
    XAUTOCLAIM) from fleet_consumer(lease_ms=2**68).next()."""
    with pytest.raises(errors.InvalidValue, match="between"):
        bus.fleet_consumer(group="g", pod="p", **knobs)
    with pytest.raises(errors.InvalidValue, match="between"):
        bus.wake_consumer(group="g", consumer="c", scopes=[scope("s")], claim_idle_ms=2**68)
