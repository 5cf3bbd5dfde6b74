"""The worker API (issue 16, deliver 3): handlers per job kind with typed
payloads, a bound on jobs at once, retries with backoff before one terminal,
the exception's type and traceback kept, a typed outcome, and a job's terminal
waking its session."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest

import lash_streams as ls
from lash_streams.bus import Bus


class Search(msgspec.Struct):
    q: str
    fail_first: int = 0


def identity(name: str = "worker-1") -> ls.LeaseOwnerIdentity:
    return ls.owner_identity(name)


@asynccontextmanager
async def serving(worker: ls.Worker) -> AsyncIterator[ls.Worker]:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop=stop))
    await asyncio.sleep(0.1)  # its groups exist
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def terminal(bus: Bus, pid: str) -> ls.ProcessAwaitOutput:
    return await bus.await_terminal(pid, timeout=15)


async def test_a_typed_handler_gets_its_payload_and_its_return_is_the_terminal(bus: Bus) -> None:
    seen: list[Search] = []

    async def search(job: ls.Job[Search]) -> dict[str, Any]:
        seen.append(job.payload)
        await job.append("job.progress", {"pct": 50})
        return {"hits": [job.payload.q]}

    async with serving(bus.worker(identity(), {"search": search}, sweep_every_s=60)):
        record = await bus.submit("search", Search(q="lash"))
        out = await terminal(bus, record.id)
    assert seen == [Search(q="lash")]
    assert out == ls.AwaitSuccess(value={"hits": ["lash"]})
    events = await bus.events_after(record.id, 0)
    assert [e.event_type for e in events] == ["job.progress", "process.completed"]


async def test_dispatch_starts_a_job_without_a_sweep_pass(bus: Bus) -> None:
    """Sweeps every 60 s: only dispatch can have started it."""
    started: list[float] = []

    async def fast(job: ls.Job[Any]) -> None:
        started.append(time.monotonic())

    async with serving(bus.worker(identity(), {"fast": fast}, sweep_every_s=60)):
        await asyncio.sleep(0.2)  # the first sweep pass is over
        begun = time.monotonic()
        record = await bus.submit("fast")
        await terminal(bus, record.id)
    assert started and started[0] - begun < 1.0


async def test_a_raising_handler_is_retried_with_backoff_then_fails_once(bus: Bus) -> None:
    calls: list[float] = []

    async def flaky(job: ls.Job[Search]) -> str:
        calls.append(time.monotonic())
        raise ConnectionError("tool unreachable")

    retry = ls.JobRetry(attempts=3, backoff_s=0.1, multiplier=2.0, jitter=0.0)
    async with serving(bus.worker(identity(), {"flaky": flaky}, retry=retry, sweep_every_s=60)):
        record = await bus.submit("flaky", {"q": "x"})
        out = await terminal(bus, record.id)
    assert len(calls) == 3
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2  # 0.1 s, then 0.2 s
    assert isinstance(out, ls.AwaitFailure)
    assert out.code == "job_failed"
    assert out.message == "ConnectionError: tool unreachable"
    assert isinstance(out.raw, dict) and out.raw["attempts"] == 3
    assert out.raw["exception"] == "builtins.ConnectionError"
    assert "in flaky" in out.raw["traceback"]
    events = await bus.events_after(record.id, 0)
    assert [e.event_type for e in events] == ["process.failed"]  # one terminal


async def test_a_retry_that_succeeds_completes_and_job_failed_is_never_retried(
    bus: Bus,
) -> None:
    attempts: list[int] = []

    async def once_flaky(job: ls.Job[Search]) -> int:
        attempts.append(job.attempt)
        if job.attempt <= job.payload.fail_first:
            raise TimeoutError("slow")
        return job.attempt

    async def refuse(job: ls.Job[Any]) -> None:
        attempts.append(-1)
        raise ls.JobFailed("no such city", code="bad_city")

    handlers = {
        "once": ls.handler(once_flaky, retry=ls.JobRetry(attempts=2, backoff_s=0.01)),
        "refuse": refuse,
    }
    retry = ls.JobRetry(attempts=5, backoff_s=0.01)
    async with serving(bus.worker(identity(), handlers, retry=retry, sweep_every_s=60)):
        ok = await bus.submit("once", Search(q="x", fail_first=1))
        assert await terminal(bus, ok.id) == ls.AwaitSuccess(value=2)
        no = await bus.submit("refuse")
        out = await terminal(bus, no.id)
    assert attempts == [1, 2, -1]
    assert isinstance(out, ls.AwaitFailure) and out.code == "bad_city"
    assert out.message == "no such city"


async def test_no_more_jobs_run_at_once_than_the_concurrency(bus: Bus) -> None:
    running = 0
    peak = 0

    async def slow(job: ls.Job[Any]) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.1)
        running -= 1

    worker = bus.worker(identity(), {"slow": slow}, concurrency=3, sweep_every_s=0.2)
    async with serving(worker):
        records = [await bus.submit("slow") for _ in range(12)]
        for record in records:
            await terminal(bus, record.id)
    assert peak == 3


async def test_execute_returns_a_typed_outcome(bus: Bus) -> None:
    async def echo(job: ls.Job[Any]) -> Any:
        return job.payload

    worker = bus.worker(identity(), {"echo": echo})
    record = await bus.submit("echo", {"a": 1})
    outcome = await worker.execute(record.id)
    assert outcome == ls.JobOutcome(
        record.id, "completed", ls.AwaitSuccess(value={"a": 1}), attempts=1
    )
    again = await worker.execute(record.id)
    assert again.status == "not_started" and again.reason == "terminal already"
    other = await bus.submit("unknown-kind")
    skipped = await worker.execute(other.id)
    assert skipped.status == "not_started" and "no handler" in (skipped.reason or "")
    with pytest.raises(ls.errors.UnknownProcess):
        await worker.execute("missing")


async def test_a_handler_returning_something_not_json_fails_visibly(bus: Bus) -> None:
    async def bad(job: ls.Job[Any]) -> object:
        return object()

    worker = bus.worker(identity(), {"bad": bad})
    record = await bus.submit("bad")
    outcome = await worker.execute(record.id)
    assert outcome.status == "failed"
    assert isinstance(outcome.output, ls.AwaitFailure)
    assert outcome.output.code == "invalid_result"


async def test_a_job_terminal_wakes_its_session(bus: Bus) -> None:
    async def work(job: ls.Job[Any]) -> str:
        return "done"

    worker = bus.worker(identity(), {"work": work})
    record = await bus.submit("work", session="sess-9")
    await worker.execute(record.id)
    consumer = bus.wake_consumer(
        group="agent", consumer="c1", scopes=[ls.SessionScope(session_id="sess-9")], block_ms=200
    )
    await bus.relay_pending(full=True)  # a cluster delivers through the relay
    message = None
    for _ in range(20):
        message = await consumer.next()
        if message is not None:
            break
    assert message is not None
    assert message.delivery.process_id == record.id
    assert message.delivery.input == "job work completed"
    await message.ack()
    await consumer.aclose()


async def test_a_worker_leaves_kinds_it_has_no_handler_for(bus: Bus) -> None:
    async def mine(job: ls.Job[Any]) -> None:
        return None

    worker = bus.worker(identity(), {"mine": mine})
    other = await bus.submit("theirs")
    report = await worker.recovery.sweep_once()
    assert other.id in report.skipped
    assert "no handler for job kind `theirs`" in report.reasons[other.id]
    assert not (await bus.get_process(other.id)).is_terminal()  # type: ignore[union-attr]


async def test_a_stopped_worker_hands_running_jobs_back(bus: Bus) -> None:
    begun = asyncio.Event()

    async def long(job: ls.Job[Any]) -> None:
        begun.set()
        await asyncio.sleep(60)

    worker = bus.worker(identity(), {"long": long}, sweep_every_s=60)
    async with serving(worker):
        record = await bus.submit("long")
        await asyncio.wait_for(begun.wait(), 5)
    assert await bus.get_process_lease(record.id) is None  # released, no terminal
    assert not (await bus.get_process(record.id)).is_terminal()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda bus: bus.worker(identity(), {"k": _ok}, concurrency=0), "concurrency"),
        (lambda bus: bus.worker(identity(), {"k": _ok}, retry=3), "retry"),
        (lambda bus: bus.worker(identity(), {"k": lambda job: None}), "async function"),
        (lambda bus: bus.worker(identity(), {"": _ok}), "job kind"),
        (lambda bus: bus.worker("w1", {"k": _ok}), "LeaseOwnerIdentity"),
        (lambda bus: bus.worker(identity(), {"k": _ok}, lease_ttl_ms=100), "lease timings"),
        (lambda bus: ls.JobRetry(attempts=0), "attempts"),
        (lambda bus: ls.JobRetry(backoff_s=-1), "backoff_s"),
        (lambda bus: ls.JobRetry(jitter=2), "jitter"),
    ],
)
async def test_bad_worker_settings_are_refused(
    bus: Bus, make: Callable[[Bus], object], match: str
) -> None:
    with pytest.raises(ls.errors.InvalidValue, match=match):
        make(bus)


async def test_a_worker_without_handlers_refuses_to_run(bus: Bus) -> None:
    with pytest.raises(ls.errors.InvalidValue, match="at least one handler"):
        await bus.worker(identity()).run()


@pytest.mark.parametrize("cut", ["before its run task begins", "while it runs"])
async def test_a_worker_stopped_while_starting_a_lone_job_hands_it_back(
    bus: Bus, monkeypatch: pytest.MonkeyPatch, cut: str
) -> None:
    """A lone entry is started in the reading task and run in a task of its
    own: a stop landing right after the start (that task cancelled before it
    began) or while the job runs leaves the lease free at once, no terminal, and
    every run slot given back."""
    ran: list[str] = []

    async def work(job: ls.Job[Any]) -> None:
        ran.append(job.id)
        stop.set()
        await asyncio.sleep(60)

    worker = bus.worker(identity(), {"work": work}, sweep_every_s=60)
    stop = asyncio.Event()
    real_start = worker.recovery.start_dispatched
    real_take = worker._take

    async def start_then_stop(*args: Any) -> Any:
        begun = await real_start(*args)
        stop.set()  # the stop lands right after the start
        return begun

    async def never_begins(*args: Any) -> Any:
        await asyncio.Event().wait()  # cancelled here, before the real one
        return await real_take(*args)

    if cut == "before its run task begins":
        monkeypatch.setattr(worker.recovery, "start_dispatched", start_then_stop)
        monkeypatch.setattr(worker, "_take", never_begins)
    task = asyncio.create_task(worker.run(stop=stop))
    await asyncio.sleep(0.1)
    record = await bus.submit("work")
    await asyncio.wait_for(task, 10)
    assert await bus.get_process_lease(record.id) is None
    row = await bus.get_process(record.id)
    assert row is not None and not row.is_terminal() and row.first_started is not None
    assert worker.recovery._runs == 0 and worker._begun == {}
    assert record.id not in worker.recovery._active
    assert ran == ([] if cut == "before its run task begins" else [record.id])


async def test_a_lone_start_that_fails_leaves_the_worker_serving(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server refusing a lone job's start (here a connection cut) is
    logged; the slot comes back and the next job runs. The refused job is
    the sweep's (its entry was a hint, the lease the truth)."""
    ran: list[str] = []

    async def work(job: ls.Job[Any]) -> None:
        ran.append(job.id)

    real = bus.start_job
    failures = [ls.errors.ConnectionFailed("cut")]

    async def start_job(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return await real(*args, **kwargs)

    monkeypatch.setattr(bus, "start_job", start_job)
    worker = bus.worker(identity(), {"work": work}, sweep_every_s=0.3)
    async with serving(worker):
        first = await bus.submit("work", id="first")
        await asyncio.sleep(0.2)
        assert failures == [] and worker.recovery._runs == 0
        second = await bus.submit("work", id="second")
        await terminal(bus, second.id)
        await terminal(bus, first.id)  # the sweep's, once the dispatch grace ran out
    assert sorted(ran) == ["first", "second"]


async def _ok(job: ls.Job[Any]) -> None:
    return None


_: Callable[..., Awaitable[None]] = _ok


async def test_a_job_whose_ready_entry_was_never_written_is_run_by_the_sweep(bus: Bus) -> None:
    """A writer killed between the record and its ready entry (a cluster's two
    steps; here the entry step is skipped): the worker's sweep runs the job once
    it is older than the dispatch grace (one sweep period)."""
    ran: list[str] = []

    async def work(job: ls.Job[Any]) -> None:
        ran.append(job.id)

    worker = bus.worker(identity(), {"work": work}, sweep_every_s=0.3)
    async with serving(worker):
        record = await bus.register_process(ls.job_registration("work", id="lost"), dispatch=False)
        assert await bus.redis.xlen(bus.keys.ready_stream("work")) == 0
        await terminal(bus, record.id)
    assert ran == ["lost"]


async def test_a_delayed_job_taken_off_the_schedule_but_never_queued_still_runs(
    bus: Bus,
) -> None:
    """A worker killed between ``promote_due`` (the member taken) and queueing
    it: the row's worklist score is its start time, so a sweep runs it."""
    ran: list[str] = []

    async def work(job: ls.Job[Any]) -> None:
        ran.append(job.id)

    record = await bus.submit("work", id="late", delay_s=0.2)
    await asyncio.sleep(0.3)
    taken = await bus.scripts.promote_due(keys=[bus.keys.delayed], args=[10])
    assert len(taken) == 2  # the wait, and the member: nothing queued it
    worker = bus.worker(identity(), {"work": work}, sweep_every_s=0.3)
    async with serving(worker):
        await terminal(bus, record.id)
    assert ran == ["late"]


async def test_a_schedule_entry_for_a_record_never_written_is_dropped(bus: Bus) -> None:
    """``schedule_process`` writes the schedule first: a writer killed before
    the record leaves an entry whose job does not exist; a worker drops it."""
    await bus.redis.zadd(bus.keys.delayed, {b'["work","ghost","rerunnable"]': 0})

    async def work(job: ls.Job[Any]) -> None:
        raise AssertionError("nothing to run")

    async with serving(bus.worker(identity(), {"work": work}, sweep_every_s=60)):
        await asyncio.sleep(0.3)
    assert await bus.redis.zcard(bus.keys.delayed) == 0
    assert await bus.redis.xlen(bus.keys.ready_stream("work")) == 0
    assert await bus.get_process("ghost") is None
