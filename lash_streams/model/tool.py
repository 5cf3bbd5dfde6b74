"""Tool output types the await mapping needs (lash-sansio ``tool_output.rs``).

lash's ``ToolValue`` (success values, ``raw``, ``finish`` values) is JSON whose
objects holding the reserved key ``$lash_tool_value`` travel escaped as
``{"$lash_tool_value": "object", "entries": {...}}`` (attachments as
``{"$lash_tool_value": "attachment", "ref": ...}``). These positions hold that
*wire* JSON: decoding normalizes it as serde would, and
:func:`tool_value_from_json` escapes a plain JSON value the way lash's
``ToolValue::from(serde_json::Value)`` does before it is serialized.
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
    convert,
    fail,
    register_hook,
)

TOOL_VALUE_TAG = "$lash_tool_value"


def tool_value_from_json(value: JsonValue) -> JsonValue:
    """The wire JSON of ``ToolValue::from(value)``: every object holding the
    reserved key is escaped (so an attachment-shaped object stays an object)."""
    if isinstance(value, list):
        return [tool_value_from_json(item) for item in value]
    if isinstance(value, dict):
        entries = {key: tool_value_from_json(item) for key, item in value.items()}
        return (
            {TOOL_VALUE_TAG: "object", "entries": entries} if TOOL_VALUE_TAG in entries else entries
        )
    return value


def tool_value_normalize(value: JsonValue, at: str = "") -> JsonValue:
    """Wire ToolValue JSON as serde re-serializes it after decoding: a needless
    escape collapses to the plain object; unknown or malformed reserved tags are
    rejected (``ValueError``)."""
    if isinstance(value, list):
        return [tool_value_normalize(item, f"{at}[{i}]") for i, item in enumerate(value)]
    if not isinstance(value, dict):
        return value
    if TOOL_VALUE_TAG not in value:
        return {key: tool_value_normalize(item, f"{at}.{key}") for key, item in value.items()}
    tag = value[TOOL_VALUE_TAG]
    if tag == "attachment" and len(value) == 2 and isinstance(value.get("ref"), dict):
        return value
    if tag == "object" and len(value) == 2 and isinstance(value.get("entries"), dict):
        entries = tool_value_normalize(value["entries"], f"{at}.entries")
        return (
            {TOOL_VALUE_TAG: "object", "entries": entries} if TOOL_VALUE_TAG in entries else entries
        )
    if not isinstance(tag, str):
        raise fail("reserved tool value tag must be a string", at)
    if tag in ("attachment", "object"):
        raise fail(f"malformed {tag} tool value", at)
    raise fail(f"unknown reserved tool value tag `{tag}`", at)


class ToolFailureClass(enum.Enum):
    INVALID_REQUEST = "invalid_request"
    UNAVAILABLE = "unavailable"
    PERMISSION_DENIED = "permission_denied"
    TIMEOUT = "timeout"
    EXECUTION = "execution"
    EXTERNAL = "external"
    RESOURCE_LIMIT = "resource_limit"
    INTERNAL = "internal"


class ToolFailureSource(enum.Enum):
    RUNTIME = "runtime"
    TOOL = "tool"
    PLUGIN = "plugin"
    POLICY = "policy"
    CANCELLATION = "cancellation"


class RetryNever(Wire, frozen=True, kw_only=True, tag_field="type", tag="never"):
    pass


class RetrySafe(Wire, frozen=True, kw_only=True, tag_field="type", tag="safe"):
    after_ms: U64 | None = None


class RetryExhausted(Wire, frozen=True, kw_only=True, tag_field="type", tag="exhausted"):
    attempts: U32


ToolRetryDisposition = RetryNever | RetrySafe | RetryExhausted


def _normalize_raw(obj: Any, name: str) -> None:
    value = getattr(obj, name)
    if value is not None and value is not UNSET:
        msgspec.structs.force_setattr(obj, name, tool_value_normalize(value, f".{name}"))


class ToolFailure(Wire, frozen=True, kw_only=True):
    """``raw`` is ``msgspec.UNSET`` when absent; ``None`` is a JSON null that is
    written (lash's ``Some(ToolValue::Null)``)."""

    class_: ToolFailureClass = msgspec.field(name="class")
    code: str
    message: str
    source: ToolFailureSource
    retry: ToolRetryDisposition
    raw: JsonValue | UnsetType = UNSET

    def __post_init__(self) -> None:
        _normalize_raw(self, "raw")

    @classmethod
    def tool(cls, class_: ToolFailureClass, code: str, message: str) -> ToolFailure:
        """lash ``ToolFailure::tool``: source ``tool``, retry ``never``."""
        return cls(
            class_=class_,
            code=code,
            message=message,
            source=ToolFailureSource.TOOL,
            retry=RetryNever(),
        )


class ToolCancellation(Wire, frozen=True, kw_only=True):
    """``raw`` as in :class:`ToolFailure`."""

    message: str
    source: ToolFailureSource
    raw: JsonValue | UnsetType = UNSET

    def __post_init__(self) -> None:
        _normalize_raw(self, "raw")

    @classmethod
    def runtime(cls, message: str) -> ToolCancellation:
        """lash ``ToolCancellation::runtime``: source ``cancellation``."""
        return cls(message=message, source=ToolFailureSource.CANCELLATION)


class ControlSwitchAgentFrame(
    Wire, frozen=True, kw_only=True, tag_field="type", tag="switch_agent_frame"
):
    frame_id: str
    # skip_serializing_if = "Vec::is_empty": omit_defaults drops an empty list.
    initial_nodes: list[JsonValue] = msgspec.field(default_factory=list)
    task: str | None = None


class ControlFinish(Wire, frozen=True, kw_only=True, tag_field="type", tag="finish"):
    value: JsonValue

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(self, "value", tool_value_normalize(self.value, ".value"))


class ControlFail(Wire, frozen=True, kw_only=True, tag_field="type", tag="fail"):
    failure: ToolFailure


ToolControl = ControlSwitchAgentFrame | ControlFinish | ControlFail


class ToolCallOutcome(HookValue):
    """Adjacently tagged: ``{"status": "success"|"failure"|"cancelled", "payload": ...}``."""

    __slots__ = ()


class OutcomeSuccess(ToolCallOutcome):
    __slots__ = ("value",)
    value: JsonValue

    def __init__(self, value: JsonValue) -> None:
        super().__init__(value=tool_value_normalize(value, ".payload"))


class OutcomeFailure(ToolCallOutcome):
    __slots__ = ("failure",)
    failure: ToolFailure

    def __init__(self, failure: ToolFailure) -> None:
        super().__init__(failure=failure)


class OutcomeCancelled(ToolCallOutcome):
    __slots__ = ("cancellation",)
    cancellation: ToolCancellation

    def __init__(self, cancellation: ToolCancellation) -> None:
        super().__init__(cancellation=cancellation)


class _Adjacent(msgspec.Struct):
    status: str
    payload: Any


def _encode_outcome(obj: ToolCallOutcome) -> _Adjacent:
    if isinstance(obj, OutcomeSuccess):
        return _Adjacent("success", obj.value)
    if isinstance(obj, OutcomeFailure):
        return _Adjacent("failure", obj.failure)
    if isinstance(obj, OutcomeCancelled):
        return _Adjacent("cancelled", obj.cancellation)
    raise TypeError(f"not a tool call outcome: {obj!r}")


def _decode_outcome(obj: Any) -> ToolCallOutcome:
    if not isinstance(obj, dict):
        raise fail(f'expected {{"status": ..., "payload": ...}}, got `{type(obj).__name__}`')
    for key in ("status", "payload"):
        if key not in obj:
            raise fail(f"tool call outcome missing field `{key}`")
    status, payload = obj["status"], obj["payload"]
    if status == "success":
        return OutcomeSuccess(payload)
    if status == "failure":
        return OutcomeFailure(convert(payload, ToolFailure, ".payload"))
    if status == "cancelled":
        return OutcomeCancelled(convert(payload, ToolCancellation, ".payload"))
    raise fail(f"unknown tool call outcome status `{status}`", ".status")


register_hook(ToolCallOutcome, _encode_outcome, _decode_outcome)


class ToolCallOutput(Wire, frozen=True, kw_only=True):
    outcome: ToolCallOutcome
    control: ToolControl | None = None


__all__ = [
    "TOOL_VALUE_TAG",
    "ControlFail",
    "ControlFinish",
    "ControlSwitchAgentFrame",
    "OutcomeCancelled",
    "OutcomeFailure",
    "OutcomeSuccess",
    "RetryExhausted",
    "RetryNever",
    "RetrySafe",
    "ToolCallOutcome",
    "ToolCallOutput",
    "ToolCancellation",
    "ToolControl",
    "ToolFailure",
    "ToolFailureClass",
    "ToolFailureSource",
    "ToolRetryDisposition",
    "tool_value_from_json",
    "tool_value_normalize",
]
