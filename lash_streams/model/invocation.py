"""Runtime lineage: ``RuntimeInvocation`` and ``CausalRef`` (envelope.rs, causal.rs)."""

from __future__ import annotations

import enum

from lash_streams.model._base import Wire


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
    turn_index: int | None = None
    protocol_iteration: int | None = None


class RuntimeReplay(Wire, frozen=True, kw_only=True):
    key: str


class SubjectEffect(Wire, frozen=True, kw_only=True, tag_field="type", tag="effect"):
    effect_id: str
    kind: RuntimeEffectKind


class SubjectProcess(Wire, frozen=True, kw_only=True, tag_field="type", tag="process"):
    process_id: str


class SubjectProcessEvent(Wire, frozen=True, kw_only=True, tag_field="type", tag="process_event"):
    process_id: str
    sequence: int
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
    sequence: int


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
    "SubjectEffect",
    "SubjectProcess",
    "SubjectProcessEvent",
    "SubjectSessionNode",
    "SubjectTriggerOccurrence",
    "process_event_invocation",
]
