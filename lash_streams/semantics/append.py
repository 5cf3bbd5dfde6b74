"""Planning an append (EV-2 steps 2 and 4..8), replays (EV-6) and completing
a process (CP-1).

The replay lookup (step 3) and the commit (step 9) need the store's current
state atomically, so the store's script does them; everything here is pure and
is computed against the record's immutable event types, for the candidate
sequence ``last + 1`` the script then checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from lash_streams.errors import (
    AlreadyTerminal,
    InvalidPayload,
    InvalidValue,
    ReplayKeyRequired,
    UndeclaredEventType,
)
from lash_streams.model import (
    ProcessAwaitOutput,
    ProcessEvent,
    ProcessEventAppendRequest,
    ProcessEventType,
    ProcessRecord,
    ProcessStatus,
    ProcessTerminalState,
    ProcessWakeDelivery,
    RuntimeReplay,
    SessionScope,
    process_event_invocation,
    status_from_terminal,
    terminal_state_of,
    to_builtins,
)
from lash_streams.model._codec import encode
from lash_streams.model._hash import pair_hash
from lash_streams.semantics.inputs import json_problem, require
from lash_streams.semantics.materialize import materialize_semantics
from lash_streams.semantics.registration import validate_scope
from lash_streams.semantics.schema import validate_payload
from lash_streams.semantics.signals import CANCEL_REQUESTED
from lash_streams.semantics.wake import build_wake_delivery, resolve_wake_target

TERMINAL_EVENT_TYPES = {
    ProcessTerminalState.COMPLETED: "process.completed",
    ProcessTerminalState.FAILED: "process.failed",
    ProcessTerminalState.CANCELLED: "process.cancelled",
    ProcessTerminalState.ABANDONED: "process.abandoned",
}


@dataclass(frozen=True, slots=True)
class AppendPlan:
    """The event an append inserts at ``event.sequence`` if the store finds no
    replay match, with what the commit (EV-2 step 9) needs besides."""

    event: ProcessEvent
    #: The terminal status projection (EV-12), or ``None`` for a non-terminal event.
    status_update: ProcessStatus | None
    #: What the wake delivery is built from (on first use: the store builds
    #: its own from the sequence the commit assigned).
    record: ProcessRecord
    target: SessionScope | None
    #: The payload's serde JSON, encoded once for the hash and the stored event.
    payload_json: bytes = b""
    #: The event type's JSON: the hash digests ``[event_type, payload]``.
    type_json: bytes = b""

    @property
    def payload_hash(self) -> str:
        """EV-2 step 2's hash, digested when asked for: only a keyed append
        stores it (its replay row), so an append without a key never pays
        for it. What could make hashing fail was refused when planning."""
        return pair_hash(self.type_json, self.payload_json)

    @property
    def wake_delivery(self) -> ProcessWakeDelivery | None:
        """WK-5/WK-7 against the target resolved when planning."""
        return build_wake_delivery(self.record, self.event, self.target)

    @property
    def is_terminal(self) -> bool:
        return self.status_update is not None


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """EV-6: what a replayed append returns and (rarely) repairs."""

    event: ProcessEvent
    repair_status: ProcessStatus | None
    wake_delivery: ProcessWakeDelivery | None


def request_payload_hash(request: ProcessEventAppendRequest, process_id: str) -> str:
    """EV-2 step 2. lash's payloads are serde Values and always hash; a Python
    payload may hold something JSON cannot (a lone surrogate, a set, ...)."""
    return pair_hash(*_encoded(request, process_id))


def _encoded(request: ProcessEventAppendRequest, process_id: str) -> tuple[bytes, bytes]:
    """The event type's and the payload's JSON, encoded once: the payload hash
    digests ``[event_type, payload]``, whose JSON is the two encodings joined.
    Raises what hashing them would."""
    if request.replay is not None:  # a key of another type would read back as text
        require(request.replay.key, str, "the replay key")
    if request.replay is not None and json_problem(request.replay.key) is not None:
        raise InvalidValue(
            f"process `{process_id}` event `{request.event_type}`: the replay key is not "
            "valid UTF-8 (a lone surrogate)",
            process_id=process_id,
        )
    problem = json_problem(request.payload)
    if problem is not None:
        # Stored, it would be changed on the way (NaN as null, a set as a list)
        # or refused late; lash's serde Value holds plain JSON only.
        raise InvalidPayload(
            f"invalid `{request.event_type}` payload: not encodable as JSON: it holds {problem}",
            process_id=process_id,
        )
    try:
        return encode(request.event_type), encode(request.payload)
    except (msgspec.EncodeError, UnicodeEncodeError, TypeError, OverflowError) as err:
        raise InvalidPayload(
            f"invalid `{request.event_type}` payload: not encodable as JSON: {err}",
            process_id=process_id,
        ) from None


def declared_event_type(record: ProcessRecord, event_type: str) -> ProcessEventType:
    """EV-2 step 4 (ET-3): exact name match against the record's own list."""
    for declared in record.event_types:
        if declared.name == event_type:
            return declared
    raise UndeclaredEventType(
        f"process `{record.id}` emitted undeclared event type `{event_type}`",
        process_id=record.id,
    )


def plan_append(
    record: ProcessRecord,
    request: ProcessEventAppendRequest,
    *,
    sequence: int,
    occurred_at_ms: int,
) -> AppendPlan:
    """EV-2 steps 2 and 4..8 for candidate ``sequence``, raising the typed
    error lash raises, in lash's order. Assumes step 3 found no replay match."""
    pid = record.id
    require(request.event_type, str, "event_type")  # hashed next: checked first
    type_json, payload_json = _encoded(request, pid)
    declared = declared_event_type(record, request.event_type)
    needs_key = declared.semantics.terminal is not None or request.event_type == CANCEL_REQUESTED
    # EV-4 quirk: an empty key counts as absent here, yet is stored as given.
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
    event = ProcessEvent.new(
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
        occurred_at_ms=occurred_at_ms,
    )
    if request.wake_target_scope is not None:
        # Checked before anything is written: the scope id keys the wake stream.
        validate_scope("wake target", request.wake_target_scope)
    target = resolve_wake_target(record, request.wake_target_scope)
    return AppendPlan(
        event=event,
        status_update=(
            status_from_terminal(semantics.terminal) if semantics.terminal is not None else None
        ),
        record=record,
        target=target,
        payload_json=payload_json,
        type_json=type_json,
    )


def repair_status(record: ProcessRecord, stored: ProcessEvent) -> ProcessStatus | None:
    """EV-6: a replayed terminal event re-applies its status to a record that
    is (inconsistently) still running; ``None`` otherwise."""
    if stored.semantics.terminal is None or record.is_terminal():
        return None
    return status_from_terminal(stored.semantics.terminal)


def replay_plan(
    record: ProcessRecord, stored: ProcessEvent, request: ProcessEventAppendRequest
) -> ReplayPlan:
    """EV-6: the stored event as is, the repair status, and the wake delivery
    re-materialized from the stored wake against the *current* target
    resolution (this request's scope, else the record's wake target)."""
    target = resolve_wake_target(record, request.wake_target_scope)
    return ReplayPlan(
        event=stored,
        repair_status=repair_status(record, stored),
        wake_delivery=build_wake_delivery(record, stored, target),
    )


def complete_request(process_id: str, output: ProcessAwaitOutput) -> ProcessEventAppendRequest:
    """CP-1: the default terminal type for the output's state (AO-2), payload
    ``{"await_output": output}``, replay key ``process:<pid>:terminal:<type>``."""
    event_type = TERMINAL_EVENT_TYPES[terminal_state_of(output)]
    payload: dict[str, Any] = {"await_output": to_builtins(output)}
    return ProcessEventAppendRequest(
        event_type=event_type,
        payload=payload,
        replay=RuntimeReplay(key=f"process:{process_id}:terminal:{event_type}"),
    )
