"""One workload process of a soak run, as its own OS process.

    python -m lash_streams.soak.role ROLE URL NAMESPACE NAME INCARNATION SPEC_JSON

``SPEC_JSON`` carries the seed, the history folder, the appenders' names (the
wake scopes) and the lease timings. Every role writes its history to
``<folder>/<NAME>.jsonl`` (history.py) and stops cleanly on SIGTERM; a
SIGKILLed role is restarted by the run with the next incarnation, which goes on
with new unique values.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import msgspec

import lash_streams as ls
from lash_streams.model import (
    AwaitSuccess,
    LashSchema,
    LeaseAcquired,
    LeaseOwnerIdentity,
    ProcessEventAppendRequest,
    ProcessEventSemanticsSpec,
    ProcessEventType,
    ProcessLeaseCompletion,
    ProcessRegistration,
    ProcessWakeSpec,
    RecoveryDisposition,
    SelPointer,
    SelPresent,
    SelTemplate,
    SessionScope,
)
from lash_streams.soak.history import OK, Entry, Writer, outcome_of, read_entries

VALUE_TYPE = "soak.v"
JOB_KIND = "soak.job"
GROUP = "soak"


class Spec(msgspec.Struct, frozen=True):
    seed: int
    folder: str
    appenders: list[str]
    lease_ttl_ms: int = 3_000
    renew_every_ms: int = 1_000


def scope_of(appender: str) -> SessionScope:
    return SessionScope(session_id=f"soak-{appender}")


def value_type() -> ProcessEventType:
    """``{"v": <unique value>, "w": true?}``; ``w`` present makes it wake."""
    return ProcessEventType(
        name=VALUE_TYPE,
        payload_schema=LashSchema(
            schema={
                "type": "object",
                "properties": {"v": {"type": "string"}, "w": {"type": "boolean"}},
                "required": ["v"],
                "additionalProperties": False,
            }
        ),
        semantics=ProcessEventSemanticsSpec(
            wake=ProcessWakeSpec(
                when=SelPresent("/w"),
                input=SelTemplate("{v}", {"v": SelPointer("/v")}),
            )
        ),
    )


def final_output(pid: str) -> AwaitSuccess:
    """Deterministic, so completing again after a kill is a replay."""
    return AwaitSuccess(value={"done": pid})


class Role:
    def __init__(self, bus: ls.Bus, name: str, inc: int, spec: Spec) -> None:
        self.bus = bus
        self.name = name
        self.inc = inc
        self.spec = spec
        self.path = Path(spec.folder) / f"{name}.jsonl"
        self.earlier = read_entries([self.path])  # previous incarnations' lines
        self.history = Writer(self.path, name, inc)
        self.rng = random.Random(f"{spec.seed}:{name}:{inc}")
        self.stop = asyncio.Event()
        self.counter = 0
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)

    def next_id(self, what: str) -> str:
        self.counter += 1
        return f"{self.name}.{self.inc}.{what}{self.counter}"

    async def op(self, entry: Entry, call: Any) -> Any:
        """Run ``call`` and record its outcome; a refusal is returned, not raised."""
        try:
            result = await call
        except Exception as err:
            self.history.result(entry, outcome_of(err), note=f"{type(err).__name__}: {err}"[:300])
            return err
        seq = getattr(getattr(result, "event", None), "sequence", None)
        self.history.result(entry, OK, seq=seq)
        return result

    async def pace(self, low: float = 0.02, high: float = 0.08) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), self.rng.uniform(low, high))


async def appender(role: Role) -> None:
    """Registers external processes, appends unique values (some waking the
    appender's session), completes them; submits a job now and then."""
    bus, scope = role.bus, scope_of(role.name)
    await finish_left_over(role)
    while not role.stop.is_set():
        pid = f"{role.name}.{role.inc}.p{role.counter + 1}"
        registration = ProcessRegistration.external(
            pid, event_types=[value_type()], wake_target=scope
        )
        entry = role.history.intent("register", role.next_id("r"), pid=pid)
        if isinstance(await role.op(entry, bus.register_process(registration)), Exception):
            await role.pace(0.2, 0.5)
            continue
        for _ in range(role.rng.randint(1, 5)):
            if role.stop.is_set():
                return
            value = role.next_id("v")
            wake = role.rng.random() < 0.35
            payload: dict[str, Any] = {"v": value, "w": True} if wake else {"v": value}
            request = ProcessEventAppendRequest.new(VALUE_TYPE, payload).with_replay_key(value)
            entry = role.history.intent("append", value, pid=pid, value=value, key=value, wake=wake)
            await role.op(entry, bus.append_event(pid, request))
            await role.pace()
        entry = role.history.intent("complete", role.next_id("c"), pid=pid)
        await role.op(entry, bus.complete_process(pid, final_output(pid)))
        if role.rng.random() < 0.4:
            await submit(role)
        await role.pace()


async def finish_left_over(role: Role) -> None:
    """Complete what an earlier incarnation registered and did not complete."""
    registered = {e.pid for e in role.earlier if e.op == "register" and e.pid}
    completed = {e.pid for e in role.earlier if e.op == "complete" and e.outcome == OK}
    for pid in sorted(p for p in registered - completed if p is not None):
        entry = role.history.intent("complete", role.next_id("c"), pid=pid, note="left over")
        await role.op(entry, role.bus.complete_process(pid, final_output(pid)))


async def submit(role: Role) -> None:
    job_id = f"job.{role.name}.{role.inc}.{role.counter + 1}"
    owner_bound = role.rng.random() < 0.25
    disposition = RecoveryDisposition.OWNER_BOUND if owner_bound else RecoveryDisposition.RERUNNABLE
    entry = role.history.intent("submit", role.next_id("j"), pid=job_id, key=disposition.value)
    steps = role.rng.randint(1, 4)
    await role.op(
        entry, role.bus.submit(JOB_KIND, {"steps": steps}, id=job_id, disposition=disposition)
    )


async def worker(role: Role) -> None:
    """Runs jobs under leases; each step's value is the job's own, with a
    replay key, so a rerun after a kill appends nothing twice."""

    async def handle(job: ls.Job[Any]) -> Any:
        role.history.write(
            Entry(op="job_start", id=role.next_id("s"), actor=role.name, inc=role.inc,
                  outcome=OK, pid=job.id, note=f"attempt {job.attempt}")
        )  # fmt: skip
        for step in range(int(job.payload["steps"])):
            value = f"{job.id}.s{step}"
            entry = role.history.intent("job_append", role.next_id("a"), pid=job.id, value=value)
            result = await role.op(
                entry, job.append("job.progress", {"v": value}, replay_key=f"s{step}")
            )
            if isinstance(result, Exception):
                raise result
            await asyncio.sleep(role.rng.uniform(0.05, 0.3))
        return {"done": job.id}

    served = role.bus.worker(
        ls.owner_identity(role.name),
        {JOB_KIND: handle},
        concurrency=4,
        retry=ls.JobRetry(attempts=5, backoff_s=0.2),
        lease_ttl_ms=role.spec.lease_ttl_ms,
        renew_every_ms=role.spec.renew_every_ms,
        sweep_every_s=1.0,
        block_ms=500,
    )
    await served.run(stop=role.stop)
    await served.shutdown()
    role.history.write(
        Entry(op="shutdown", id=role.next_id("x"), actor=role.name, inc=role.inc, outcome=OK)
    )


async def consumer(role: Role) -> None:
    """Reads the appenders' wakes; records each handling, then acks."""
    scopes = [scope_of(a) for a in role.spec.appenders]
    async with role.bus.wake_consumer(
        group=GROUP, consumer=role.name, scopes=scopes, claim_idle_ms=2_000, block_ms=300
    ) as wakes:
        while not role.stop.is_set():
            message = await wakes.next(timeout=0.5)
            if message is None:
                continue
            d = message.delivery
            role.history.write(
                Entry(op="wake", id=role.next_id("w"), actor=role.name, inc=role.inc,
                      outcome=OK, pid=d.process_id, seq=d.sequence, key=d.wake_id)
            )  # fmt: skip
            with contextlib.suppress(Exception):  # unacked: delivered again, which is allowed
                await message.ack(mark_process=True)


async def leaser(role: Role) -> None:
    """Holds a lease, lets it lapse, lets a second owner claim, then writes
    under the stale lease: the write must be refused (``stale_append``)."""
    bus = role.bus
    ttl = 400
    while not role.stop.is_set():
        pid = f"{role.name}.{role.inc}.p{role.counter + 1}"
        registration = ProcessRegistration.external(pid, event_types=[value_type()])
        entry = role.history.intent("register", role.next_id("r"), pid=pid)
        if isinstance(await role.op(entry, bus.register_process(registration)), Exception):
            await role.pace(0.2, 0.5)
            continue
        first = LeaseOwnerIdentity.opaque(f"{role.name}-a", uuid.uuid4().hex)
        second = LeaseOwnerIdentity.opaque(f"{role.name}-b", uuid.uuid4().hex)
        old = await claim(role, pid, first, ttl)
        if old is None:
            continue
        value = role.next_id("v")
        request = ProcessEventAppendRequest.new(VALUE_TYPE, {"v": value}).with_replay_key(value)
        entry = role.history.intent("append", value, pid=pid, value=value, key=value)
        await role.op(entry, bus.append_event(pid, request, lease=old))
        await asyncio.sleep(ttl / 1000 * 1.5)  # the first lease lapses
        new = await claim(role, pid, second, 30_000)
        if new is None:
            continue
        stale = role.next_id("v")
        request = ProcessEventAppendRequest.new(VALUE_TYPE, {"v": stale}).with_replay_key(stale)
        entry = role.history.intent("stale_append", stale, pid=pid, value=stale, key=stale)
        await role.op(entry, bus.append_event(pid, request, lease=old))
        value = role.next_id("v")
        request = ProcessEventAppendRequest.new(VALUE_TYPE, {"v": value}).with_replay_key(value)
        entry = role.history.intent("append", value, pid=pid, value=value, key=value)
        await role.op(entry, bus.append_event(pid, request, lease=new))
        entry = role.history.intent("complete", role.next_id("c"), pid=pid)
        await role.op(entry, bus.complete_process(pid, final_output(pid), lease=new))
        with contextlib.suppress(Exception):
            await bus.complete_process_lease(ProcessLeaseCompletion.from_lease(new))
        await role.pace(0.1, 0.3)


async def claim(role: Role, pid: str, who: LeaseOwnerIdentity, ttl: int) -> Any:
    for _ in range(40):
        if role.stop.is_set():
            return None
        with contextlib.suppress(Exception):
            outcome = await role.bus.claim_process_lease(pid, who, ttl)
            if isinstance(outcome, LeaseAcquired):
                return outcome.lease
        await asyncio.sleep(0.1)
    return None


async def sweeper(role: Role) -> None:
    """Recovery with death evidence: abandons a started owner-bound job only
    when its starter is provably dead; relays wake intents left behind."""
    recovery = role.bus.recovery(
        ls.owner_identity(role.name),
        lease_ttl_ms=role.spec.lease_ttl_ms,
        renew_every_ms=role.spec.renew_every_ms,
        fleet_liveness=True,
        unrunnable="skip",
    )
    await recovery.register()
    await recovery.run(0.5, stop=role.stop)
    await recovery.shutdown()


ROLES = {
    "appender": appender,
    "consumer": consumer,
    "worker": worker,
    "leaser": leaser,
    "sweeper": sweeper,
}


async def main(argv: list[str]) -> None:
    kind, url, namespace, name, inc, raw = argv
    spec = msgspec.json.decode(raw, type=Spec)
    async with ls.connect(url, namespace=namespace) as bus:
        role = Role(bus, name, int(inc), spec)
        try:
            await ROLES[kind](role)
        finally:
            role.history.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
