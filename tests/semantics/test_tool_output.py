"""Await output <-> tool output (TO-1..TO-4), scenario S-AO-01."""

from __future__ import annotations

from typing import Any

import pytest

from lash_streams.model import (
    AbandonEvidence,
    AbandonWriter,
    AwaitAbandoned,
    AwaitCancelled,
    AwaitFailure,
    AwaitSuccess,
    ControlFinish,
    LeaseOwnerIdentity,
    OutcomeCancelled,
    OutcomeFailure,
    OutcomeSuccess,
    RetryNever,
    ToolCallOutput,
    ToolFailureClass,
    ToolFailureSource,
    to_builtins,
)
from lash_streams.semantics import (
    await_output_from_tool_output,
    await_output_to_tool_output,
    observed_error,
)

FINISH = ControlFinish(value="done")


def test_s_ao_01_success_failure_cancelled() -> None:
    """S-AO-01, TO-1: same fields, control carried through; failures are
    ``ToolFailure::tool`` (source tool, retry never); cancellations are
    ``ToolCancellation::runtime`` (source cancellation)."""
    success = await_output_to_tool_output(AwaitSuccess(value={"v": 1}, control=FINISH))
    assert success == ToolCallOutput(outcome=OutcomeSuccess({"v": 1}), control=FINISH)
    failure = await_output_to_tool_output(
        AwaitFailure(class_=ToolFailureClass.TIMEOUT, code="slow", message="late", raw=[1])
    )
    assert isinstance(failure.outcome, OutcomeFailure)
    tool_failure = failure.outcome.failure
    assert (tool_failure.class_, tool_failure.code, tool_failure.message, tool_failure.raw) == (
        ToolFailureClass.TIMEOUT,
        "slow",
        "late",
        [1],
    )
    assert tool_failure.source is ToolFailureSource.TOOL
    assert tool_failure.retry == RetryNever()
    cancelled = await_output_to_tool_output(AwaitCancelled(message="stop", raw="r"))
    assert isinstance(cancelled.outcome, OutcomeCancelled)
    cancellation = cancelled.outcome.cancellation
    assert (cancellation.message, cancellation.raw) == ("stop", "r")
    assert cancellation.source is ToolFailureSource.CANCELLATION


@pytest.mark.parametrize(
    ("writer", "message"),
    [
        (
            AbandonWriter.OWNER_DRAIN,
            "process abandoned: owner drained without recording an outcome",
        ),
        (AbandonWriter.SWEEP, "process abandoned: recovery observed the owner provably dead"),
        (
            AbandonWriter.RECONCILED_REQUEST,
            "process abandoned: reconciled abandon request after the lease lapsed",
        ),
    ],
)
def test_s_ao_01_abandoned_is_an_external_failure(writer: AbandonWriter, message: str) -> None:
    """S-AO-01, TO-2: class external, code process_abandoned, message by
    writer, raw = the evidence JSON; TO-3: converting back is a plain failure."""
    evidence = AbandonEvidence(writer=writer, owner=LeaseOwnerIdentity.opaque("o", "i"), epoch_ms=7)
    output = AwaitAbandoned(evidence=evidence, control=FINISH)
    tool = await_output_to_tool_output(output)
    assert isinstance(tool.outcome, OutcomeFailure)
    failure = tool.outcome.failure
    assert failure.class_ is ToolFailureClass.EXTERNAL
    assert failure.code == "process_abandoned"
    assert failure.message == message
    assert failure.raw == to_builtins(evidence)
    assert tool.control == FINISH
    back = await_output_from_tool_output(tool)
    assert isinstance(back, AwaitFailure)
    assert back == AwaitFailure(
        class_=ToolFailureClass.EXTERNAL,
        code="process_abandoned",
        message=message,
        raw=to_builtins(evidence),
        control=FINISH,
    )
    assert observed_error(output) is None


@pytest.mark.parametrize(
    "output",
    [
        AwaitSuccess(value=[1, {"a": None}]),
        AwaitSuccess(value=None, control=FINISH),
        AwaitFailure(class_=ToolFailureClass.INTERNAL, code="c", message="m"),
        AwaitFailure(class_=ToolFailureClass.EXECUTION, code="c", message="m", raw={"k": 1}),
        AwaitCancelled(message="m", control=FINISH),
    ],
)
def test_to_3_round_trip_of_non_abandoned_outputs(output: Any) -> None:
    """TO-1/TO-3: success, failure and cancelled survive the round trip."""
    assert await_output_from_tool_output(await_output_to_tool_output(output)) == output


def test_to_1_reserved_tool_value_key_is_escaped() -> None:
    """TO-1: ``ToolValue::from`` escapes objects holding `$lash_tool_value`;
    the way back keeps the wire form, as lash's ``to_json_value`` does."""
    value = {"$lash_tool_value": "attachment", "ref": {"id": "x"}}
    tool = await_output_to_tool_output(AwaitSuccess(value=value))
    escaped = {"$lash_tool_value": "object", "entries": value}
    assert tool.outcome == OutcomeSuccess(escaped)
    assert await_output_from_tool_output(tool) == AwaitSuccess(value=escaped)


def test_to_4_observed_error() -> None:
    """TO-4: failure/cancelled messages; none for success and abandoned."""
    assert observed_error(AwaitSuccess(value=1)) is None
    failure = AwaitFailure(class_=ToolFailureClass.EXTERNAL, code="c", message="boom")
    assert observed_error(failure) == "boom"
    assert observed_error(AwaitCancelled(message="stopped")) == "stopped"
