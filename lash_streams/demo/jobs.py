"""What the demo fleet runs: the jobs' registrations and the runner every
worker (and the sweeper, for re-runs) uses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec

from lash_streams.bus import Bus
from lash_streams.model import (
    AwaitSuccess,
    LashSchema,
    ProcessAwaitOutput,
    ProcessEventAppendRequest,
    ProcessEventSemanticsSpec,
    ProcessEventType,
    ProcessLease,
    ProcessRecord,
    ProcessRegistration,
    ProcessWakeSpec,
    RecoveryDisposition,
    SelPointer,
    SelPresent,
    SessionScope,
)

#: Steps each job reports; steps in WAKE_STEPS also wake the job's session.
STEPS = 6
WAKE_STEPS = (3, 6)

PROGRESS = ProcessEventType(
    name="progress",
    payload_schema=LashSchema(
        schema={
            "type": "object",
            "properties": {
                "step": {"type": "integer"},
                "of": {"type": "integer"},
                "by": {"type": "string"},
                "wake": {"type": "string"},
            },
            "required": ["step", "of", "by"],
            "additionalProperties": False,
        }
    ),
    # An event whose payload has `/wake` wakes the job's session (WK-1..WK-3).
    semantics=ProcessEventSemanticsSpec(
        wake=ProcessWakeSpec(when=SelPresent("/wake"), input=SelPointer("/wake"))
    ),
)


@dataclass(frozen=True)
class Job:
    id: str
    worker: str
    disposition: RecoveryDisposition
    session: str

    @property
    def short(self) -> str:
        """The id without the run prefix (``w2-ob``)."""
        return self.id.split("-", 1)[1]

    def registration(self) -> ProcessRegistration:
        return msgspec.structs.replace(
            ProcessRegistration.external(self.id, disposition=self.disposition),
            event_types=[PROGRESS],
            wake_target=SessionScope(session_id=self.session),
        )


def plan(run_id: str, workers: int) -> list[Job]:
    """Two jobs per worker: one owner-bound (never run twice: a dead owner's
    started job is abandoned) and one rerunnable (any worker may run it again)."""
    jobs = []
    for w in range(1, workers + 1):
        for kind, disposition in (
            ("ob", RecoveryDisposition.OWNER_BOUND),
            ("rr", RecoveryDisposition.RERUNNABLE),
        ):
            jobs.append(
                Job(
                    id=f"{run_id}-w{w}-{kind}",
                    worker=f"worker-{w}",
                    disposition=disposition,
                    session=f"session-{w}",
                )
            )
    return jobs


Report = Callable[..., None]
Runner = Callable[[ProcessRecord, ProcessLease], Awaitable[ProcessAwaitOutput]]


def runner(bus: Bus, name: str, step_s: float, report: Report) -> Runner:
    """A runner that appends STEPS fenced progress events, ``step_s`` apart."""

    async def run(record: ProcessRecord, lease: ProcessLease) -> ProcessAwaitOutput:
        report("started", process=record.id)
        for step in range(1, STEPS + 1):
            await asyncio.sleep(step_s)
            payload: dict[str, object] = {"step": step, "of": STEPS, "by": name}
            if step in WAKE_STEPS:
                payload["wake"] = f"{record.id} reached step {step}"
            result = await bus.append_event(
                record.id, ProcessEventAppendRequest(event_type="progress", payload=payload),
                lease=lease,
            )  # fmt: skip
            report(
                "progress",
                process=record.id,
                seq=result.event.sequence,
                step=step,
                wake=result.wake_delivery is not None,
            )
        return AwaitSuccess(value={"by": name, "steps": STEPS})

    return run
