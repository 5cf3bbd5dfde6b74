"""Issue 15: bad input never poisons. Each defect the issue lists: refused
before anything is written, with a typed error (or TypeError/ValueError before
I/O), and the namespace stays readable; a bad row never fails a
namespace-wide read."""

from __future__ import annotations

import datetime
import decimal
import math
import uuid
import warnings

import msgspec
import pytest

from lash_streams import errors
from lash_streams.model import (
    AbandonEvidence,
    AbandonRequest,
    AbandonWriter,
    AwaitAbandoned,
    InputToolCall,
    LeaseOwnerIdentity,
    LivenessLocalProcess,
    ProcessEventAppendRequest,
    ProcessListFilter,
    ProcessStarted,
    ProcessStatusFilter,
    WaitSignal,
    WaitState,
)

from ..conformance.fixtures import S, owner, plain, reg, req, scope

ANY = ProcessListFilter(status=ProcessStatusFilter.ANY)


async def namespace_readable(bus, *pids: str) -> None:
    listed = {r.id for r in await bus.list_processes(ANY)}
    for pid in pids:
        assert pid in listed
        assert await bus.get_process(pid) is not None


async def test_a_negative_u64_in_a_facet_is_refused_before_writing(bus):
    await bus.register_process(reg("p"))
    before = await bus.get_process("p")
    with pytest.raises(errors.InvalidValue, match="requested_at_ms"):
        await bus.request_process_abandon("p", AbandonRequest(requested_by="x", requested_at_ms=-1))
    with pytest.raises(errors.InvalidValue):
        await bus.record_first_started("p", ProcessStarted(owner=owner("o"), started_at_ms=-1))
    with pytest.raises(errors.InvalidValue):
        await bus.set_process_wait(
            "p",
            WaitState(
                kind=WaitSignal(name="n", event_type="signal.n", key="k", ordinal=0), since_ms=-5
            ),
        )
    assert await bus.get_process("p") == before
    await namespace_readable(bus, "p")


async def test_a_registration_that_would_not_read_back_is_refused(bus):
    base = reg("bad")
    for bad in (
        msgspec.structs.replace(base, input="x"),
        msgspec.structs.replace(base, input=InputToolCall(call=msgspec.Raw(b"{bad"))),
        msgspec.structs.replace(base, disposition="rerunnable"),
    ):
        with pytest.raises(errors.InvalidRegistration):
            await bus.register_process(bad)
    assert await bus.get_process("bad") is None
    await bus.register_process(reg("good"))
    await namespace_readable(bus, "good")


async def test_a_schema_the_validator_cannot_compile_is_refused_at_registration(bus):
    schema: dict = {"type": "array"}
    for _ in range(60):
        schema = {"type": "array", "items": schema}
    with pytest.raises(errors.InvalidRegistration, match="cannot be compiled"):
        await bus.register_process(reg("deep", plain("x", schema)))
    assert await bus.get_process("deep") is None


async def test_none_where_a_value_is_expected_is_a_type_error(bus):
    await bus.register_process(reg("p"))
    with pytest.raises(TypeError, match="external_ref"):
        await bus.set_external_ref("p", None)
    with pytest.raises(TypeError, match="descriptor"):
        await bus.grant_handle(scope("s"), "p", None)
    with pytest.raises(TypeError, match="sequence"):
        await bus.ack_wake("p", None)
    with pytest.raises(TypeError, match="cutoff_epoch_ms"):
        await bus.prune_terminal_processes(None)
    with pytest.raises(TypeError, match="session_scope"):
        await bus.list_handle_grants(None)
    await namespace_readable(bus, "p")
    assert await bus.handle_grants_for_process("p") == []


async def test_a_lease_owner_out_of_range_is_refused_before_writing(bus):
    await bus.register_process(reg("p"))
    big = LeaseOwnerIdentity(
        owner_id="o",
        incarnation_id="o:1",
        liveness=LivenessLocalProcess(host_id="h", boot_id="b", pid=2**32, process_start="s"),
    )
    with pytest.raises(errors.InvalidValue, match="pid"):
        await bus.claim_process_lease("p", big, 10_000)
    assert await bus.get_process_lease("p") is None
    claimed = await bus.claim_process_lease("p", owner("o"), 10_000)
    lease = claimed.lease
    with pytest.raises(ValueError, match="lease_ttl_ms"):
        await bus.renew_process_lease(lease, 2**63)
    with pytest.raises(ValueError, match="lease_ttl_ms"):
        await bus.claim_process_lease("p", owner("o"), -1)


async def test_only_the_four_await_outputs_complete_a_process(bus):
    await bus.register_process(reg("p"))
    for bad in ({"type": "success", "value": 1}, None, "done"):
        with pytest.raises(TypeError, match="await_output"):
            await bus.complete_process("p", bad)
    evidence = AbandonEvidence(writer=AbandonWriter.SWEEP, epoch_ms=-1)
    with pytest.raises(errors.InvalidValue, match="epoch_ms"):
        await bus.complete_process("p", AwaitAbandoned(evidence=evidence))
    assert not (await bus.get_process("p")).is_terminal()
    record = await bus.complete_process("p", S({"ok": True}))
    assert record.status.await_output == S({"ok": True})


@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        math.inf,
        {1, 2},
        b"bytes",
        decimal.Decimal("1.5"),
        datetime.datetime(2026, 1, 1),
        uuid.UUID(int=1),
        object(),
        1j,
        {1: "int key"},
        "\ud800",
        2**64,
        -(2**63) - 1,
        [0, 10**400],
    ],
    ids=lambda v: (
        f"{type(v).__name__}-{v!r}"[:30]
        if not isinstance(v, object) or type(v) is not object
        else "object"
    ),
)
async def test_payloads_hold_plain_json_only(bus, value):
    """Nothing is converted without a word (NaN as null, a set as a list) nor
    refused late with a raw error."""
    await bus.register_process(reg("p", plain("x")))
    with pytest.raises(errors.InvalidPayload, match="not encodable as JSON"):
        await bus.append_event("p", req("x", {"v": value}))
    assert await bus.events_after("p", 0) == []


async def test_payload_integers_are_those_serde_json_holds(bus):
    """An int past u64 or below i64 has no serde_json integer (Rust refuses to
    serialize one, and reads its text as a float): refused with the range,
    never stored as digits a Rust host would rewrite; the extremes are kept."""
    await bus.register_process(reg("p", plain("x")))
    with pytest.raises(errors.InvalidPayload, match=r"integer outside .*2\*\*64 - 1"):
        await bus.append_event("p", req("x", {"v": [1, {"n": 2**64}]}))
    extremes = {"v": [2**64 - 1, -(2**63), 0]}
    await bus.append_event("p", req("x", extremes))
    [event] = await bus.events_after("p", 0)
    assert event.payload == extremes


async def test_a_payload_nested_too_deep_is_refused(bus):
    await bus.register_process(reg("p", plain("x")))
    deep: list = []
    for _ in range(5_000):
        deep = [deep]
    with pytest.raises(errors.InvalidPayload, match="nested deeper"):
        await bus.append_event("p", req("x", {"v": deep}))


async def test_cursors_and_timeouts_are_checked_before_io(bus):
    await bus.register_process(reg("p", plain("x")))
    await bus.append_event("p", req("x", {}))
    with pytest.raises(ValueError, match="after_sequence"):
        await bus.events_after("p", -2)
    with pytest.raises(ValueError, match="after_sequence"):
        await bus.await_event("p", "x", -2, timeout=0.1)
    with pytest.raises(ValueError, match="after_sequence"):
        async for _ in bus.tail_events("p", -2):
            pass
    assert [e.sequence for e in await bus.recent_events("p", 2**64)] == [1]
    with pytest.raises(ValueError, match="timeout"):
        await bus.await_terminal("p", timeout=math.nan)
    await bus.complete_process("p", S(1))
    assert await bus.await_terminal("p", timeout=math.inf) == S(1)


async def test_a_dict_instead_of_a_model_value_is_a_type_error(bus):
    await bus.register_process(reg("p", plain("x")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no never-awaited coroutine left behind
        with pytest.raises(TypeError, match="request"):
            await bus.append_event("p", {"event_type": "x", "payload": {}})
        with pytest.raises(TypeError, match="registration"):
            await bus.register_process({"id": "q"})
        with pytest.raises(TypeError, match="item 0"):
            await bus.append_events([("p", {"event_type": "x"})])


async def test_a_bad_row_never_fails_a_namespace_wide_read(bus):
    """A record written by another tool (or an older version) that does not
    decode is skipped, logged and counted; the rest of the namespace reads."""
    await bus.register_process(reg("good"))
    await bus.register_process(reg("bad"))
    await bus.redis.hset(bus.keys.process("bad").record, "abandon", b"{not json")
    bus.forget("bad")
    assert [r.id for r in await bus.list_processes(ANY)] == ["good"]
    assert [r.id for r in await bus.list_non_terminal()] == ["good"]
    assert await bus.relay_pending() == 0
    report = await bus.prune_terminal_processes(await bus.server_time_ms())
    assert report is not None


async def test_an_unencodable_append_request_type_is_checked(bus):
    await bus.register_process(reg("p", plain("x")))
    request = ProcessEventAppendRequest(event_type="x", payload={"v": math.nan})
    with pytest.raises(errors.InvalidPayload):
        await bus.append_events([("p", request)])
    assert await bus.events_after("p", 0) == []


async def test_a_grant_on_a_scope_that_cannot_be_stored_writes_nothing(bus):
    """Each part of the scope is under 512 bytes, the scope id is not: refused
    before the reverse index is written, so later reads keep working."""
    from lash_streams.model import ProcessHandleDescriptor, SessionScope

    await bus.register_process(reg("p"))
    wide = SessionScope(session_id="s" * 300, agent_frame_id="f" * 300)
    with pytest.raises(errors.InvalidId):
        await bus.grant_handle(wide, "p", ProcessHandleDescriptor(label="x"))
    with pytest.raises(errors.InvalidValue):
        await bus.grant_handle(scope("s"), "p", ProcessHandleDescriptor(label="\ud800"))
    assert await bus.handle_grants_for_process("p") == []


async def test_a_lone_surrogate_replay_key_is_refused_before_writing(bus):
    await bus.register_process(reg("p", plain("x")))
    with pytest.raises(errors.InvalidValue, match="replay key"):
        await bus.append_events([("p", req("x", {}, key="\ud800"))])
    with pytest.raises(errors.InvalidValue, match="replay key"):
        await bus.append_event("p", req("x", {}, key="\ud800"))
    assert await bus.events_after("p", 0) == []


async def test_a_conflicting_re_registration_leaves_the_indexes_as_they_were(bus):
    """RegistrationConflict for a completed process: it stays out of the
    running index and out of the new wake target's session set."""
    await bus.register_process(reg("p"))
    await bus.complete_process("p", S(1))
    other = msgspec.structs.replace(reg("p"), wake_target=scope("elsewhere"))
    with pytest.raises(errors.RegistrationConflict):
        await bus.register_process(other)
    running = await bus.redis.zrange(bus.keys.index_running, 0, -1)
    assert b"p" not in running
    assert not await bus.redis.sismember(bus.keys.session_targets("elsewhere"), "p")
    assert [r.id for r in await bus.list_non_terminal()] == []


async def test_a_runner_returning_something_else_fails_the_run_visibly(bus):
    """A runner's dict is never stored as another terminal: the run fails."""
    from lash_streams.model import LeaseOwnerIdentity, StatusFailed

    from ..conformance.fixtures import rr_reg

    await bus.register_process(rr_reg("r"))

    async def runner(record, lease):
        return {"type": "success", "value": 1}

    stem = LeaseOwnerIdentity.opaque("worker", "worker:1")
    recovery = bus.recovery(stem, runner=runner, lease_ttl_ms=3000, renew_every_ms=1000)
    await recovery.execute("r")
    status = (await bus.get_process("r")).status
    assert isinstance(status, StatusFailed)
    assert "not an await output" in status.await_output.message


async def test_more_ill_typed_arguments_are_refused_before_io(bus):
    from lash_streams.model import (
        CausalProcessEvent,
        OriginatorHost,
        ProcessProvenance,
    )

    with pytest.raises(ValueError):
        bus.wake_consumer(group="g", consumer="c", scopes=[scope("s")], batch=0)
    with pytest.raises(ValueError):
        bus.wake_consumer(group="g", consumer="c", scopes=[scope("s")], claim_idle_ms=-1)
    with pytest.raises(errors.InvalidValue):
        await bus.list_processes(ProcessListFilter(status=None))
    provenance = ProcessProvenance(
        originator=OriginatorHost(), caused_by=CausalProcessEvent(process_id="x", sequence=-1)
    )
    with pytest.raises(errors.InvalidRegistration):
        await bus.register_process(msgspec.structs.replace(reg("c"), provenance=provenance))
    assert await bus.get_process("c") is None


async def test_a_cancel_reason_must_be_text_that_can_be_stored(bus):
    await bus.register_process(reg("p"))
    with pytest.raises(TypeError, match="reason"):
        await bus.request_cancel("p", 5)
    with pytest.raises(errors.InvalidValue, match="reason"):
        await bus.request_cancel("p", "\ud800")
    assert await bus.events_after("p", 0) == []
