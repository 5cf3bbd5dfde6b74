"""Process events, selectors, terminals, await outputs and wakes (lash ``events.rs``).

Selectors and wake dedupe keys are serde's *externally* tagged enums:
``"payload"``, ``{"pointer": "/x"}``, ``{"const": v}``,
``{"template": {"template": "...", "fields": {...}}}``, ``{"present": "/x"}``;
dedupe keys ``"event_identity"``, ``{"selector": sel}``, ``{"const": "c"}``.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from lash_streams.model._codec import (
    U32,
    U64,
    HookValue,
    JsonValue,
    Wire,
    always,
    fail,
    register_hook,
)
from lash_streams.model._hash import payload_hash
from lash_streams.model.invocation import (
    CausalRef,
    RuntimeInvocation,
    RuntimeReplay,
    RuntimeScope,
    SessionScope,
    SubjectProcessEvent,
)
from lash_streams.model.lease import LeaseOwnerIdentity
from lash_streams.model.tool import ToolControl, ToolFailureClass


class ProcessValueSelector(HookValue):
    """SEL-1. Externally tagged; see the module docstring."""

    __slots__ = ()


class SelPayload(ProcessValueSelector):
    __slots__ = ()


class SelPointer(ProcessValueSelector):
    __slots__ = ("pointer",)
    pointer: str

    def __init__(self, pointer: str) -> None:
        super().__init__(pointer=pointer)


class SelConst(ProcessValueSelector):
    __slots__ = ("value",)
    value: JsonValue

    def __init__(self, value: JsonValue) -> None:
        super().__init__(value=value)


class SelTemplate(ProcessValueSelector):
    __slots__ = ("fields", "template")
    template: str
    fields: dict[str, ProcessValueSelector]

    def __init__(
        self, template: str, fields: dict[str, ProcessValueSelector] | None = None
    ) -> None:
        super().__init__(template=template, fields=dict(fields or {}))


class SelPresent(ProcessValueSelector):
    __slots__ = ("pointer",)
    pointer: str

    def __init__(self, pointer: str) -> None:
        super().__init__(pointer=pointer)


class _TemplateBody(msgspec.Struct):
    template: str
    # serde writes the (possibly empty) BTreeMap: no omit_defaults here.
    fields: dict[str, ProcessValueSelector]


def _encode_selector(obj: ProcessValueSelector) -> Any:
    if isinstance(obj, SelPayload):
        return "payload"
    if isinstance(obj, SelPointer):
        return {"pointer": obj.pointer}
    if isinstance(obj, SelConst):
        return {"const": obj.value}
    if isinstance(obj, SelTemplate):
        return {"template": _TemplateBody(obj.template, obj.fields)}
    if isinstance(obj, SelPresent):
        return {"present": obj.pointer}
    raise TypeError(f"not a selector: {obj!r}")


#: CN-1: the event type of a durable cancel request.
CANCEL_REQUESTED = "process.cancel_requested"

_SELECTOR_VARIANTS = "`payload`, `pointer`, `const`, `template`, `present`"
_DEDUPE_VARIANTS = "`event_identity`, `selector`, `const`"


def _variant(obj: Any, unit: str, variants: str, at: str) -> tuple[str, Any]:
    """serde_json's externally tagged forms: ``"unit"`` or ``{"unit": null}`` for
    the unit variant, ``{"variant": body}`` for the others."""
    if isinstance(obj, str):
        if obj == unit:
            return obj, None
        if f"`{obj}`" in variants:
            raise fail(f"invalid type: unit variant, expected `{obj}` with a value", at)
        raise fail(f"unknown variant `{obj}`, expected one of {variants}", at)
    if not isinstance(obj, dict) or len(obj) != 1:
        raise fail(f"expected a variant name or a single-key object ({variants})", at)
    ((tag, body),) = obj.items()
    if tag == unit and body is not None:
        raise fail(f"invalid type: `{unit}` is a unit variant, expected null", f"{at}.{tag}")
    if f"`{tag}`" not in variants:
        raise fail(f"unknown variant `{tag}`, expected one of {variants}", at)
    return str(tag), body


def _string(body: Any, at: str) -> str:
    if not isinstance(body, str):
        raise fail(f"expected `str`, got `{type(body).__name__}`", at)
    return body


def decode_selector(obj: Any, at: str = "") -> ProcessValueSelector:
    """A selector from its decoded serde JSON (``ValueError`` when malformed)."""
    tag, body = _variant(obj, "payload", _SELECTOR_VARIANTS, at)
    if tag == "payload":
        return SelPayload()
    if tag == "pointer":
        return SelPointer(_string(body, f"{at}.pointer"))
    if tag == "const":
        return SelConst(body)
    if tag == "present":
        return SelPresent(_string(body, f"{at}.present"))
    at = f"{at}.template"
    if not isinstance(body, dict):
        raise fail('expected {"template": ..., "fields": {...}}', at)
    if "template" not in body:
        raise fail("object missing required field `template`", at)
    fields = body.get("fields", {})
    if not isinstance(fields, dict):
        raise fail("expected `object`", f"{at}.fields")
    return SelTemplate(
        _string(body["template"], f"{at}.template"),
        {key: decode_selector(value, f"{at}.fields.{key}") for key, value in fields.items()},
    )


register_hook(ProcessValueSelector, _encode_selector, decode_selector)


class ProcessWakeDedupeKey(HookValue):
    """Externally tagged; serde default ``event_identity``."""

    __slots__ = ()


class DedupeEventIdentity(ProcessWakeDedupeKey):
    __slots__ = ()


class DedupeSelector(ProcessWakeDedupeKey):
    __slots__ = ("selector",)
    selector: ProcessValueSelector

    def __init__(self, selector: ProcessValueSelector) -> None:
        super().__init__(selector=selector)


class DedupeConst(ProcessWakeDedupeKey):
    __slots__ = ("value",)
    value: str

    def __init__(self, value: str) -> None:
        super().__init__(value=value)


def _encode_dedupe(obj: ProcessWakeDedupeKey) -> Any:
    if isinstance(obj, DedupeEventIdentity):
        return "event_identity"
    if isinstance(obj, DedupeSelector):
        return {"selector": obj.selector}
    if isinstance(obj, DedupeConst):
        return {"const": obj.value}
    raise TypeError(f"not a wake dedupe key: {obj!r}")


def _decode_dedupe(obj: Any) -> ProcessWakeDedupeKey:
    tag, body = _variant(obj, "event_identity", _DEDUPE_VARIANTS, "")
    if tag == "event_identity":
        return DedupeEventIdentity()
    if tag == "selector":
        return DedupeSelector(decode_selector(body, ".selector"))
    return DedupeConst(_string(body, ".const"))


register_hook(ProcessWakeDedupeKey, _encode_dedupe, _decode_dedupe)


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
    epoch_ms: U64


class AwaitSuccess(Wire, frozen=True, kw_only=True, tag_field="type", tag="success"):
    value: JsonValue
    control: ToolControl | None = None


class AwaitFailure(Wire, frozen=True, kw_only=True, tag_field="type", tag="failure"):
    """``raw`` is ``msgspec.UNSET`` when absent; ``None`` is a JSON null that is
    written (lash's ``Some(Value::Null)``: TM-2 maps a selected null to it)."""

    class_: ToolFailureClass = msgspec.field(name="class")
    code: str
    message: str
    raw: JsonValue | UnsetType = UNSET
    control: ToolControl | None = None


class AwaitCancelled(Wire, frozen=True, kw_only=True, tag_field="type", tag="cancelled"):
    """``raw`` as in :class:`AwaitFailure`."""

    message: str
    raw: JsonValue | UnsetType = UNSET
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
    """Rust ``SystemTime`` as serde writes it. serde builds a ``Duration`` from
    the pair, so nanos of a second or more carry into the seconds."""

    secs_since_epoch: U64
    nanos_since_epoch: U32

    def __post_init__(self) -> None:
        if self.nanos_since_epoch >= 1_000_000_000:
            carry, nanos = divmod(self.nanos_since_epoch, 1_000_000_000)
            msgspec.structs.force_setattr(self, "secs_since_epoch", self.secs_since_epoch + carry)
            msgspec.structs.force_setattr(self, "nanos_since_epoch", nanos)

    @classmethod
    def from_ms(cls, epoch_ms: int) -> SystemTime:
        return cls(
            secs_since_epoch=epoch_ms // 1000, nanos_since_epoch=(epoch_ms % 1000) * 1_000_000
        )

    @property
    def epoch_ms(self) -> int:
        return self.secs_since_epoch * 1000 + self.nanos_since_epoch // 1_000_000


class ProcessEvent(Wire, frozen=True, kw_only=True):
    """EV-5 / §15. ``occurred_at`` is serde's ``SystemTime``; most code wants
    :attr:`occurred_at_ms` and :meth:`new`."""

    process_id: str
    sequence: U64
    event_type: str
    payload: JsonValue
    invocation: RuntimeInvocation
    semantics: ProcessEventSemantics
    occurred_at: SystemTime

    @property
    def occurred_at_ms(self) -> int:
        return self.occurred_at.epoch_ms

    @classmethod
    def new(
        cls,
        *,
        process_id: str,
        sequence: int,
        event_type: str,
        payload: JsonValue,
        invocation: RuntimeInvocation,
        semantics: ProcessEventSemantics,
        occurred_at_ms: int,
    ) -> ProcessEvent:
        """An event stamped at ``occurred_at_ms`` (epoch milliseconds)."""
        return cls(
            process_id=process_id,
            sequence=sequence,
            event_type=event_type,
            payload=payload,
            invocation=invocation,
            semantics=semantics,
            occurred_at=SystemTime.from_ms(occurred_at_ms),
        )


class ProcessEventAppendRequest(Wire, frozen=True, kw_only=True):
    event_type: str
    payload: JsonValue
    replay: RuntimeReplay | None = None
    wake_target_scope: SessionScope | None = None

    @classmethod
    def new(cls, event_type: str, payload: JsonValue) -> ProcessEventAppendRequest:
        return cls(event_type=event_type, payload=payload)

    def with_replay_key(self, key: str) -> ProcessEventAppendRequest:
        return msgspec.structs.replace(self, replay=RuntimeReplay(key=key))

    def with_wake_target_scope(self, scope: SessionScope) -> ProcessEventAppendRequest:
        return msgspec.structs.replace(self, wake_target_scope=scope)

    @classmethod
    def cancel_requested(cls, process_id: str, reason: str | None) -> ProcessEventAppendRequest:
        """CN-1: payload ``{"reason": reason}`` keyed by its own payload hash, so
        the same reason replays and a different reason appends anew (CN-3)."""
        payload = {"reason": reason}
        digest = payload_hash(CANCEL_REQUESTED, payload)
        return cls(
            event_type=CANCEL_REQUESTED,
            payload=payload,
            replay=RuntimeReplay(key=f"process:{process_id}:cancel_requested:{digest}"),
        )


def _default_wake_event_type() -> str:
    return "process.wake"


def _default_wake_invocation() -> RuntimeInvocation:
    return RuntimeInvocation(
        scope=RuntimeScope(session_id=""),
        subject=SubjectProcessEvent(process_id="", sequence=0, event_type="process.wake"),
    )


class ProcessWakeDelivery(Wire, frozen=True, kw_only=True):
    """WK-7. ``event_type`` and ``event_invocation`` have serde defaults for
    deliveries persisted before they existed, but are always written."""

    wake_id: str
    target_session_id: str
    target_scope_id: str
    process_id: str
    sequence: U64
    event_type: str = always(_default_wake_event_type)
    event_invocation: RuntimeInvocation = always(_default_wake_invocation)
    process_caused_by: CausalRef | None = None
    dedupe_key: str
    input: str
    created_at_ms: U64


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
    """ET-2, in lash's order (a new list of the same frozen values each call:
    caches keyed by identity, the schema validators' included, hit them)."""
    return list(_DEFAULT_EVENT_TYPES)


def _default_event_types() -> tuple[ProcessEventType, ...]:
    plain = [
        ProcessEventType(
            name=name, payload_schema=LashSchema.any(), semantics=ProcessEventSemanticsSpec()
        )
        for name in ("process.cancel_requested", "process.waiting", "process.resumed")
    ]
    return (
        *plain,
        _terminal_type("process.completed", ProcessTerminalState.COMPLETED),
        _terminal_type("process.failed", ProcessTerminalState.FAILED),
        _terminal_type("process.cancelled", ProcessTerminalState.CANCELLED),
        _terminal_type("process.abandoned", ProcessTerminalState.ABANDONED),
    )


_DEFAULT_EVENT_TYPES = _default_event_types()


__all__ = [
    "AbandonEvidence",
    "AbandonWriter",
    "AwaitAbandoned",
    "AwaitCancelled",
    "AwaitFailure",
    "AwaitSuccess",
    "DedupeConst",
    "DedupeEventIdentity",
    "DedupeSelector",
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
    "ProcessValueSelector",
    "ProcessWake",
    "ProcessWakeDedupeKey",
    "ProcessWakeDelivery",
    "ProcessWakeSpec",
    "SelConst",
    "SelPayload",
    "SelPointer",
    "SelPresent",
    "SelTemplate",
    "SystemTime",
    "decode_selector",
    "default_process_event_types",
    "terminal_state_of",
]
