"""Process events, terminals, await outputs and wakes (lash ``events.rs``)."""

from __future__ import annotations

import enum

import msgspec

from lash_streams.model._base import Wire, always
from lash_streams.model._codec import JsonValue
from lash_streams.model.invocation import (
    CausalRef,
    RuntimeInvocation,
    RuntimeReplay,
    RuntimeScope,
    SubjectProcessEvent,
)
from lash_streams.model.lease import LeaseOwnerIdentity
from lash_streams.model.scope import SessionScope
from lash_streams.model.selectors import (
    DedupeEventIdentity,
    ProcessValueSelector,
    ProcessWakeDedupeKey,
    SelPointer,
)
from lash_streams.model.tool import ToolControl, ToolFailureClass


class ProcessTerminalState(enum.Enum):
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"


class AbandonWriter(enum.Enum):
    """Who wrote an ``abandoned`` terminal: one legitimate writer per path (ADR 0019)."""

    OWNER_DRAIN = "owner_drain"
    SWEEP = "sweep"
    RECONCILED_REQUEST = "reconciled_request"


class AbandonEvidence(Wire, frozen=True, kw_only=True):
    writer: AbandonWriter
    owner: LeaseOwnerIdentity | None = None
    epoch_ms: int


class AwaitSuccess(Wire, frozen=True, kw_only=True, tag_field="type", tag="success"):
    value: JsonValue
    control: ToolControl | None = None


class AwaitFailure(Wire, frozen=True, kw_only=True, tag_field="type", tag="failure"):
    class_: ToolFailureClass = msgspec.field(name="class")
    code: str
    message: str
    raw: JsonValue | None = None
    control: ToolControl | None = None


class AwaitCancelled(Wire, frozen=True, kw_only=True, tag_field="type", tag="cancelled"):
    message: str
    raw: JsonValue | None = None
    control: ToolControl | None = None


class AwaitAbandoned(Wire, frozen=True, kw_only=True, tag_field="type", tag="abandoned"):
    evidence: AbandonEvidence
    control: ToolControl | None = None


ProcessAwaitOutput = AwaitSuccess | AwaitFailure | AwaitCancelled | AwaitAbandoned


def terminal_state_of(output: ProcessAwaitOutput) -> ProcessTerminalState:
    """AO-2."""
    if isinstance(output, AwaitSuccess):
        return ProcessTerminalState.COMPLETED
    if isinstance(output, AwaitFailure):
        return ProcessTerminalState.FAILED
    if isinstance(output, AwaitCancelled):
        return ProcessTerminalState.CANCELLED
    return ProcessTerminalState.ABANDONED


class LashSchema(Wire, frozen=True, kw_only=True):
    """A payload schema; serde form ``{"schema": <JSON schema>}``."""

    schema: JsonValue

    @classmethod
    def any(cls) -> LashSchema:
        return cls(schema={})


class ProcessTerminalSpec(Wire, frozen=True, kw_only=True):
    state: ProcessTerminalState
    await_output: ProcessValueSelector | None = None


class ProcessWakeSpec(Wire, frozen=True, kw_only=True):
    when: ProcessValueSelector | None = None
    input: ProcessValueSelector
    dedupe_key: ProcessWakeDedupeKey = always(DedupeEventIdentity)


class ProcessEventSemanticsSpec(Wire, frozen=True, kw_only=True):
    terminal: ProcessTerminalSpec | None = None
    wake: ProcessWakeSpec | None = None


class ProcessEventType(Wire, frozen=True, kw_only=True):
    name: str
    payload_schema: LashSchema
    semantics: ProcessEventSemanticsSpec


class ProcessTerminalSemantics(Wire, frozen=True, kw_only=True):
    state: ProcessTerminalState
    await_output: ProcessAwaitOutput


class ProcessWake(Wire, frozen=True, kw_only=True):
    input: str
    dedupe_key: str


class ProcessEventSemantics(Wire, frozen=True, kw_only=True):
    terminal: ProcessTerminalSemantics | None = None
    wake: ProcessWake | None = None


class SystemTime(Wire, frozen=True, kw_only=True):
    """Rust ``SystemTime`` as serde writes it."""

    secs_since_epoch: int
    nanos_since_epoch: int

    @classmethod
    def from_ms(cls, epoch_ms: int) -> SystemTime:
        return cls(
            secs_since_epoch=epoch_ms // 1000, nanos_since_epoch=(epoch_ms % 1000) * 1_000_000
        )

    @property
    def epoch_ms(self) -> int:
        return self.secs_since_epoch * 1000 + self.nanos_since_epoch // 1_000_000


class ProcessEvent(Wire, frozen=True, kw_only=True):
    process_id: str
    sequence: int
    event_type: str
    payload: JsonValue
    invocation: RuntimeInvocation
    semantics: ProcessEventSemantics
    occurred_at: SystemTime

    @property
    def occurred_at_ms(self) -> int:
        return self.occurred_at.epoch_ms


class ProcessEventAppendRequest(Wire, frozen=True, kw_only=True):
    event_type: str
    payload: JsonValue
    replay: RuntimeReplay | None = None
    wake_target_scope: SessionScope | None = None

    @classmethod
    def new(cls, event_type: str, payload: JsonValue) -> ProcessEventAppendRequest:
        return cls(event_type=event_type, payload=payload)

    def with_replay_key(self, key: str) -> ProcessEventAppendRequest:
        import msgspec

        return msgspec.structs.replace(self, replay=RuntimeReplay(key=key))

    def with_wake_target_scope(self, scope: SessionScope) -> ProcessEventAppendRequest:
        import msgspec

        return msgspec.structs.replace(self, wake_target_scope=scope)

    @classmethod
    def cancel_requested(cls, process_id: str, reason: str | None) -> ProcessEventAppendRequest:
        """CN-1."""
        from lash_streams.semantics.signals import cancel_requested_request

        return cancel_requested_request(process_id, reason)


def _default_wake_invocation() -> RuntimeInvocation:
    return RuntimeInvocation(
        scope=RuntimeScope(session_id=""),
        subject=SubjectProcessEvent(process_id="", sequence=0, event_type="process.wake"),
    )


class ProcessWakeDelivery(Wire, frozen=True, kw_only=True):
    wake_id: str
    target_session_id: str
    target_scope_id: str
    process_id: str
    sequence: int
    event_type: str = always(lambda: "process.wake")
    event_invocation: RuntimeInvocation = always(_default_wake_invocation)
    process_caused_by: CausalRef | None = None
    dedupe_key: str
    input: str
    created_at_ms: int


class ProcessEventAppendResult(Wire, frozen=True, kw_only=True):
    event: ProcessEvent
    wake_delivery: ProcessWakeDelivery | None = None


def _terminal_type(name: str, state: ProcessTerminalState) -> ProcessEventType:
    return ProcessEventType(
        name=name,
        payload_schema=LashSchema.any(),
        semantics=ProcessEventSemanticsSpec(
            terminal=ProcessTerminalSpec(state=state, await_output=SelPointer("/await_output"))
        ),
    )


def default_process_event_types() -> list[ProcessEventType]:
    """ET-2, in lash's order."""
    plain = [
        ProcessEventType(
            name=name, payload_schema=LashSchema.any(), semantics=ProcessEventSemanticsSpec()
        )
        for name in ("process.cancel_requested", "process.waiting", "process.resumed")
    ]
    return [
        *plain,
        _terminal_type("process.completed", ProcessTerminalState.COMPLETED),
        _terminal_type("process.failed", ProcessTerminalState.FAILED),
        _terminal_type("process.cancelled", ProcessTerminalState.CANCELLED),
        _terminal_type("process.abandoned", ProcessTerminalState.ABANDONED),
    ]


__all__ = [
    "AbandonEvidence",
    "AbandonWriter",
    "AwaitAbandoned",
    "AwaitCancelled",
    "AwaitFailure",
    "AwaitSuccess",
    "LashSchema",
    "ProcessAwaitOutput",
    "ProcessEvent",
    "ProcessEventAppendRequest",
    "ProcessEventAppendResult",
    "ProcessEventSemantics",
    "ProcessEventSemanticsSpec",
    "ProcessEventType",
    "ProcessTerminalSemantics",
    "ProcessTerminalSpec",
    "ProcessTerminalState",
    "ProcessWake",
    "ProcessWakeDelivery",
    "ProcessWakeSpec",
    "SystemTime",
    "default_process_event_types",
    "terminal_state_of",
]
