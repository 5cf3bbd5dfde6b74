"""Quickstart: register a process, append events, consume its wakes, await it.

Runs against ``LASH_STREAMS_URL`` when set, else a private embedded server;
``LASH_STREAMS_NAMESPACE`` picks the key namespace (default ``lash-examples``).
Prints the process id last (docs/examples/cli.sh uses it).
"""

import asyncio
import os
import uuid

import lash_streams as ls

URL = os.environ.get("LASH_STREAMS_URL")  # None: start an embedded Valkey
NAMESPACE = os.environ.get("LASH_STREAMS_NAMESPACE", "lash-examples")

SESSION = ls.SessionScope(session_id="session-1")

# An event type: a name, a payload schema, and semantics. Steps that carry a
# note wake the process's session; the wake input is built from the payload.
PROGRESS = ls.ProcessEventType(
    name="progress",
    payload_schema=ls.LashSchema(
        schema={
            "type": "object",
            "properties": {"step": {"type": "integer", "minimum": 1}, "note": {"type": "string"}},
            "required": ["step"],
            "additionalProperties": False,
        }
    ),
    semantics=ls.ProcessEventSemanticsSpec(
        wake=ls.ProcessWakeSpec(
            when=ls.SelPresent("/note"),
            input=ls.SelTemplate(
                "step {step}: {note}",
                {"step": ls.SelPointer("/step"), "note": ls.SelPointer("/note")},
            ),
        )
    ),
)


async def main() -> None:
    async with ls.connect(URL, namespace=NAMESPACE) as bus:
        registration = ls.ProcessRegistration.external(
            f"job-{uuid.uuid4().hex[:8]}",
            event_types=[PROGRESS],  # lash's default types are added for you
            wake_target=SESSION,
        )
        record = await bus.register_process(registration)
        pid = record.id
        # Registering the same registration again returns the stored record.
        assert (await bus.register_process(registration)).created_at_ms == record.created_at_ms

        await bus.append_event(pid, ls.ProcessEventAppendRequest.new("progress", {"step": 1}))
        step2 = ls.ProcessEventAppendRequest.new("progress", {"step": 2, "note": "half way"})
        first = await bus.append_event(pid, step2.with_replay_key("step-2"))
        again = await bus.append_event(pid, step2.with_replay_key("step-2"))  # a retry
        assert first.event.sequence == again.event.sequence == 2  # replayed, not duplicated
        assert first.wake_delivery is not None

        try:
            await bus.append_event(pid, ls.ProcessEventAppendRequest.new("progress", {"step": 0}))
        except ls.errors.InvalidPayload as err:
            print(f"rejected ({err.kind}): {err}")

        # Wakes land in the session's wake stream; a consumer group reads them.
        async with bus.wake_consumer(group="sessions", consumer="pod-1", scopes=[SESSION]) as wakes:
            message = await wakes.next(timeout=5)
            assert message is not None
            print(
                f"wake for {message.delivery.process_id}#{message.delivery.sequence}: "
                f"{message.delivery.input}"
            )
            await message.ack(mark_process=True)  # XACK, and lash's ack_wake

        waiter = asyncio.create_task(bus.await_terminal(pid, timeout=10))
        await bus.complete_process(pid, ls.AwaitSuccess(value={"steps": 2}))
        print("terminal:", ls.encode(await waiter).decode())
        print("events:", [(e.sequence, e.event_type) for e in await bus.events_after(pid, 0)])
        print(pid)


if __name__ == "__main__":
    asyncio.run(main())
