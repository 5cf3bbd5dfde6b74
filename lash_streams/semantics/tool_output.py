"""Await output <-> tool output (TO-1..TO-4).

lash's tool outputs hold ``ToolValue``s, whose wire JSON escapes objects that
carry the reserved ``$lash_tool_value`` key; an await output holds plain JSON.
Going to a tool output escapes (``ToolValue::from``); coming back keeps the
wire JSON (``ToolValue::to_json_value``), exactly as lash does.
"""

from __future__ import annotations

from msgspec import UNSET

from lash_streams.model import (
    AbandonWriter,
    AwaitAbandoned,
    AwaitCancelled,
    AwaitFailure,
    AwaitSuccess,
    OutcomeCancelled,
    OutcomeFailure,
    OutcomeSuccess,
    ProcessAwaitOutput,
    RetryNever,
    ToolCallOutput,
    ToolCancellation,
    ToolFailure,
    ToolFailureClass,
    ToolFailureSource,
    to_builtins,
    tool_value_from_json,
)

_ABANDONED_MESSAGES = {
    AbandonWriter.OWNER_DRAIN: "process abandoned: owner drained without recording an outcome",
    AbandonWriter.SWEEP: "process abandoned: recovery observed the owner provably dead",
    AbandonWriter.RECONCILED_REQUEST: (
        "process abandoned: reconciled abandon request after the lease lapsed"
    ),
}


def abandoned_message(writer: AbandonWriter) -> str:
    """TO-2: the failure message an abandoned terminal surfaces with."""
    return _ABANDONED_MESSAGES[writer]


def _tool_failure(class_: ToolFailureClass, code: str, message: str, raw: object) -> ToolFailure:
    """lash's ``ToolFailure::tool`` (source ``tool``, retry ``never``) plus ``raw``."""
    return ToolFailure(
        class_=class_,
        code=code,
        message=message,
        source=ToolFailureSource.TOOL,
        retry=RetryNever(),
        raw=raw if raw is UNSET else tool_value_from_json(raw),
    )


def await_output_to_tool_output(output: ProcessAwaitOutput) -> ToolCallOutput:
    """TO-1/TO-2: what an awaiting caller sees; ``control`` is carried through.
    Abandoned surfaces as an ``external`` failure ``process_abandoned`` whose
    ``raw`` is the evidence JSON."""
    if isinstance(output, AwaitSuccess):
        return ToolCallOutput(
            outcome=OutcomeSuccess(tool_value_from_json(output.value)), control=output.control
        )
    if isinstance(output, AwaitFailure):
        failure = _tool_failure(output.class_, output.code, output.message, output.raw)
        return ToolCallOutput(outcome=OutcomeFailure(failure), control=output.control)
    if isinstance(output, AwaitCancelled):
        cancellation = ToolCancellation(
            message=output.message,
            source=ToolFailureSource.CANCELLATION,
            raw=output.raw if output.raw is UNSET else tool_value_from_json(output.raw),
        )
        return ToolCallOutput(outcome=OutcomeCancelled(cancellation), control=output.control)
    if isinstance(output, AwaitAbandoned):
        failure = _tool_failure(
            ToolFailureClass.EXTERNAL,
            "process_abandoned",
            abandoned_message(output.evidence.writer),
            to_builtins(output.evidence),
        )
        return ToolCallOutput(outcome=OutcomeFailure(failure), control=output.control)
    raise TypeError(f"not a process await output: {output!r}")


def await_output_from_tool_output(output: ToolCallOutput) -> ProcessAwaitOutput:
    """TO-3: one way only, since a tool cannot self-report abandonment: a
    ``process_abandoned`` failure comes back as a plain failure."""
    outcome = output.outcome
    if isinstance(outcome, OutcomeSuccess):
        return AwaitSuccess(value=outcome.value, control=output.control)
    if isinstance(outcome, OutcomeFailure):
        failure = outcome.failure
        return AwaitFailure(
            class_=failure.class_,
            code=failure.code,
            message=failure.message,
            raw=failure.raw,
            control=output.control,
        )
    if isinstance(outcome, OutcomeCancelled):
        cancellation = outcome.cancellation
        return AwaitCancelled(
            message=cancellation.message, raw=cancellation.raw, control=output.control
        )
    raise TypeError(f"not a tool call outcome: {outcome!r}")


def observed_error(output: ProcessAwaitOutput) -> str | None:
    """TO-4: the error string an observer shows: the message of a failure or
    cancellation; none for success and abandoned."""
    if isinstance(output, (AwaitFailure, AwaitCancelled)):
        return output.message
    return None
