"""Tool output types the await mapping needs (lash-sansio ``tool_output.rs``)."""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from lash_streams.model._base import Wire
from lash_streams.model._codec import JsonValue, convert, register_hook


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
    after_ms: int | None = None


class RetryExhausted(Wire, frozen=True, kw_only=True, tag_field="type", tag="exhausted"):
    attempts: int


ToolRetryDisposition = RetryNever | RetrySafe | RetryExhausted


class ToolFailure(Wire, frozen=True, kw_only=True):
    class_: ToolFailureClass = msgspec.field(name="class")
    code: str
    message: str
    source: ToolFailureSource
    retry: ToolRetryDisposition
    raw: JsonValue | None = None

    @classmethod
    def tool(cls, class_: ToolFailureClass, code: str, message: str) -> ToolFailure:
        return cls(
            class_=class_,
            code=code,
            message=message,
            source=ToolFailureSource.TOOL,
            retry=RetryNever(),
        )


class ToolCancellation(Wire, frozen=True, kw_only=True):
    message: str
    source: ToolFailureSource
    raw: JsonValue | None = None

    @classmethod
    def runtime(cls, message: str) -> ToolCancellation:
        return cls(message=message, source=ToolFailureSource.CANCELLATION)


class ControlSwitchAgentFrame(
    Wire, frozen=True, kw_only=True, tag_field="type", tag="switch_agent_frame"
):
    frame_id: str
    initial_nodes: list[JsonValue] = msgspec.field(default_factory=list)
    task: str | None = None


class ControlFinish(Wire, frozen=True, kw_only=True, tag_field="type", tag="finish"):
    value: JsonValue


class ControlFail(Wire, frozen=True, kw_only=True, tag_field="type", tag="fail"):
    failure: ToolFailure


ToolControl = ControlSwitchAgentFrame | ControlFinish | ControlFail


class ToolCallOutcome:
    """Adjacently tagged: ``{"status": "...", "payload": ...}``."""

    __slots__ = ()


class OutcomeSuccess(ToolCallOutcome):
    __slots__ = ("value",)

    def __init__(self, value: JsonValue) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OutcomeSuccess) and other.value == self.value

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"OutcomeSuccess({self.value!r})"


class OutcomeFailure(ToolCallOutcome):
    __slots__ = ("failure",)

    def __init__(self, failure: ToolFailure) -> None:
        self.failure = failure

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OutcomeFailure) and other.failure == self.failure

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"OutcomeFailure({self.failure!r})"


class OutcomeCancelled(ToolCallOutcome):
    __slots__ = ("cancellation",)

    def __init__(self, cancellation: ToolCancellation) -> None:
        self.cancellation = cancellation

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OutcomeCancelled) and other.cancellation == self.cancellation

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"OutcomeCancelled({self.cancellation!r})"


class _Adjacent(msgspec.Struct):
    status: str
    payload: Any


def _encode_outcome(obj: ToolCallOutcome) -> Any:
    if isinstance(obj, OutcomeSuccess):
        return _Adjacent("success", obj.value)
    if isinstance(obj, OutcomeFailure):
        return _Adjacent("failure", obj.failure)
    assert isinstance(obj, OutcomeCancelled)
    return _Adjacent("cancelled", obj.cancellation)


def _decode_outcome(obj: Any) -> ToolCallOutcome:
    if not isinstance(obj, dict) or "status" not in obj or "payload" not in obj:
        raise ValueError('tool call outcome must be {"status": ..., "payload": ...}')
    status, payload = obj["status"], obj["payload"]
    if status == "success":
        return OutcomeSuccess(payload)
    if status == "failure":
        return OutcomeFailure(convert(payload, ToolFailure))
    if status == "cancelled":
        return OutcomeCancelled(convert(payload, ToolCancellation))
    raise ValueError(f"unknown tool call outcome status `{status}`")


register_hook(ToolCallOutcome, _encode_outcome, _decode_outcome)


class ToolCallOutput(Wire, frozen=True, kw_only=True):
    outcome: ToolCallOutcome
    control: ToolControl | None = None


__all__ = [
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
]
