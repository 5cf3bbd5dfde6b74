"""Append planning (EV-2 steps 2, 4..8), replays (EV-6) and CP-1."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from lash_streams import errors
from lash_streams.model import (
    AbandonEvidence,
    AbandonWriter,
    AwaitAbandoned,
    AwaitCancelled,
    AwaitFailure,
    AwaitSuccess,
    CausalProcess,
    CausalSessionNode,
    ProcessEventAppendRequest,
    ProcessProvenance,
    RuntimeReplay,
    RuntimeScope,
    SelPointer,
    SessionScope,
    StatusCompleted,
    SubjectProcessEvent,
    ToolFailureClass,
    to_builtins,
)
from lash_streams.semantics import (
    complete_request,
    payload_hash,
    plan_append,
    repair_status,
)
from lash_streams.semantics.append import replay_plan
from tests.semantics._fixtures import plain, record, wake

SUCCESS = {"await_output": {"type": "success", "value": {"ok": True}}}


def _plan(rec: Any, request: ProcessEventAppendRequest, sequence: int = 1) -> Any:
    return plan_append(rec, request, sequence=sequence, occurred_at_ms=42)


def test_ev_2_ev_5_planned_event() -> None:
    """EV-2 step 2, EV-5: the event, its invocation and the payload hash."""
    rec = record("p", plain("note"))
    request = ProcessEventAppendRequest.new("note", {"b": 1, "a": 2}).with_replay_key("k")
    plan = _plan(rec, request, sequence=4)
    event = plan.event
    assert (event.process_id, event.sequence, event.event_type) == ("p", 4, "note")
    assert event.payload == {"b": 1, "a": 2}
    assert event.occurred_at_ms == 42
    assert event.invocation.scope == RuntimeScope(session_id="runtime")
    assert event.invocation.subject == SubjectProcessEvent(
        process_id="p", sequence=4, event_type="note"
    )
    assert event.invocation.caused_by == CausalProcess(process_id="p")
    assert event.invocation.replay == RuntimeReplay(key="k")
    assert plan.payload_hash == payload_hash("note", {"a": 2, "b": 1})
    assert plan.status_update is None and not plan.is_terminal
    assert plan.wake_delivery is None


def test_et_3_undeclared_event_type() -> None:
    """ET-3, EV-2 step 4: exact names only."""
    with pytest.raises(errors.UndeclaredEventType) as caught:
        _plan(record("p"), ProcessEventAppendRequest.new("signal.go", {}))
    assert str(caught.value) == "process `p` emitted undeclared event type `signal.go`"
    assert caught.value.process_id == "p"


@pytest.mark.parametrize("key", [None, ""])
@pytest.mark.parametrize("event_type", ["process.completed", "process.cancel_requested"])
def test_ev_2_step_5_replay_key_required(event_type: str, key: str | None) -> None:
    """EV-2 step 5, CN-2, EV-4 quirk: terminal types and cancel requests need a
    non-empty key; an empty key counts as absent."""
    request = ProcessEventAppendRequest.new(event_type, SUCCESS)
    if key is not None:
        request = request.with_replay_key(key)
    with pytest.raises(errors.ReplayKeyRequired) as caught:
        _plan(record("p"), request)
    assert (
        str(caught.value) == f"process `p` event `{event_type}` requires a deterministic replay key"
    )


def test_ev_4_empty_key_is_kept_on_ordinary_events() -> None:
    """EV-4: an ordinary event may carry the empty key; it is stored as given."""
    plan = _plan(record("p", plain("n")), ProcessEventAppendRequest.new("n", 1).with_replay_key(""))
    assert plan.event.invocation.replay == RuntimeReplay(key="")


def test_ev_2_error_order() -> None:
    """EV-2: undeclared beats a missing key; a missing key beats the schema; the
    schema beats selectors; selectors beat the terminal check."""
    rec = record("p", plain("typed", {"type": "object", "required": ["x"]}))
    with pytest.raises(errors.UndeclaredEventType):
        _plan(rec, ProcessEventAppendRequest.new("nope", "not an object"))
    with pytest.raises(errors.ReplayKeyRequired):
        _plan(rec, ProcessEventAppendRequest.new("process.failed", {}))
    with pytest.raises(errors.InvalidPayload, match=r"^invalid `typed` payload: x: required"):
        _plan(rec, ProcessEventAppendRequest.new("typed", {}))
    terminal = record("t", status=StatusCompleted(await_output=AwaitSuccess(value=1)))
    with pytest.raises(errors.SelectorError, match="`/await_output` did not match"):
        _plan(terminal, ProcessEventAppendRequest.new("process.failed", {}).with_replay_key("k"))


def test_ev_2_step_8_and_ev_9_after_a_terminal() -> None:
    """EV-2 step 8, EV-9, CN-5: a terminal event on a terminal process is
    refused; non-terminal events (a cancel request included) still plan."""
    rec = record("p", plain("n"), status=StatusCompleted(await_output=AwaitSuccess(value=1)))
    request = ProcessEventAppendRequest.new("process.completed", SUCCESS).with_replay_key("k")
    with pytest.raises(errors.AlreadyTerminal, match=r"^process `p` is already terminal$"):
        _plan(rec, request)
    assert _plan(rec, ProcessEventAppendRequest.new("n", {})).status_update is None
    cancel = ProcessEventAppendRequest.cancel_requested("p", "requested by host")
    assert _plan(rec, cancel).status_update is None


def test_ev_12_terminal_plan() -> None:
    """EV-12: a terminal event plans the status projection."""
    request = ProcessEventAppendRequest.new("process.completed", SUCCESS).with_replay_key("k")
    plan = _plan(record("p"), request)
    assert plan.is_terminal
    assert plan.status_update == StatusCompleted(await_output=AwaitSuccess(value={"ok": True}))


def test_unencodable_payload_is_invalid() -> None:
    """EV-2 step 2: a payload JSON cannot hold is refused before anything else."""
    with pytest.raises(errors.InvalidPayload, match="not encodable"):
        _plan(record("p"), ProcessEventAppendRequest.new("nope", {"x": "\ud800"}))


def test_ev_6_replayed_terminal_repairs_a_running_record() -> None:
    """EV-6 (tests.rs replayed_terminal_event_repairs_non_terminal_status_projection):
    a replay returns the stored event (sequence 1, occurred_at 42) and repairs
    the status of a record that is still running; nothing on a terminal one."""
    rec = record("process-repair")
    request = ProcessEventAppendRequest.new("process.completed", SUCCESS).with_replay_key(
        "process-repair-terminal"
    )
    stored = _plan(rec, request, sequence=1).event
    replay = replay_plan(rec, stored, request)
    assert replay.event.sequence == 1 and replay.event.occurred_at_ms == 42
    assert isinstance(replay.repair_status, StatusCompleted)
    assert isinstance(replay.repair_status.await_output, AwaitSuccess)
    done = msgspec.structs.replace(rec, status=replay.repair_status)
    assert repair_status(done, stored) is None


def test_ev_6_wk_5_replay_wake_uses_the_current_target() -> None:
    """EV-6, WK-5, WK-8: the replayed delivery is rebuilt from the stored wake
    against this request's scope, else the record's current wake target, and
    is equal to the original when the resolution is unchanged."""
    cause = CausalSessionNode(session_id="s", node_id="n")
    rec = msgspec.structs.replace(
        record("proc-wake", wake("process.wake"), wake_target=SessionScope(session_id="session")),
        provenance=ProcessProvenance(
            originator=ProcessProvenance.host().originator, caused_by=cause
        ),
    )
    request = ProcessEventAppendRequest.new(
        "process.wake", {"message": "deploy failed", "wake_input": "Process wake: deploy failed"}
    ).with_replay_key("wake:deploy failed")
    plan = _plan(rec, request)
    delivery = plan.wake_delivery
    assert delivery is not None
    assert delivery.wake_id == (
        "wake:9139c975e42a7d703f7e1fae04306248789f18b2af461fea0c8af565c1b9a700"
    )
    assert (delivery.target_scope_id, delivery.target_session_id) == ("session:session", "session")
    assert delivery.input == "Process wake: deploy failed"
    assert delivery.process_caused_by == cause
    assert delivery.event_invocation == plan.event.invocation
    assert delivery.created_at_ms == 42
    assert replay_plan(rec, plan.event, request).wake_delivery == delivery
    moved = request.with_wake_target_scope(SessionScope(session_id="other", agent_frame_id="f"))
    moved_delivery = replay_plan(rec, plan.event, moved).wake_delivery
    assert moved_delivery is not None
    assert moved_delivery.target_scope_id == "session:other/frame:f"
    untargeted = msgspec.structs.replace(rec, wake_target=None)
    assert replay_plan(untargeted, plan.event, request).wake_delivery is None


@pytest.mark.parametrize(
    ("output", "event_type"),
    [
        (AwaitSuccess(value={"b": 1, "a": 2}), "process.completed"),
        (AwaitFailure(class_=ToolFailureClass.TIMEOUT, code="c", message="m"), "process.failed"),
        (AwaitCancelled(message="m"), "process.cancelled"),
        (
            AwaitAbandoned(evidence=AbandonEvidence(writer=AbandonWriter.SWEEP, epoch_ms=9)),
            "process.abandoned",
        ),
    ],
)
def test_cp_1_complete_request(output: Any, event_type: str) -> None:
    """CP-1, AO-2: default terminal type per state, payload {"await_output": o},
    key process:<pid>:terminal:<type>; planning it round-trips the output."""
    request = complete_request("p", output)
    assert request.event_type == event_type
    assert request.payload == {"await_output": to_builtins(output)}
    assert request.replay == RuntimeReplay(key=f"process:p:terminal:{event_type}")
    plan = _plan(record("p"), request)
    assert plan.status_update is not None
    assert plan.status_update.await_output == output
    assert plan.event.semantics.terminal is not None


def test_cp_3_same_state_same_key() -> None:
    """CP-3: outputs of one state share the replay key (a different output then
    conflicts in the store); different states get different keys."""
    first = complete_request("p", AwaitSuccess(value=1))
    second = complete_request("p", AwaitSuccess(value=2))
    assert first.replay == second.replay
    assert payload_hash(first.event_type, first.payload) != payload_hash(
        second.event_type, second.payload
    )
    assert complete_request("p", AwaitCancelled(message="m")).replay != first.replay


def test_selector_pointer_on_terminal_defaults() -> None:
    """ET-2: default terminal types read `/await_output`."""
    rec = record("p")
    declared = next(t for t in rec.event_types if t.name == "process.failed")
    assert declared.semantics.terminal is not None
    assert declared.semantics.terminal.await_output == SelPointer("/await_output")
