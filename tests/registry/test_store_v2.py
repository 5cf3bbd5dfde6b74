"""Store v2 (issue 11): exact answers under faults, races and stale caches.

Each test is one defect found on 0134e1d by trying the store as a user would;
each failed there and passes now. Rule ids: RX-18/GEN-5 (a committed write is
reported as committed), RX-7 (the outbox relay), RX-2 (the worklist), EV-2
(validation before any write), RG-* (registration), SG-*/GR-* (handles).
"""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from lash_streams import errors
from lash_streams.model import AwaitCancelled, SessionScope
from lash_streams.semantics.append import complete_request
from lash_streams.store import delivery, worklist

from ..conformance.fixtures import S, frame, plain, reg, req, scope, wake


def _fail(what: str):
    async def failing(*args: object, **kwargs: object) -> object:
        raise errors.ConnectionFailed(f"{what}: injected fault after the commit")

    return failing


# -- a committed write is reported as committed (RX-18, GEN-5) ------------------


async def test_complete_process_returns_the_record_when_the_index_step_fails(bus, monkeypatch):
    """The terminal append committed; the cross-slot worklist move failing
    must not turn it into an error the caller would retry."""
    await bus.register_process(reg("p"))
    monkeypatch.setattr(worklist, "index_terminal", _fail("index terminal"))
    record = await bus.complete_process("p", S(1))
    assert record.is_terminal()
    monkeypatch.undo()
    # The worklist repair (every reader of the worklist) finishes the move.
    assert [r.id for r in await bus.list_non_terminal()] == []
    assert b"p" not in await bus.redis.zrange(bus.keys.index_running, 0, -1)


async def test_committed_wake_append_returns_when_delivery_fails(bus, monkeypatch):
    """The event and its outbox intent committed; delivery failing is the
    relay's business (RX-7), never the caller's."""
    await bus.register_process(reg("p", wake("w"), wake_target=scope("s")))
    monkeypatch.setattr(delivery, "deliver_wakes", _fail("deliver"))
    bus.forget("p")  # uncached: the two-step path (intent, then delivery)
    result = await bus.append_event("p", req("w", {"wake_input": 1}))
    assert result.event.sequence == 1 and result.wake_delivery is not None
    monkeypatch.undo()
    assert await bus.redis.xlen(bus.keys.wake_stream("session:s")) == 0
    assert await bus.relay_pending() == 1
    assert await bus.redis.xlen(bus.keys.wake_stream("session:s")) == 1
    # The unkeyed append was not repeated by anybody.
    assert len(await bus.events_after("p", 0)) == 1


async def test_a_wake_append_delivers_in_its_own_step_on_one_server(bus, monkeypatch):
    """On a single server the append script delivers the wake itself (issue
    12: one round trip): no intent, nothing for the relay, even with the
    separate delivery step failing."""
    if bus.cluster:
        pytest.skip("a cluster's scope stream lives in another slot: two steps")
    await bus.register_process(reg("p", wake("w"), wake_target=scope("s")))
    monkeypatch.setattr(delivery, "deliver_wakes", _fail("deliver"))
    result = await bus.append_event("p", req("w", {"wake_input": 1}))
    assert result.event.sequence == 1 and result.wake_delivery is not None
    monkeypatch.undo()
    assert await bus.redis.xlen(bus.keys.wake_stream("session:s")) == 1
    assert await bus.redis.xlen(bus.keys.process("p").outbox) == 0
    assert await bus.relay_pending() == 0
    assert len(await bus.events_after("p", 0)) == 1


# -- ids are validated before anything is written (EV-2, RX-7) -------------------


@pytest.mark.parametrize(
    "target",
    [
        SessionScope(session_id="s" * 600),
        SessionScope(session_id="s" * 300, agent_frame_id="f" * 300),
    ],
    ids=["long-session", "long-scope-id"],
)
async def test_an_over_long_wake_target_is_refused_before_any_write(bus, target):
    await bus.register_process(reg("p", wake("w")))
    with pytest.raises(errors.InvalidId):
        await bus.append_event("p", req("w", {"wake_input": 1}, target=target))
    assert await bus.events_after("p", 0) == []
    assert await bus.redis.xlen(bus.keys.process("p").outbox) == 0
    assert await bus.relay_pending() == 0


async def test_the_relay_dead_letters_an_intent_it_cannot_deliver(bus):
    """An intent that can never be delivered (written by an older version, or
    corrupted) is set aside with its reason; the relay goes on with the rest."""
    await bus.register_process(reg("bad", wake("w")))
    await bus.register_process(reg("good", wake("w"), wake_target=scope("s")))
    await bus.append_event("bad", req("w", {"wake_input": 1}, target=scope("x")))
    await bus.redis.delete(bus.keys.wake_stream("session:x"))
    # Poison the pending intent of `bad` the way a 0134e1d writer could.
    outbox = bus.keys.process("bad").outbox
    await bus.redis.xadd(outbox, {"seq": 1, "scope": '{"session_id":"' + "s" * 600 + '"}'})
    await bus.redis.xadd(outbox, {"seq": 1, "scope": "not json"})
    # An orphan intent (its event does not exist) is dropped, as before.
    orphan = {"seq": 9, "scope": '{"session_id":"s"}'}
    await bus.redis.xadd(bus.keys.process("good").outbox, orphan)
    await bus.append_event("good", req("w", {"wake_input": 2}))
    for _ in range(2):  # every later pass too: nothing raises
        # Unmarked (a 0134e1d writer knew no pending index): the full relay.
        await bus.relay_pending(full=True)
    assert await bus.redis.xlen(outbox) == 0
    assert await bus.redis.xlen(bus.keys.process("good").outbox) == 0
    assert await bus.redis.xlen(bus.keys.wake_stream("session:s")) == 1
    letters = await bus.redis.xrange(bus.keys.relay_dead_letters)
    reasons = sorted(fields[b"reason"].decode() for _, fields in letters)
    assert len(reasons) == 2 and all(reasons), reasons
    assert {fields[b"process_id"] for _, fields in letters} == {b"bad"}


async def test_event_type_names_that_cannot_be_stored_are_refused_at_registration(bus):
    with pytest.raises(errors.InvalidRegistration, match="event type"):
        await bus.register_process(reg("p", plain("t" * 600)))
    assert await bus.get_process("p") is None


# -- a stale cache never decides an answer ---------------------------------------


async def _prune(other) -> None:
    cutoff = await other.server_time_ms() + 1_000
    report = await other.prune_terminal_processes(cutoff)
    assert report.pruned_processes == 1


async def _prune_and_reregister(other, pid: str, *extra) -> None:
    await _prune(other)
    await other.register_process(reg(pid, *extra))


async def test_stale_terminal_cache_after_prune_and_reregistration(bus, reopen):
    other = await reopen()
    await bus.register_process(reg("p", plain("x")))
    await bus.complete_process("p", S(1))  # this bus now caches "terminal"
    await _prune_and_reregister(other, "p", plain("x"), plain("y"))
    # The running re-registration completes, and its new type is declared.
    assert (await bus.append_event("p", req("y", {}))).event.sequence == 1
    record = await bus.complete_process("p", S(2))
    assert record.is_terminal()


async def test_stale_registration_cache_after_prune_and_reregistration(bus, reopen):
    other = await reopen()
    await bus.register_process(reg("p", plain("x")))
    await bus.append_event("p", req("x", {}))  # this bus caches the first registration
    await bus.complete_process("p", S(1))
    await _prune_and_reregister(other, "p", plain("x"), plain("brand-new"))
    result = await bus.append_event("p", req("brand-new", {"n": 1}))
    assert result.event.sequence == 1


async def test_a_pruned_id_is_unknown_whatever_the_cache_says(bus, reopen):
    other = await reopen()
    await bus.register_process(reg("p", plain("x", {"type": "object"})))
    await bus.append_event("p", req("x", {}))
    await bus.complete_process("p", S(1))
    await _prune(other)
    with pytest.raises(errors.UnknownProcess):
        await bus.append_event("p", req("x", "not an object"))
    with pytest.raises(errors.UnknownProcess):
        await bus.append_event("p", req("undeclared", {}))


# -- the worklist (RX-2) ---------------------------------------------------------


async def test_a_late_terminal_index_never_unindexes_a_running_process(bus, reopen):
    """A writer stalled between its terminal append and the index move wakes
    up after the id was pruned and registered again: the new, running
    process stays in the worklist."""
    other = await reopen()
    await bus.register_process(reg("p"))
    record = await bus.complete_process("p", S(1))
    await _prune_and_reregister(other, "p")
    await worklist.index_terminal(bus, "p", record.updated_at_ms)  # the late step
    assert [r.id for r in await other.list_non_terminal()] == ["p"]
    assert await bus.redis.zscore(bus.keys.index_running, "p") is not None


# -- batches (EV-2, RX-18) -------------------------------------------------------


async def test_append_events_writes_nothing_when_an_item_is_invalid(bus):
    await bus.register_process(reg("p", plain("x")))
    await bus.register_process(reg("q", plain("x")))
    items = [("p", req("x", {"n": 1})), ("q", req("x", {"n": 2})), ("p", req("nope", {}))]
    with pytest.raises(errors.UndeclaredEventType):
        await bus.append_events(items)
    assert await bus.events_after("p", 0) == []
    assert await bus.events_after("q", 0) == []


async def test_append_events_with_a_second_terminal_writes_nothing(bus):
    """EV-2.8 inside one batch: the second terminal is refused before the
    first is written (non-terminal events after a terminal stay allowed)."""
    await bus.register_process(reg("p", plain("x")))
    done = complete_request("p", S(1))
    cancelled = complete_request("p", AwaitCancelled(message="late"))
    with pytest.raises(errors.AlreadyTerminal):
        await bus.append_events([("p", req("x", {})), ("p", done), ("p", cancelled)])
    assert await bus.events_after("p", 0) == []
    results = await bus.append_events([("p", done), ("p", req("x", {}))])
    assert [r.event.sequence for r in results] == [1, 2]


async def test_append_events_reports_each_outcome_when_the_server_refuses_one(bus):
    """A refusal only the server can see (a replay key already used with
    another payload) does not hide which items landed: retrying the rest by
    hand must not duplicate them."""
    await bus.register_process(reg("p", plain("x")))
    await bus.register_process(reg("q", plain("x")))
    await bus.append_event("p", req("x", {"n": 0}, key="k"))
    items = [
        ("q", req("x", {"n": 1})),
        ("p", req("x", {"n": "other"}, key="k")),
        ("p", req("x", {"n": 2})),
        ("q", req("x", {"n": 3})),
    ]
    with pytest.raises(errors.BatchPartlyApplied) as caught:
        await bus.append_events(items)
    outcomes = caught.value.outcomes
    assert isinstance(outcomes[1], errors.ReplayConflict)
    # Items of `p` after its refused item are not applied (order per process).
    assert isinstance(outcomes[2], errors.LashStreamsError)
    assert [o.event.sequence for o in (outcomes[0], outcomes[3])] == [1, 2]
    assert len(await bus.events_after("q", 0)) == 2
    assert len(await bus.events_after("p", 0)) == 1


async def test_keyed_append_events_is_retried_after_a_dropped_connection(standalone_bus):
    """The retry resends the whole pipeline, not the emptied one redis-py
    leaves after a failed execute."""
    bus, url = standalone_bus
    await bus.register_process(reg("p", plain("x")))
    items = [("p", req("x", {"n": n}, key=f"k{n}")) for n in range(3)]
    admin = Redis.from_url(url)
    try:
        await admin.execute_command("CLIENT", "PAUSE", 5000, "WRITE")
        task = asyncio.create_task(bus.append_events(items))
        await asyncio.sleep(0.2)
        await admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        await admin.execute_command("CLIENT", "UNPAUSE")
        results = await asyncio.wait_for(task, 30)
    finally:
        await admin.execute_command("CLIENT", "UNPAUSE")
        await admin.aclose()
    assert [r.event.sequence for r in results] == [1, 2, 3]
    assert len(await bus.events_after("p", 0)) == 3


# -- scripts loaded once (item 7) --------------------------------------------------


async def test_no_script_exists_round_trip_before_pipelines(standalone_bus):
    """Batches and wake deliveries send EVALSHA directly: redis-py's
    SCRIPT EXISTS check before every pipeline is gone."""
    bus, url = standalone_bus
    await bus.register_process(reg("p", plain("x"), wake("w"), wake_target=scope("s")))
    admin = Redis.from_url(url)
    try:
        await admin.config_resetstat()
        await bus.append_events([("p", req("x", {"n": n})) for n in range(5)])
        await bus.append_event("p", req("w", {"wake_input": 1}))
        stats = await admin.info("commandstats")
    finally:
        await admin.aclose()
    assert not any("script" in name and "exists" in name for name in stats), stats
    assert len(await bus.events_after("p", 0)) == 6
    assert await bus.redis.xlen(bus.keys.wake_stream("session:s")) == 1


async def test_everything_works_after_the_server_lost_its_scripts(real_bus):
    """SCRIPT FLUSH (as after a restart or failover without the scripts):
    direct calls reload, pipelined ones re-run what did not run; nothing is
    lost or written twice."""
    bus, _ = real_bus
    await bus.register_process(reg("p", plain("x"), wake("w"), wake_target=scope("s")))
    await bus.redis.script_flush()
    await bus.append_event("p", req("x", {"n": 0}))
    await bus.redis.script_flush()
    results = await bus.append_events([("p", req("x", {"n": n})) for n in range(1, 4)])
    assert [r.event.sequence for r in results] == [2, 3, 4]
    await bus.redis.script_flush()
    result = await bus.append_event("p", req("w", {"wake_input": 1}))
    assert result.wake_delivery is not None
    assert await bus.redis.xlen(bus.keys.wake_stream("session:s")) == 1
    assert await bus.redis.xlen(bus.keys.process("p").outbox) == 0
    await bus.redis.script_flush()
    assert (await bus.complete_process("p", S(1))).is_terminal()
    assert len(await bus.events_after("p", 0)) == 6


# -- the sequence is assigned by the script (item 6) ------------------------------


async def test_concurrent_appenders_cost_one_round_trip_each(standalone_bus):
    """No client-side compare-and-set on the sequence: 16 appenders racing on
    one process send one script call per append, and the log stays gapless."""
    bus, url = standalone_bus
    await bus.register_process(reg("p", plain("x"), wake("w"), wake_target=scope("s")))
    await bus.append_event("p", req("x", {}))  # the state is cached from here on
    admin = Redis.from_url(url)
    try:
        await admin.config_resetstat()

        async def appender(task: int) -> None:
            for n in range(10):
                request = req("w", {"wake_input": f"{task}.{n}"}) if n % 3 == 0 else None
                await bus.append_event("p", request or req("x", {"task": task, "n": n}))

        await asyncio.gather(*(appender(task) for task in range(16)))
        stats = await admin.info("commandstats")
    finally:
        await admin.aclose()
    calls = sum(v["calls"] for k, v in stats.items() if k.startswith("cmdstat_evalsha"))
    # One append script each; a wake whose sequence the appender guessed
    # right is delivered by it (one server, issue 12), a raced one by one
    # delivery call after.
    assert 160 <= calls <= 160 + 16 * 4, stats
    events = await bus.events_after("p", 0)
    assert [e.sequence for e in events] == list(range(1, 162))
    for event in events:  # every stored event carries its own sequence everywhere
        assert event.invocation.subject.sequence == event.sequence
        if event.semantics.wake is not None:
            assert event.semantics.wake.dedupe_key == f"p:{event.sequence}"
    wakes = await bus.redis.xrange(bus.keys.wake_stream("session:s"))
    assert len(wakes) == 16 * 4


# -- round trips (item 7) -----------------------------------------------------------


async def test_round_trips_per_call_on_a_single_server(standalone_bus, monkeypatch):
    """Counted where bytes leave the client: one send per round trip."""
    from redis.asyncio.connection import AbstractConnection

    from lash_streams.pool import LeanConnection

    bus, _ = standalone_bus
    await bus.register_process(reg("warm"))  # connections and scripts in place
    sends = 0

    def counted(cls: type) -> None:
        original = cls.send_packed_command

        async def counting(self, command, check_health=True):
            nonlocal sends
            sends += 1
            return await original(self, command, check_health)

        monkeypatch.setattr(cls, "send_packed_command", counting)

    # redis-py's connections and ours (lash_streams.pool) send through their own.
    counted(AbstractConnection)
    counted(LeanConnection)

    async def trips(call) -> int:
        nonlocal sends
        sends = 0
        await call
        return sends

    assert await trips(bus.register_process(reg("p", plain("x"), wake("w")))) == 1
    assert await trips(bus.append_event("p", req("x", {}))) == 1
    assert await trips(bus.append_event("p", req("x", {}, key="k"))) == 1
    # A wake: the append script delivers it too on a single server (issue 12).
    assert await trips(bus.append_event("p", req("w", {"wake_input": 1}, target=scope("s")))) == 1
    assert await trips(bus.append_events([("p", req("x", {"n": n})) for n in range(10)])) == 1
    assert await trips(bus.complete_process("p", S(1))) == 2  # the append, the index move


# -- the compact stored event (item 8) --------------------------------------------


def _wake_by(name: str, dedupe) -> object:
    from lash_streams.model import (
        LashSchema,
        ProcessEventSemanticsSpec,
        ProcessEventType,
        ProcessWakeSpec,
        SelPointer,
        SelPresent,
    )

    return ProcessEventType(
        name=name,
        payload_schema=LashSchema(schema={}),
        semantics=ProcessEventSemanticsSpec(
            wake=ProcessWakeSpec(
                when=SelPresent("/wake_input"), input=SelPointer("/wake_input"), dedupe_key=dedupe
            )
        ),
    )


async def test_stored_events_read_back_byte_equal(bus):
    """What the store keeps is compact; what a reader gets is lash's full
    ProcessEvent, byte-equal to the one the append returned."""
    from lash_streams.model import DedupeConst, DedupeSelector, SelPointer
    from lash_streams.model._codec import encode

    await bus.register_process(
        reg(
            "p",
            plain("x"),
            wake("w"),
            _wake_by("ws", DedupeSelector(selector=SelPointer("/id"))),
            _wake_by("wc", DedupeConst(value="one")),
            wake_target=scope("s"),
        )
    )
    requests = [
        req(
            "x",
            {
                "n": 1,
                "f": 0.1,
                "big": 2**64 - 1,
                "neg": -(2**63),
                "u": 'ünï\u2028"q"',
                "l": [1, None],
            },
        ),
        req("x", [], key=""),
        req("x", "text", key="k1"),
        req("x", None, key="k2"),
        req("w", {"wake_input": "go"}),
        req("w", {"wake_input": 7}, key="k3", target=frame("s", "f")),
        req("ws", {"wake_input": {"a": 1}, "id": "same"}),
        req("wc", {"wake_input": True}),
        complete_request("p", S({"done": [1, 2.5, "x"]})),
        req("x", {"after": "terminal"}),
    ]
    appended = [await bus.append_event("p", r) for r in requests]
    read = await bus.events_after("p", 0)
    assert [encode(e) for e in read] == [encode(a.event) for a in appended]
    assert [encode(e) for e in await bus.recent_events("p", 3)] == [
        encode(a.event) for a in appended[-3:]
    ]
    replayed = await bus.append_event("p", requests[5])
    assert encode(replayed.event) == encode(appended[5].event)
    assert replayed.wake_delivery == appended[5].wake_delivery


async def test_events_stored_whole_by_older_versions_are_still_read(bus):
    """Entries written before the compact form hold the event JSON in `e`."""
    from lash_streams.model._codec import encode

    await bus.register_process(reg("p", plain("x")))
    first = await bus.append_event("p", req("x", {"n": 1}))
    old = encode(first.event).replace(b'"sequence":1', b'"sequence":2')
    await bus.redis.xadd(bus.keys.process("p").events, {"e": old}, id="2-0")
    await bus.redis.hset(bus.keys.process("p").record, "seq", 2)
    events = await bus.events_after("p", 0)
    assert [e.sequence for e in events] == [1, 2]
    assert encode(events[1]) == old
    third = await bus.append_event("p", req("x", {"n": 3}))
    assert third.event.sequence == 3


async def test_count_events_through_every_sequence(bus):
    """RD-2 over the packed type index, across its chunks, for two
    interleaved types and an absent one."""
    await bus.register_process(reg("p", plain("a"), plain("b")))
    kinds = ["a" if n % 3 else "b" for n in range(1, 41)]
    await bus.append_events([("p", req(kind, {"n": n})) for n, kind in enumerate(kinds, 1)])
    for upto in [0, 1, 2, 3, 12, 13, 24, 25, 39, 40, 41, 10**6, 2**64 - 1]:
        for kind in ("a", "b", "c"):
            expected = sum(1 for n, k in enumerate(kinds, 1) if k == kind and n <= upto)
            assert await bus.count_events_through("p", kind, upto) == expected, (kind, upto)


async def test_count_events_through_adds_the_older_type_index(bus):
    """Events written before the packed index are counted from the zset
    older versions kept."""
    await bus.register_process(reg("p", plain("a")))
    keys = bus.keys.process("p")
    await bus.redis.zadd(keys.types, {f"a\0{1:020d}": 0, f"a\0{2:020d}": 0})
    await bus.redis.hset(keys.record, "seq", 2)
    await bus.append_event("p", req("a", {}))
    assert await bus.count_events_through("p", "a", 2) == 2
    assert await bus.count_events_through("p", "a", 3) == 3


async def test_a_stored_event_costs_its_payload_and_at_most_80_bytes(standalone_bus):
    """MEMORY USAGE of every key of a process, per non-wake event (the bench
    reports the same figure beside a raw XADD)."""
    from lash_streams.model._codec import encode

    bus, _ = standalone_bus
    await bus.register_process(reg("p", plain("progress")))
    body = {"n": 0, "text": "x" * 40}
    events = 1000
    await bus.append_events([("p", req("progress", body)) for _ in range(events)])
    total = 0
    for key in bus.keys.process("p").all():
        total += int(await bus.redis.memory_usage(key, samples=0) or 0)
    assert total / events <= len(encode(body)) + 80, total / events


async def test_retries_start_only_after_a_fault(bus, monkeypatch):
    """The retry machinery (tenacity) is not built for a call that succeeds
    the first time; it still retries after a fault."""
    from lash_streams.store import retry as retry_module

    built = 0
    real = retry_module.AsyncRetrying

    def counting(*args, **kwargs):
        nonlocal built
        built += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(retry_module, "AsyncRetrying", counting)
    await bus.register_process(reg("p", plain("x")))
    await bus.append_event("p", req("x", {}, key="k"))
    await bus.get_process("p")
    assert built == 0
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("dropped")
        return "ok"

    from redis.exceptions import ConnectionError

    assert await bus.retry.idempotent("flaky", flaky) == "ok"
    assert built == 1 and calls == 2


# -- every server error is typed; what never ran is not "unknown" (item 1) --------


async def test_a_server_at_maxmemory_is_a_typed_error_and_writes_nothing(standalone_bus):
    bus, url = standalone_bus
    await bus.register_process(reg("p", plain("x")))
    admin = Redis.from_url(url)
    policy = next(iter((await admin.config_get("maxmemory-policy")).values()))
    try:
        await admin.config_set("maxmemory-policy", "noeviction")
        await admin.config_set("maxmemory", 1)
        with pytest.raises(errors.OutOfMemory, match="maxmemory"):
            await bus.append_event("p", req("x", {"n": 1}))
        with pytest.raises(errors.OutOfMemory):
            await bus.append_event("p", req("x", {"n": 1}, key="k"))
    finally:
        await admin.config_set("maxmemory", 0)
        await admin.config_set("maxmemory-policy", policy)
        await admin.aclose()
    assert await bus.events_after("p", 0) == []


async def test_a_write_that_never_ran_is_not_written_not_unknown() -> None:
    """A refused connection sent nothing: NotWritten (safe to retry), never
    WriteOutcomeUnknown; reads say ConnectionFailed."""
    from lash_streams.server import free_port
    from lash_streams.store.retry import RetryPolicy

    client = Redis(port=free_port(), socket_connect_timeout=1)
    policy = RetryPolicy(attempts=2, max_delay_s=2)
    try:
        with pytest.raises(errors.NotWritten, match="not written"):
            await policy.once("append", lambda: client.xadd("s", {"e": "1"}))
        with pytest.raises(errors.ConnectionFailed):
            await policy.idempotent("read", lambda: client.get("k"))
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        ("TRYAGAIN", None),
        ("LOADING", None),
        ("CLUSTERDOWN", None),
        ("WRONGTYPE Operation against a key holding the wrong kind of value", errors.WrongType),
        ("BUSY Redis is busy running a script.", errors.ServerBusy),
        ("NOPERM this user has no permissions", errors.PermissionDenied),
        ("ERR something else", errors.ServerError),
    ],
)
async def test_server_replies_map_to_typed_errors(raised: str, expected) -> None:
    """Refusals before running (TRYAGAIN, LOADING, CLUSTERDOWN) are retried,
    even for a write sent at most once; the rest are typed, never raw."""
    from redis._parsers.base import BaseParser

    from lash_streams.store.retry import RetryPolicy

    exc = BaseParser.parse_error(raised)
    calls = 0

    async def call() -> str:
        nonlocal calls
        calls += 1
        if calls == 1 or expected is not None:
            raise exc
        return "ok"

    policy = RetryPolicy(attempts=3, max_delay_s=2)
    for run in (policy.once, policy.idempotent):
        calls = 0
        if expected is None:
            assert await run("write", call) == "ok" and calls == 2
        else:
            with pytest.raises(expected):
                await run("write", call)


async def test_a_batch_on_a_cluster_is_one_pipeline_per_node(real_bus, monkeypatch):
    """Item 5: the batch is pipelined per node on a cluster (at most one send
    per node once the states are cached), in order per process."""
    from redis.asyncio.connection import AbstractConnection

    bus, _ = real_bus
    pids = [f"p{n}" for n in range(12)]
    for pid in pids:
        await bus.register_process(reg(pid, plain("x")))
    items = [(pid, req("x", {"n": n})) for n in range(3) for pid in pids]
    await bus.append_events(items)  # warm: states cached, connections open
    sends = 0
    original = AbstractConnection.send_packed_command

    async def counting(self, command, check_health=True):
        nonlocal sends
        sends += 1
        return await original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    results = await bus.append_events(items)
    monkeypatch.undo()
    assert sends <= (3 if bus.cluster else 1), sends
    assert [r.event.sequence for r in results] == [4] * 12 + [5] * 12 + [6] * 12
    for pid in pids:
        assert [e.payload["n"] for e in await bus.events_after(pid, 3)] == [0, 1, 2]
