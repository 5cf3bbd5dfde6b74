"""Recovery v2, item 4 (issue 13): a drive's pass costs per lapsed or
never-claimed row, not per running row, and the outbox relay visits only the
processes with intents.

The worklist's score says when a sweep is next due to look at a row (the
lease's expiry, 0 once free); the pending-outbox index lists the processes
whose outbox may hold intents. Both are hints written beside the truth (the
lease row, the outbox stream); the tests that cut a writer between its two
steps show the error is bounded, never a lost row or intent."""

from __future__ import annotations

import asyncio

import pytest

from lash_streams import errors
from lash_streams.model import (
    AbandonRequest,
    LeaseOwnerIdentity,
    ProcessLeaseCompletion,
    ProcessStarted,
)
from lash_streams.store import delivery
from lash_streams.store.keys import encode_id

from ..conformance.fixtures import ob_reg, reg, req, rr_reg, scope, wake
from .test_recovery_v2 import GatedRunner, stem

W = stem("due-worker")


async def _commands(bus) -> int:
    stats = await bus.redis.info("commandstats")
    return sum(int(v["calls"]) for v in stats.values())


async def _due_ids(bus) -> list[str]:
    return [record.id for record in (await bus.due_records())[1]]


async def _fence(bus, pid: str) -> bytes | None:
    return await bus.redis.hget(bus.keys.process(pid).lease, "fence")


async def _drive_with_relay(bus, relay, done: asyncio.Event) -> None:
    """A drive (a pass every 10 ms) whose passes end with ``relay`` for their
    relay, until ``done`` is set."""
    bus.relay_pending = relay
    stop = asyncio.Event()
    drive = asyncio.create_task(bus.recovery(W, runner=GatedRunner()).run(0.01, stop=stop))
    try:
        await asyncio.wait_for(done.wait(), 30)
    finally:
        stop.set()
        await drive
        del bus.relay_pending


async def test_a_drive_pass_sends_a_few_commands_however_many_rows_run(standalone_bus):
    """A pass read every running record, every lease and one XLEN per known
    process: 3 commands per row (6 on 0134e1d); 100k running rows took 58 s
    per pass. Now, with every lease live and no intent pending, a pass is a
    handful of commands whatever the number of rows."""
    bus, _ = standalone_bus
    pids = [f"held-{i:03d}" for i in range(300)]
    for pid in pids:
        await bus.register_process(rr_reg(pid))
    await asyncio.gather(*(bus.claim_process_lease(p, stem("holder"), 600_000) for p in pids))
    passes: list[int] = []
    done = asyncio.Event()
    real_relay = bus.relay_pending

    async def relay_then_count(*args, **kwargs):
        result = await real_relay(*args, **kwargs)
        passes.append(await _commands(bus))  # the pass ends with its relay
        if len(passes) == 3:
            done.set()
        return result

    await _drive_with_relay(bus, relay_then_count, done)
    # Pass 3 (the second also relays over every process, once).
    per_pass = passes[2] - passes[1] - 1  # less the INFO that counted
    assert per_pass <= 6, per_pass


async def test_a_drive_relays_over_every_process_on_its_second_pass(bus):
    """The full relay (an intent nobody marked) is the second pass's, not the
    first's: a worker starting into a backlog serves what is due first. On a
    single server it is made once; on a cluster again every 10 minutes."""
    fulls: list[bool] = []
    done = asyncio.Event()
    real_relay = bus.relay_pending

    async def spy(*args, full=False, **kwargs):
        fulls.append(full)
        if len(fulls) == 4:
            done.set()
        return await real_relay(*args, full=full, **kwargs)

    await _drive_with_relay(bus, spy, done)
    assert fulls[:4] == [False, True, False, False]


async def test_a_row_is_due_when_its_lease_lapses_or_is_released(bus):
    await bus.register_process(rr_reg("p"))
    assert await _due_ids(bus) == ["p"]  # never claimed: due at once
    lease = (await bus.claim_process_lease("p", stem("holder"), 600_000)).lease
    assert await _due_ids(bus) == []
    await bus.complete_process_lease(ProcessLeaseCompletion.from_lease(lease))
    assert await _due_ids(bus) == ["p"]
    short = (await bus.claim_process_lease("p", stem("holder"), 200)).lease
    assert await _due_ids(bus) == []
    await bus.renew_process_lease(short, 600_000)
    await asyncio.sleep(0.3)
    assert await _due_ids(bus) == []  # renewed: due when the renewal lapses
    await bus.register_process(rr_reg("lapsing"))
    await bus.claim_process_lease("lapsing", stem("holder"), 50)
    await asyncio.sleep(0.1)
    assert await _due_ids(bus) == ["lapsing"]


async def test_a_due_pass_examines_only_due_rows_and_runs_the_lapsed_one(bus):
    for pid in ["held-1", "held-2", "lapsed"]:
        await bus.register_process(rr_reg(pid))
    await bus.claim_process_lease("held-1", stem("holder"), 600_000)
    await bus.claim_process_lease("held-2", stem("holder"), 600_000)
    await bus.claim_process_lease("lapsed", stem("holder"), 20)
    await asyncio.sleep(0.05)
    runner = GatedRunner()
    runner.gate.set()
    report = await bus.recovery(W, runner=runner).sweep_due()
    assert report.examined == 1 and report.ran == ["lapsed"] and runner.calls == ["lapsed"]
    # lash's sweep still reads every row.
    full = await bus.recovery(W, runner=runner).sweep_once()
    assert full.examined == 2 and sorted(full.skipped) == ["held-1", "held-2"]


async def test_a_release_cut_off_before_its_rescore_delays_the_row_by_its_lease_at_most(bus):
    """The writer killed between the release script and the rescore: the
    worklist still says the old expiry, so due passes look at the row when
    the lease would have lapsed, never later."""
    await bus.register_process(rr_reg("p"))
    lease = (await bus.claim_process_lease("p", stem("holder"), 400)).lease
    key = bus.keys.process("p").lease
    assert await bus.scripts.release_lease(keys=[key], args=[lease.lease_token]) == 1
    assert await bus.get_process_lease("p") is None
    assert await _due_ids(bus) == []  # the hint is late...
    await asyncio.sleep(0.45)
    assert await _due_ids(bus) == ["p"]  # ...by the lease's TTL at most


async def test_a_score_left_early_is_repaired_without_a_claim(bus):
    """A rescore lost or reordered after a renewal leaves the row due early:
    the pass sees the live lease, claims nothing and rescores the row."""
    await bus.register_process(rr_reg("p"))
    await bus.claim_process_lease("p", stem("holder"), 600_000)
    await bus.redis.zadd(bus.keys.index_running, {"p": 0})
    fence = await _fence(bus, "p")
    report = await bus.recovery(W, runner=GatedRunner()).sweep_due()
    assert report.examined == 1 and report.skipped == ["p"]
    assert await _fence(bus, "p") == fence
    assert await _due_ids(bus) == []


async def test_an_externally_owned_row_waits_out_of_due_passes_until_an_abandon_request(bus):
    await bus.register_process(reg("ext"))
    recovery = bus.recovery(W)
    assert (await recovery.sweep_due()).skipped == ["ext"]  # SW-5, then deferred
    assert (await recovery.sweep_due()).examined == 0
    await bus.request_process_abandon("ext", AbandonRequest(requested_by="op", requested_at_ms=1))
    assert (await recovery.sweep_due()).abandoned == ["ext"]


async def test_a_row_left_running_is_looked_at_again_one_lease_ttl_later(bus):
    """SW-11's last case (a started owner-bound row, no evidence, no request)
    is deferred one lease TTL: its starter's death is noticed within that,
    and no pass in between reads or claims it."""
    await bus.register_process(ob_reg("ob"))
    starter = LeaseOwnerIdentity.opaque("starter", "starter-1")
    await bus.record_first_started("ob", ProcessStarted(owner=starter, started_at_ms=1))
    await bus.claim_process_lease("ob", starter, 20)
    await asyncio.sleep(0.05)
    recovery = bus.recovery(W, lease_ttl_ms=400, renew_every_ms=100)
    assert (await recovery.sweep_due()).skipped == ["ob"]
    fence = await _fence(bus, "ob")
    assert (await recovery.sweep_due()).examined == 0
    await asyncio.sleep(0.45)
    again = await recovery.sweep_due()
    assert again.examined == 1 and again.skipped == ["ob"]
    assert await _fence(bus, "ob") == fence  # unchanged since parked: no claim


async def test_rows_from_before_the_due_scores_are_all_due(bus):
    """Worklist entries written by an earlier version score 0: every one is
    due, and a pass gives each its real score."""
    for pid in ["a", "b"]:
        await bus.register_process(rr_reg(pid))
        await bus.claim_process_lease(pid, stem("holder"), 600_000)
    await bus.redis.zadd(bus.keys.index_running, {"a": 0, "b": 0})
    assert await _due_ids(bus) == ["a", "b"]
    await bus.recovery(W, runner=GatedRunner()).sweep_due()
    assert await _due_ids(bus) == []


# -- the outbox relay ---------------------------------------------------------


async def test_the_relay_reads_nothing_per_process_when_no_intent_is_pending(standalone_bus):
    """The relay sent one XLEN per known process, terminal ones included."""
    bus, _ = standalone_bus
    for i in range(200):
        await bus.register_process(reg(f"p{i:03d}", wake("w"), wake_target=scope("s")))
    await bus.append_event("p000", req("w", {"wake_input": 1}))  # delivered at once
    before = await _commands(bus)
    assert await bus.relay_pending() == 0
    assert await _commands(bus) - before - 1 <= 2


async def test_an_intent_whose_appender_failed_to_deliver_is_relayed_and_unmarked(bus, monkeypatch):
    await bus.register_process(reg("p", wake("w"), wake_target=scope("s")))

    async def cut(core, items):
        raise ConnectionError("cut before delivery")

    monkeypatch.setattr(delivery, "deliver_wakes", cut)
    bus.forget("p")  # uncached: the two-step path (intent, then delivery)
    await bus.append_event("p", req("w", {"wake_input": 1}))
    monkeypatch.undo()
    index = bus.keys.index_outbox
    assert await bus.redis.zrange(index, 0, -1) == [encode_id("p").encode()]
    assert await bus.relay_pending() == 1
    assert await bus.redis.xlen(bus.keys.wake_stream("session:s")) == 1
    assert await bus.redis.zcard(index) == 0
    assert await bus.relay_pending() == 0


async def test_an_intent_nobody_marked_is_found_by_the_full_relay(bus, monkeypatch):
    """An intent without a mark (written before the index existed, or on a
    cluster by an appender that died between its append and its mark): the
    full relay, which a drive makes on its second pass, finds it."""
    await bus.register_process(reg("p", wake("w"), wake_target=scope("s")))

    async def cut(core, items):
        raise ConnectionError("cut before delivery")

    monkeypatch.setattr(delivery, "deliver_wakes", cut)
    bus.forget("p")  # uncached: the two-step path (intent, then delivery)
    await bus.append_event("p", req("w", {"wake_input": 1}))
    monkeypatch.undo()
    await bus.redis.delete(bus.keys.index_outbox)  # the mark never landed
    assert await bus.relay_pending() == 0
    assert await bus.relay_pending(full=True) == 1
    assert await bus.redis.xlen(bus.keys.process("p").outbox) == 0


async def test_a_mark_made_after_the_relay_read_it_is_kept(bus):
    """The relay found the outbox empty, but an appender marked the process
    again meanwhile: the compare-and-remove keeps the new mark."""
    index = bus.keys.index_outbox
    await bus.scripts.mark_pending(keys=[index], args=["p"])
    [(_, seen)] = await bus.redis.zrange(index, 0, -1, withscores=True)
    await asyncio.sleep(0.002)
    await bus.scripts.mark_pending(keys=[index], args=["p"])
    assert await bus.scripts.settle_pending(keys=[index], args=["p", str(int(seen))]) == 0
    assert await bus.redis.zcard(index) == 1
    [(_, now)] = await bus.redis.zrange(index, 0, -1, withscores=True)
    assert await bus.scripts.settle_pending(keys=[index], args=["p", str(int(now))]) == 1


async def test_defer_sweep_checks_its_input(bus):
    with pytest.raises(errors.InvalidId):
        await bus.defer_sweep("x" * 600, 1)
    with pytest.raises(ValueError):
        await bus.defer_sweep("p", -1)
    await bus.defer_sweep("unknown", 1)  # never adds an id to the worklist
    assert await bus.redis.zscore(bus.keys.index_running, "unknown") is None
