"""Planning an append (EV-2 steps 2, 4-8) and completing a process (CP-1).

The replay lookup (step 3) and the commit (step 9) need the store's current
state atomically, so the store's script does them; everything here is pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lash_streams.errors import AlreadyTerminal, ReplayKeyRequired, UndeclaredEventType
from lash_streams.model import (
    ProcessAwaitOutput,
    ProcessEvent,
    ProcessEventAppendRequest,
    ProcessRecord,
    ProcessStatus,
    RuntimeReplay,
    SystemTime,
    process_event_invocation,
    status_from_terminal,
    terminal_state_of,
)
from lash_streams.semantics.canonical import payload_hash
from lash_streams.semantics.materialize import materialize_semantics
from lash_streams.semantics.schema import validate_payload
from lash_streams.semantics.signals import CANCEL_REQUESTED

_TERMINAL_EVENT_TYPES = {
    "completed": "process.completed",
    "failed": "process.failed",
    "cancelled": "process.cancelled",
    "abandoned": "process.abandoned",
}


@dataclass(frozen=True, slots=True)
class AppendPlan:
    event: ProcessEvent
    payload_hash: str
    status_update: ProcessStatus | None


def plan_append(
    record: ProcessRecord,
    request: ProcessEventAppendRequest,
    *,
    sequence: int,
    occurred_at_ms: int,
) -> AppendPlan:
    """The event an append would insert at ``sequence``, or the typed error
    lash raises, in lash's order (EV-2)."""
    pid = record.id
    digest = payload_hash(request.event_type, request.payload)
    declared = next((t for t in record.event_types if t.name == request.event_type), None)
    if declared is None:
        raise UndeclaredEventType(
            f"process `{pid}` emitted undeclared event type `{request.event_type}`",
            process_id=pid,
        )
    needs_key = declared.semantics.terminal is not None or request.event_type == CANCEL_REQUESTED
    if needs_key and (request.replay is None or request.replay.key == ""):
        raise ReplayKeyRequired(
            f"process `{pid}` event `{request.event_type}` requires a deterministic replay key",
            process_id=pid,
        )
    validate_payload(
        declared.payload_schema, request.payload, event_type=request.event_type, process_id=pid
    )
    semantics = materialize_semantics(pid, sequence, request.payload, declared.semantics)
    if semantics.terminal is not None and record.is_terminal():
        raise AlreadyTerminal(f"process `{pid}` is already terminal", process_id=pid)
    event = ProcessEvent(
        process_id=pid,
        sequence=sequence,
        event_type=request.event_type,
        payload=request.payload,
        invocation=process_event_invocation(
            pid,
            sequence,
            declared.name,
            request.replay.key if request.replay is not None else None,
        ),
        semantics=semantics,
        occurred_at=SystemTime.from_ms(occurred_at_ms),
    )
    status = status_from_terminal(semantics.terminal) if semantics.terminal else None
    return AppendPlan(event=event, payload_hash=digest, status_update=status)


def repair_status(record: ProcessRecord, stored: ProcessEvent) -> ProcessStatus | None:
    """EV-6: a replayed terminal event re-applies its status to a record that
    (inconsistently) is still running."""
    if stored.semantics.terminal is None or record.is_terminal():
        return None
    return status_from_terminal(stored.semantics.terminal)


def complete_request(process_id: str, output: ProcessAwaitOutput) -> ProcessEventAppendRequest:
    """CP-1: the default terminal type for the output's state, keyed per type."""
    event_type = _TERMINAL_EVENT_TYPES[terminal_state_of(output).value]
    payload: dict[str, Any] = {"await_output": output}
    from lash_streams.model import to_builtins

    return ProcessEventAppendRequest(
        event_type=event_type,
        payload=to_builtins(payload),
        replay=RuntimeReplay(key=f"process:{process_id}:terminal:{event_type}"),
    )
