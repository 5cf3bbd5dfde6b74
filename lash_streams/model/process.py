"""Registration, record, status and the record's facets (lash ``model.rs``)."""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from lash_streams.model._codec import U64, JsonValue, Wire, always, canonical_json
from lash_streams.model.events import (
    ProcessAwaitOutput,
    ProcessEventType,
    ProcessTerminalSemantics,
    ProcessTerminalState,
    default_process_event_types,
)
from lash_streams.model.invocation import CausalRef, SessionScope
from lash_streams.model.lease import LeaseOwnerIdentity


class OriginatorHost(Wire, frozen=True, kw_only=True, tag_field="type", tag="host"):
    pass


class OriginatorSession(Wire, frozen=True, kw_only=True, tag_field="type", tag="session"):
    scope: SessionScope


ProcessOriginator = OriginatorHost | OriginatorSession


def originator_scope_id(originator: ProcessOriginator) -> str:
    """ID-3."""
    return "host" if isinstance(originator, OriginatorHost) else originator.scope.id()


class ProcessProvenance(Wire, frozen=True, kw_only=True):
    originator: ProcessOriginator
    caused_by: CausalRef | None = None

    @classmethod
    def host(cls) -> ProcessProvenance:
        return cls(originator=OriginatorHost())


class InputToolCall(Wire, frozen=True, kw_only=True, tag_field="type", tag="tool_call"):
    """``call`` is lash's ``PreparedToolCall``, carried as its exact JSON bytes
    (its struct field order is lash's, which re-sorting would break); build it
    from compact serde JSON, since the bytes are written back verbatim."""

    call: msgspec.Raw


class InputEngine(Wire, frozen=True, kw_only=True, tag_field="type", tag="engine"):
    kind: str
    payload: JsonValue = always(lambda: None)


class InputSessionTurn(Wire, frozen=True, kw_only=True, tag_field="type", tag="session_turn"):
    """The session-turn payloads are lash structs carried as exact JSON bytes."""

    create_request: msgspec.Raw
    turn_input: msgspec.Raw
    output_contract: msgspec.Raw


class InputExternal(Wire, frozen=True, kw_only=True, tag_field="type", tag="external"):
    metadata: JsonValue = always(lambda: None)


ProcessInput = InputToolCall | InputEngine | InputSessionTurn | InputExternal


class RecoveryDisposition(enum.Enum):
    """DS-1: declared at registration, never inferred (ADR 0019)."""

    RERUNNABLE = "rerunnable"
    OWNER_BOUND = "owner_bound"
    EXTERNALLY_OWNED = "externally_owned"


class ProcessIdentity(Wire, frozen=True, kw_only=True):
    kind: str
    label: str | None = None
    definition: JsonValue | None = None


def _external_label(metadata: Any) -> str | None:
    if isinstance(metadata, dict):
        for key in ("label", "name", "title"):
            if key in metadata:
                value = metadata[key]
                return value if isinstance(value, str) else None
    return None


class ProcessRegistration(Wire, frozen=True, kw_only=True):
    id: str
    input: ProcessInput
    disposition: RecoveryDisposition
    identity: ProcessIdentity
    event_types: list[ProcessEventType] = always(list)
    provenance: ProcessProvenance
    env_ref: str | None = None
    wake_target: SessionScope | None = None

    @classmethod
    def external(
        cls,
        id: str,
        *,
        disposition: RecoveryDisposition = RecoveryDisposition.EXTERNALLY_OWNED,
        metadata: JsonValue = None,
        provenance: ProcessProvenance | None = None,
        event_types: list[ProcessEventType] | None = None,
        wake_target: SessionScope | None = None,
    ) -> ProcessRegistration:
        """An ``external`` input registration (lash ``ProcessStartRequest::external``)."""
        return cls(
            id=id,
            input=InputExternal(metadata=metadata),
            disposition=disposition,
            identity=ProcessIdentity(kind="external", label=_external_label(metadata)),
            event_types=default_process_event_types() if event_types is None else event_types,
            provenance=provenance or ProcessProvenance.host(),
            wake_target=wake_target,
        )


class StatusRunning(Wire, frozen=True, kw_only=True, tag_field="state", tag="running"):
    pass


class StatusCompleted(Wire, frozen=True, kw_only=True, tag_field="state", tag="completed"):
    await_output: ProcessAwaitOutput


class StatusFailed(Wire, frozen=True, kw_only=True, tag_field="state", tag="failed"):
    await_output: ProcessAwaitOutput


class StatusCancelled(Wire, frozen=True, kw_only=True, tag_field="state", tag="cancelled"):
    await_output: ProcessAwaitOutput


class StatusAbandoned(Wire, frozen=True, kw_only=True, tag_field="state", tag="abandoned"):
    await_output: ProcessAwaitOutput


ProcessStatus = StatusRunning | StatusCompleted | StatusFailed | StatusCancelled | StatusAbandoned

_STATUS_BY_STATE: dict[ProcessTerminalState, Any] = {
    ProcessTerminalState.COMPLETED: StatusCompleted,
    ProcessTerminalState.FAILED: StatusFailed,
    ProcessTerminalState.CANCELLED: StatusCancelled,
    ProcessTerminalState.ABANDONED: StatusAbandoned,
}


def status_from_terminal(terminal: ProcessTerminalSemantics) -> ProcessStatus:
    status: ProcessStatus = _STATUS_BY_STATE[terminal.state](await_output=terminal.await_output)
    return status


def is_terminal(status: ProcessStatus) -> bool:
    return not isinstance(status, StatusRunning)


def status_label(status: ProcessStatus) -> str:
    """PS-1: the model-visible label."""
    return str(type(status).__struct_config__.tag)


class WaitSignal(Wire, frozen=True, kw_only=True, tag_field="kind", tag="signal"):
    name: str
    event_type: str
    key: str
    ordinal: U64


WaitKind = WaitSignal


class _NoWaitKind(Wire, frozen=True, kw_only=True, tag_field="kind", tag="\x00"):
    """Never decodes: beside it ``WaitSignal`` is read as a member of a tagged
    union, so its ``kind`` tag is required, as serde requires the tag of a
    one-variant internally tagged enum (a lone msgspec tagged struct reads
    without one)."""

    def __post_init__(self) -> None:
        raise ValueError("unknown variant `\\u0000`, expected `signal`")


class WaitState(Wire, frozen=True, kw_only=True):
    kind: WaitKind | _NoWaitKind
    since_ms: U64


class ProcessStarted(Wire, frozen=True, kw_only=True):
    owner: LeaseOwnerIdentity
    started_at_ms: U64


class AbandonRequest(Wire, frozen=True, kw_only=True):
    requested_by: str
    requested_at_ms: U64
    reason: str | None = None


class ProcessExternalRef(Wire, frozen=True, kw_only=True):
    backend: str
    id: str
    metadata: JsonValue | None = None


class ProcessHandleDescriptor(Wire, frozen=True, kw_only=True):
    kind: str | None = None
    label: str | None = None


class ProcessHandleGrant(Wire, frozen=True, kw_only=True):
    session_id: str
    process_id: str
    descriptor: ProcessHandleDescriptor


class ProcessLifecycleStatus(enum.Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"


class ProcessStatusFilter(enum.Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"
    ANY = "any"


class ProcessListFilter(Wire, frozen=True, kw_only=True):
    """RD-5."""

    definition: JsonValue | None = None
    status: ProcessStatusFilter = ProcessStatusFilter.RUNNING
    waiting: bool | None = None

    def matches_record(self, record: ProcessRecord) -> bool:
        label = status_label(record.status)
        if self.status != ProcessStatusFilter.ANY and self.status.value != label:
            return False
        # serde_json Value equality: 1, 1.0 and true are all different.
        if self.definition is not None and (
            record.identity.definition is None
            or canonical_json(record.identity.definition) != canonical_json(self.definition)
        ):
            return False
        return self.waiting is None or (record.wait is not None) == self.waiting


class ProcessSessionDeleteReport(Wire, frozen=True, kw_only=True):
    session_id: str
    revoked_handle_count: U64
    deleted_wake_count: U64
    orphaned_process_ids: list[str]
    preserved_process_ids: list[str]


class ProcessPruneReport(Wire, frozen=True, kw_only=True):
    pruned_processes: U64
    pruned_events: U64


class DurabilityTier(enum.Enum):
    INLINE = "inline"
    DURABLE = "durable"


def _zero() -> int:
    return 0


class ProcessRecord(Wire, frozen=True, kw_only=True):
    id: str
    registration_hash: str
    input: ProcessInput
    disposition: RecoveryDisposition
    identity: ProcessIdentity
    event_types: list[ProcessEventType] = always(list)
    provenance: ProcessProvenance
    env_ref: str | None = None
    wake_target: SessionScope | None = None
    created_at_ms: U64 = always(_zero)
    updated_at_ms: U64 = always(_zero)
    external_ref: ProcessExternalRef | None = None
    first_started: ProcessStarted | None = None
    abandon_request: AbandonRequest | None = None
    wait: WaitState | None = None
    status: ProcessStatus = always(StatusRunning)

    def is_terminal(self) -> bool:
        return is_terminal(self.status)

    def await_output(self) -> ProcessAwaitOutput | None:
        output: ProcessAwaitOutput | None = getattr(self.status, "await_output", None)
        return output


__all__ = [
    "AbandonRequest",
    "DurabilityTier",
    "InputEngine",
    "InputExternal",
    "InputSessionTurn",
    "InputToolCall",
    "OriginatorHost",
    "OriginatorSession",
    "ProcessExternalRef",
    "ProcessHandleDescriptor",
    "ProcessHandleGrant",
    "ProcessIdentity",
    "ProcessInput",
    "ProcessLifecycleStatus",
    "ProcessListFilter",
    "ProcessOriginator",
    "ProcessProvenance",
    "ProcessPruneReport",
    "ProcessRecord",
    "ProcessRegistration",
    "ProcessSessionDeleteReport",
    "ProcessStarted",
    "ProcessStatus",
    "ProcessStatusFilter",
    "RecoveryDisposition",
    "SessionScope",
    "StatusAbandoned",
    "StatusCancelled",
    "StatusCompleted",
    "StatusFailed",
    "StatusRunning",
    "WaitKind",
    "WaitSignal",
    "WaitState",
    "is_terminal",
    "originator_scope_id",
    "status_from_terminal",
    "status_label",
]
