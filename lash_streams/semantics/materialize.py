"""Terminal and wake materialization (TM-1..TM-4, WK-1..WK-4)."""

from __future__ import annotations

from typing import Any

import msgspec

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
from lash_streams.model._codec import decode, encode
from lash_streams.semantics.await_serde import serde_await_output
from lash_streams.semantics.selectors import is_truthy, select_value, stringify


def parse_await_output(value: Any) -> ProcessAwaitOutput | None:
    """TM-2: ``value`` read as a serialized await output the way
    ``serde_json::from_value::<ProcessAwaitOutput>`` reads it (the forms
    serde's derive reads but never writes included: semantics/await_serde.py),
    or ``None``."""
    canonical = serde_await_output(value)
    if canonical is None:
        return None
    try:
        output: ProcessAwaitOutput = decode(encode(canonical), ProcessAwaitOutput)  # type: ignore[arg-type]
    except (DecodeError, msgspec.EncodeError, UnicodeEncodeError):
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
    # Quirk kept (TM-2): a raw value under a producer-declared abandoned
    # terminal carries no evidence, so lash records a minimal owner-drain marker.
    return AwaitAbandoned(evidence=AbandonEvidence(writer=AbandonWriter.OWNER_DRAIN, epoch_ms=0))


def materialize_terminal(payload: Any, spec: ProcessTerminalSpec) -> ProcessTerminalSemantics:
    """TM-2/TM-3. The state is always the declared one, even when the selected
    value parses as an await output of another variant (TM-4 quirk)."""
    if spec.await_output is not None:
        selected = select_value(payload, spec.await_output)
        output = parse_await_output(selected)
        if output is None:
            output = _from_raw(spec.state, selected)
    elif spec.state is ProcessTerminalState.COMPLETED:
        output = AwaitSuccess(value=payload)
    else:
        raise SelectorError("failed or cancelled terminal events must declare await output")
    return ProcessTerminalSemantics(state=spec.state, await_output=output)


def materialize_wake(
    process_id: str, sequence: int, payload: Any, spec: ProcessWakeSpec
) -> ProcessWake | None:
    """WK-2/WK-3: ``None`` when ``when`` selects a falsy value (SEL-8)."""
    if spec.when is not None and not is_truthy(select_value(payload, spec.when)):
        return None
    wake_input = stringify(select_value(payload, spec.input))
    key = spec.dedupe_key
    if isinstance(key, DedupeEventIdentity):
        dedupe = f"{process_id}:{sequence}"
    elif isinstance(key, DedupeSelector):
        dedupe = stringify(select_value(payload, key.selector))
    elif isinstance(key, DedupeConst):
        dedupe = key.value
    else:
        raise TypeError(f"not a wake dedupe key: {key!r}")
    return ProcessWake(input=wake_input, dedupe_key=dedupe)


def materialize_semantics(
    process_id: str, sequence: int, payload: Any, spec: ProcessEventSemanticsSpec
) -> ProcessEventSemantics:
    """EV-2 step 7: terminal first, then wake, so a terminal selector error wins."""
    terminal = materialize_terminal(payload, spec.terminal) if spec.terminal is not None else None
    wake = (
        materialize_wake(process_id, sequence, payload, spec.wake)
        if spec.wake is not None
        else None
    )
    return ProcessEventSemantics(terminal=terminal, wake=wake)
