"""Await output <-> tool output (TO-1..TO-4)."""

from __future__ import annotations

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
    ToolCallOutput,
    ToolCancellation,
    ToolFailure,
    ToolFailureClass,
    to_builtins,
)

_ABANDON_MESSAGES = {
    AbandonWriter.OWNER_DRAIN: "process abandoned: owner drained without recording an outcome",
    AbandonWriter.SWEEP: "process abandoned: recovery observed the owner provably dead",
    AbandonWriter.RECONCILED_REQUEST: (
        "process abandoned: reconciled abandon request after the lease lapsed"
    ),
}


def await_output_to_tool_output(output: ProcessAwaitOutput) -> ToolCallOutput:
    """TO-1/TO-2: what an awaiting caller sees; abandoned surfaces as an
    external failure ``process_abandoned`` carrying the evidence."""
    if isinstance(output, AwaitSuccess):
        return ToolCallOutput(outcome=OutcomeSuccess(output.value), control=output.control)
    if isinstance(output, AwaitFailure):
        failure = ToolFailure.tool(output.class_, output.code, output.message)
        if output.raw is not None:
            failure = _with_raw(failure, output.raw)
        return ToolCallOutput(outcome=OutcomeFailure(failure), control=output.control)
    if isinstance(output, AwaitCancelled):
        cancellation = ToolCancellation.runtime(output.message)
        if output.raw is not None:
            import msgspec

            cancellation = msgspec.structs.replace(cancellation, raw=output.raw)
        return ToolCallOutput(outcome=OutcomeCancelled(cancellation), control=output.control)
    assert isinstance(output, AwaitAbandoned)
    failure = ToolFailure.tool(
        ToolFailureClass.EXTERNAL, "process_abandoned", _ABANDON_MESSAGES[output.evidence.writer]
    )
    failure = _with_raw(failure, to_builtins(output.evidence))
    return ToolCallOutput(outcome=OutcomeFailure(failure), control=output.control)


def _with_raw(failure: ToolFailure, raw: object) -> ToolFailure:
    import msgspec

    return msgspec.structs.replace(failure, raw=raw)


def await_output_from_tool_output(output: ToolCallOutput) -> ProcessAwaitOutput:
    """TO-3: one way only: no tool output ever becomes ``abandoned``."""
    outcome = output.outcome
    if isinstance(outcome, OutcomeSuccess):
        return AwaitSuccess(value=outcome.value, control=output.control)
    if isinstance(outcome, OutcomeFailure):
        f = outcome.failure
        return AwaitFailure(
            class_=f.class_, code=f.code, message=f.message, raw=f.raw, control=output.control
        )
    assert isinstance(outcome, OutcomeCancelled)
    c = outcome.cancellation
    return AwaitCancelled(message=c.message, raw=c.raw, control=output.control)


def observed_error(output: ProcessAwaitOutput) -> str | None:
    """TO-4: the error string an observer shows."""
    if isinstance(output, (AwaitFailure, AwaitCancelled)):
        return output.message
    return None
