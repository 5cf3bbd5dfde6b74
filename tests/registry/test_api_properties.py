"""Issue 15: a property suite over the public write methods, on the embedded
Valkey. For hostile but type-correct values, then ill-typed ones:

- the call succeeds and what it stored reads back exactly, or it raises a
  ``lash_streams.errors`` class (or ``TypeError``/``ValueError`` before I/O)
  and the namespace's keys are unchanged;
- no raw library exception escapes, and every stored record still decodes
  (``list_processes`` over the namespace never fails).

A fixed seed runs in ``make test``; ``LASH_STREAMS_PROPERTY_EXAMPLES=N`` runs N
examples per property (the closing note of issue 15 quotes a 10x run).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import lash_streams as ls
from lash_streams import errors
from lash_streams.model import (
    AbandonRequest,
    AwaitFailure,
    AwaitSuccess,
    LeaseOwnerIdentity,
    LivenessLocalProcess,
    ProcessEventAppendRequest,
    ProcessHandleDescriptor,
    ProcessListFilter,
    ProcessRegistration,
    ProcessStatusFilter,
    RuntimeReplay,
    SessionScope,
    ToolFailureClass,
)
from lash_streams.model._codec import encode

from ..conformance.fixtures import plain, reg

EXAMPLES = int(os.environ.get("LASH_STREAMS_PROPERTY_EXAMPLES", "40"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ANY = ProcessListFilter(status=ProcessStatusFilter.ANY)

# Text with everything Python strings can hold, lone surrogates included.
hostile_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)
ids = st.one_of(st.text(min_size=1, max_size=20), hostile_text, st.text(min_size=500, max_size=600))
hostile_ints = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([-1, 0, 2**32, 2**63, 2**64 - 1, 2**64]),
)
hostile_scalars = st.one_of(
    st.none(),
    st.booleans(),
    hostile_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
    st.binary(max_size=4),
    st.sets(st.integers(), max_size=2),
    st.just(object()),
    st.just(1j),
)
hostile_json = st.recursive(
    hostile_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(hostile_text, st.integers()), inner, max_size=3),
    ),
    max_leaves=8,
)
TYPED = (errors.LashStreamsError, TypeError, ValueError)


@pytest.fixture
def url(servers: Any) -> str:
    target = servers.get("valkey")
    if target is None:  # pragma: no cover - the embedded server is always there
        pytest.skip("no embedded server")
    return str(target[0])


async def _keys(bus: ls.Bus) -> dict[bytes, Any]:
    """Every key of the namespace with its content (``DUMP`` bytes can differ
    for equal content: a hash's encoding changes as it is read and written)."""
    r = bus.redis
    out: dict[bytes, Any] = {}
    async for key in r.scan_iter(match=f"{bus.keys.namespace}:*", count=1_000):
        kind = (await r.type(key)).decode()
        if kind == "hash":
            out[key] = await r.hgetall(key)
        elif kind == "stream":
            out[key] = await r.xrange(key)
        elif kind == "zset":
            out[key] = await r.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            out[key] = await r.smembers(key)
        else:
            out[key] = await r.dump(key)
    return out


def _run(url: str, body: Callable[[ls.Bus], Awaitable[None]]) -> None:
    async def main() -> None:
        async with ls.connect(url, namespace=f"h{uuid.uuid4().hex[:10]}") as bus:
            try:
                await body(bus)
                # Whatever happened, every stored record still decodes.
                await bus.list_processes(ANY)
            finally:
                async for key in bus.redis.scan_iter(match=f"{bus.keys.namespace}:*"):
                    await bus.redis.delete(key)

    asyncio.run(main())


async def _refused_or_stored(
    bus: ls.Bus, call: Awaitable[Any], check: Callable[[Any], Awaitable[None]]
) -> None:
    before = await _keys(bus)
    try:
        result = await call
    except TYPED:
        assert await _keys(bus) == before, "a refused call changed the namespace"
        return
    await check(result)


def _json_equal(a: Any, b: Any) -> bool:
    return msgspec.json.decode(encode(a)) == msgspec.json.decode(encode(b))


@seed(15)
@PROPERTY
@given(
    event_type=st.one_of(st.just("x"), hostile_text),
    payload=hostile_json,
    key=st.none() | hostile_text,
)
def test_append_event_stores_exactly_or_refuses_cleanly(url, event_type, payload, key):
    async def body(bus: ls.Bus) -> None:
        await bus.register_process(reg("p", plain("x")))
        replay = RuntimeReplay(key=key) if key is not None else None
        request = ProcessEventAppendRequest(event_type=event_type, payload=payload, replay=replay)

        async def check(result: Any) -> None:
            (stored,) = await bus.events_after("p", 0)
            assert stored.sequence == result.event.sequence
            assert _json_equal(stored.payload, payload)
            assert stored == result.event

        await _refused_or_stored(bus, bus.append_event("p", request), check)

    _run(url, body)


@seed(15)
@PROPERTY
@given(by=hostile_text, at=hostile_ints, reason=st.none() | hostile_text)
def test_abandon_requests_store_exactly_or_refuse_cleanly(url, by, at, reason):
    async def body(bus: ls.Bus) -> None:
        await bus.register_process(reg("p"))
        request = AbandonRequest(requested_by=by, requested_at_ms=at, reason=reason)

        async def check(record: Any) -> None:
            assert record.abandon_request == request
            assert (await bus.get_process("p")).abandon_request == request

        await _refused_or_stored(bus, bus.request_process_abandon("p", request), check)

    _run(url, body)


@seed(15)
@PROPERTY
@given(pid=ids, metadata=hostile_json)
def test_registration_stores_exactly_or_refuses_cleanly(url, pid, metadata):
    async def body(bus: ls.Bus) -> None:
        registration = ProcessRegistration.external(pid, metadata=metadata)

        async def check(record: Any) -> None:
            stored = await bus.get_process(pid)
            assert stored == record
            assert _json_equal(stored.input, registration.input)

        await _refused_or_stored(bus, bus.register_process(registration), check)

    _run(url, body)


@seed(15)
@PROPERTY
@given(value=hostile_json, failure=st.booleans())
def test_completion_stores_exactly_or_refuses_cleanly(url, value, failure):
    async def body(bus: ls.Bus) -> None:
        await bus.register_process(reg("p"))
        output: Any = (
            AwaitFailure(class_=ToolFailureClass.EXECUTION, code="e", message="m", raw=value)
            if failure
            else AwaitSuccess(value=value)
        )

        async def check(record: Any) -> None:
            assert record.status.await_output == output
            assert await bus.await_terminal("p", timeout=1) == output

        await _refused_or_stored(bus, bus.complete_process("p", output), check)

    _run(url, body)


@seed(15)
@PROPERTY
@given(pid=hostile_ints, host=hostile_text, ttl=hostile_ints)
def test_lease_claims_store_exactly_or_refuse_cleanly(url, pid, host, ttl):
    async def body(bus: ls.Bus) -> None:
        await bus.register_process(reg("p"))
        owner = LeaseOwnerIdentity(
            owner_id="o",
            incarnation_id="o:1",
            liveness=LivenessLocalProcess(host_id=host, boot_id="b", pid=pid, process_start="s"),
        )

        async def check(outcome: Any) -> None:
            lease = await bus.get_process_lease("p")
            assert lease is not None and lease.owner == owner

        await _refused_or_stored(bus, bus.claim_process_lease("p", owner, ttl), check)

    _run(url, body)


@seed(15)
@PROPERTY
@given(session=ids, frame=st.none() | ids, label=st.none() | hostile_text)
def test_grants_store_exactly_or_refuse_cleanly(url, session, frame, label):
    async def body(bus: ls.Bus) -> None:
        await bus.register_process(reg("p"))
        scope = SessionScope(session_id=session, agent_frame_id=frame)
        descriptor = ProcessHandleDescriptor(label=label)

        async def check(grant: Any) -> None:
            assert await bus.has_handle_grant(scope, "p")
            (listed, _), *_ = await bus.list_handle_grants(scope)
            assert listed == grant and listed.descriptor == descriptor

        await _refused_or_stored(bus, bus.grant_handle(scope, "p", descriptor), check)

    _run(url, body)


@seed(15)
@PROPERTY
@given(
    argument=st.one_of(
        st.none(), st.integers(), hostile_text, st.dictionaries(hostile_text, hostile_scalars)
    )
)
def test_ill_typed_arguments_are_type_errors_before_any_io(url, argument):
    async def body(bus: ls.Bus) -> None:
        await bus.register_process(reg("p", plain("x")))
        calls = [
            lambda: bus.append_event("p", argument),
            lambda: bus.register_process(argument),
            lambda: bus.complete_process("p", argument),
            lambda: bus.set_external_ref("p", argument),
            lambda: bus.request_process_abandon("p", argument),
            lambda: bus.grant_handle(argument, "p", ProcessHandleDescriptor()),
            lambda: bus.list_handle_grants(argument),
        ]
        for make in calls:
            before = await _keys(bus)
            with pytest.raises((TypeError, ValueError, errors.LashStreamsError)):
                await make()
            assert await _keys(bus) == before

    _run(url, body)


@seed(15)
@PROPERTY
@given(
    pid=st.one_of(ids, st.none(), st.integers()),
    text=st.one_of(hostile_text, st.none(), st.integers()),
    number=hostile_ints,
)
def test_reads_and_small_writes_answer_or_raise_typed_errors(url, pid, text, number):
    """Every other public method, with hostile ids, names and numbers: an
    answer or a typed error (never a raw library exception), and a refusal
    changes nothing."""

    async def body(bus: ls.Bus) -> None:
        await bus.register_process(reg("p", plain("x")))
        calls = [
            lambda: bus.get_process(pid),
            lambda: bus.events_after(pid, 0),
            lambda: bus.events_after("p", number),
            lambda: bus.recent_events("p", number),
            lambda: bus.count_events_through("p", text, number),
            lambda: bus.wake_events_after("p", number),
            lambda: bus.get_process_lease(pid),
            lambda: bus.clear_process_wait(pid),
            lambda: bus.ack_wake("p", number),
            lambda: bus.request_cancel("p", text),
            lambda: bus.send_signal("p", text, "signal-1", {"n": number}),
            lambda: bus.has_handle_grant(SessionScope(session_id="s"), pid),
            lambda: bus.revoke_handle(SessionScope(session_id="s"), pid),
            lambda: bus.handle_grants_for_process(pid),
            lambda: bus.delete_session_process_state(text),
            lambda: bus.await_terminal("p", timeout=0.01),
            lambda: bus.prune_terminal_processes(number),
        ]
        for make in calls:
            before = await _keys(bus)
            try:
                await make()
            except TimeoutError:
                pass
            except TYPED:
                assert await _keys(bus) == before, "a refused call changed the namespace"

    _run(url, body)
