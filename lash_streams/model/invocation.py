"""Runtime lineage: ``RuntimeInvocation`` and ``CausalRef`` (envelope.rs, causal.rs),
plus ``SessionScope`` (model.rs), which events and process records both embed; it is
defined here, the leaf module, and re-exported by ``process``."""

from __future__ import annotations

import enum

from lash_streams.model._codec import U64, Wire


class SessionScope(Wire, frozen=True, kw_only=True):
    session_id: str
    agent_frame_id: str | None = None

    def id(self) -> str:
        """ID-2: ``session:<sid>``, or ``session:<sid>/frame:<fid>`` for a non-empty frame."""
        if self.agent_frame_id:
            return f"session:{self.session_id}/frame:{self.agent_frame_id}"
        return f"session:{self.session_id}"


class RuntimeEffectKind(enum.Enum):
    LLM_CALL = "llm_call"
    DIRECT = "direct"
    TOOL_ATTEMPT = "tool_attempt"
    TOOL_BATCH = "tool_batch"
    PROCESS = "process"
    EXEC_CODE = "exec_code"
    CHECKPOINT = "checkpoint"
    SYNC_EXECUTION_ENVIRONMENT = "sync_execution_environment"
    SLEEP = "sleep"
    AWAIT_EVENT = "await_event"
    DURABLE_STEP = "durable_step"


class RuntimeScope(Wire, frozen=True, kw_only=True):
    session_id: str
    turn_id: str | None = None
    turn_index: U64 | None = None
    protocol_iteration: U64 | None = None


class RuntimeReplay(Wire, frozen=True, kw_only=True):
    key: str


class SubjectEffect(Wire, frozen=True, kw_only=True, tag_field="type", tag="effect"):
    effect_id: str
    kind: RuntimeEffectKind


class SubjectProcess(Wire, frozen=True, kw_only=True, tag_field="type", tag="process"):
    process_id: str


class SubjectProcessEvent(Wire, frozen=True, kw_only=True, tag_field="type", tag="process_event"):
    process_id: str
    sequence: U64
    event_type: str


class SubjectTriggerOccurrence(
    Wire, frozen=True, kw_only=True, tag_field="type", tag="trigger_occurrence"
):
    occurrence_id: str


class SubjectSessionNode(Wire, frozen=True, kw_only=True, tag_field="type", tag="session_node"):
    node_id: str


RuntimeSubject = (
    SubjectEffect
    | SubjectProcess
    | SubjectProcessEvent
    | SubjectTriggerOccurrence
    | SubjectSessionNode
)


class CausalTurn(Wire, frozen=True, kw_only=True, tag_field="type", tag="turn"):
    session_id: str
    turn_id: str


class CausalEffect(Wire, frozen=True, kw_only=True, tag_field="type", tag="effect"):
    session_id: str
    turn_id: str | None = None
    effect_id: str


class CausalToolCall(Wire, frozen=True, kw_only=True, tag_field="type", tag="tool_call"):
    session_id: str
    call_id: str


class CausalProcess(Wire, frozen=True, kw_only=True, tag_field="type", tag="process"):
    process_id: str


class CausalProcessEvent(Wire, frozen=True, kw_only=True, tag_field="type", tag="process_event"):
    process_id: str
    sequence: U64


class CausalTriggerOccurrence(
    Wire, frozen=True, kw_only=True, tag_field="type", tag="trigger_occurrence"
):
    occurrence_id: str


class CausalSessionNode(Wire, frozen=True, kw_only=True, tag_field="type", tag="session_node"):
    session_id: str
    node_id: str


CausalRef = (
    CausalTurn
    | CausalEffect
    | CausalToolCall
    | CausalProcess
    | CausalProcessEvent
    | CausalTriggerOccurrence
    | CausalSessionNode
)


class RuntimeInvocation(Wire, frozen=True, kw_only=True):
    scope: RuntimeScope
    subject: RuntimeSubject
    caused_by: CausalRef | None = None
    replay: RuntimeReplay | None = None


def process_event_invocation(
    process_id: str, sequence: int, event_type: str, replay_key: str | None
) -> RuntimeInvocation:
    """EV-5: the invocation stamped on every stored process event."""
    return RuntimeInvocation(
        scope=RuntimeScope(session_id="runtime"),
        subject=SubjectProcessEvent(
            process_id=process_id, sequence=sequence, event_type=event_type
        ),
        caused_by=CausalProcess(process_id=process_id),
        replay=RuntimeReplay(key=replay_key) if replay_key is not None else None,
    )


__all__ = [
    "CausalEffect",
    "CausalProcess",
    "CausalProcessEvent",
    "CausalRef",
    "CausalSessionNode",
    "CausalToolCall",
    "CausalTriggerOccurrence",
    "CausalTurn",
    "RuntimeEffectKind",
    "RuntimeInvocation",
    "RuntimeReplay",
    "RuntimeScope",
    "RuntimeSubject",
    "SessionScope",
    "SubjectEffect",
    "SubjectProcess",
    "SubjectProcessEvent",
    "SubjectSessionNode",
    "SubjectTriggerOccurrence",
    "process_event_invocation",
]
