"""Terminal and wake materialization (TM-1..TM-4, WK-1..WK-4)."""

from __future__ import annotations

from typing import Any

from lash_streams.errors import DecodeError, SelectorError
from lash_streams.model import (
    AbandonEvidence,
    AbandonWriter,
    AwaitAbandoned,
    AwaitCancelled,
    AwaitFailure,
    AwaitSuccess,
    DedupeConst,
    DedupeEventIdentity,
    DedupeSelector,
    ProcessAwaitOutput,
    ProcessEventSemantics,
    ProcessEventSemanticsSpec,
    ProcessTerminalSemantics,
    ProcessTerminalSpec,
    ProcessTerminalState,
    ProcessWake,
    ProcessWakeSpec,
    ToolFailureClass,
)
from lash_streams.model._codec import decode as decode_json
from lash_streams.model._codec import encode
from lash_streams.semantics.selectors import is_truthy, select_value, stringify


def _as_await_output(value: Any) -> ProcessAwaitOutput | None:
    """TM-2: a selected value that is a serialized await output is used as is."""
    if not isinstance(value, dict) or "type" not in value:
        return None
    try:
        output: ProcessAwaitOutput = decode_json(encode(value), ProcessAwaitOutput)  # type: ignore[arg-type]
    except DecodeError:
        return None
    return output


def _from_raw(state: ProcessTerminalState, value: Any) -> ProcessAwaitOutput:
    if state is ProcessTerminalState.COMPLETED:
        return AwaitSuccess(value=value)
    if state is ProcessTerminalState.FAILED:
        return AwaitFailure(
            class_=ToolFailureClass.EXECUTION,
            code="process_failed",
            message=stringify(value),
            raw=value,
        )
    if state is ProcessTerminalState.CANCELLED:
        return AwaitCancelled(message=stringify(value), raw=value)
    # Quirk kept (TM-2): a raw value under an abandoned terminal carries no
    # evidence, so lash synthesizes a minimal owner-drain marker.
    return AwaitAbandoned(evidence=AbandonEvidence(writer=AbandonWriter.OWNER_DRAIN, epoch_ms=0))


def materialize_terminal(payload: Any, spec: ProcessTerminalSpec) -> ProcessTerminalSemantics:
    if spec.await_output is not None:
        selected = select_value(payload, spec.await_output)
        output = _as_await_output(selected) or _from_raw(spec.state, selected)
    elif spec.state is ProcessTerminalState.COMPLETED:
        output = AwaitSuccess(value=payload)
    else:
        raise SelectorError("failed or cancelled terminal events must declare await output")
    # TM-4 (quirk kept): the declared state wins over the parsed output's variant.
    return ProcessTerminalSemantics(state=spec.state, await_output=output)


def materialize_wake(
    process_id: str, sequence: int, payload: Any, spec: ProcessWakeSpec
) -> ProcessWake | None:
    if spec.when is not None and not is_truthy(select_value(payload, spec.when)):
        return None
    wake_input = stringify(select_value(payload, spec.input))
    key = spec.dedupe_key
    if isinstance(key, DedupeEventIdentity):
        dedupe = f"{process_id}:{sequence}"
    elif isinstance(key, DedupeSelector):
        dedupe = stringify(select_value(payload, key.selector))
    else:
        assert isinstance(key, DedupeConst)
        dedupe = key.value
    return ProcessWake(input=wake_input, dedupe_key=dedupe)


def materialize_semantics(
    process_id: str, sequence: int, payload: Any, spec: ProcessEventSemanticsSpec
) -> ProcessEventSemantics:
    terminal = materialize_terminal(payload, spec.terminal) if spec.terminal else None
    wake = materialize_wake(process_id, sequence, payload, spec.wake) if spec.wake else None
    return ProcessEventSemantics(terminal=terminal, wake=wake)
