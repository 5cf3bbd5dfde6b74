"""Builders shared by the semantics tests (the scenario file's fixtures, pure)."""

from __future__ import annotations

from typing import Any

import msgspec

from lash_streams.model import (
    LashSchema,
    ProcessEventSemanticsSpec,
    ProcessEventType,
    ProcessRecord,
    ProcessRegistration,
    ProcessStatus,
    ProcessTerminalSpec,
    ProcessTerminalState,
    ProcessValueSelector,
    ProcessWakeDedupeKey,
    ProcessWakeSpec,
    SelPointer,
    SelPresent,
    SessionScope,
    StatusRunning,
)
from lash_streams.semantics import prepare_registration


def reg(pid: str, *extra: ProcessEventType, **kwargs: Any) -> ProcessRegistration:
    """``reg(id) + [T...]``: external input, externally owned, host provenance."""
    base = ProcessRegistration.external(pid, **kwargs)
    return msgspec.structs.replace(base, event_types=[*base.event_types, *extra])


def record(
    pid: str,
    *extra: ProcessEventType,
    wake_target: SessionScope | None = None,
    status: ProcessStatus | None = None,
) -> ProcessRecord:
    """A fresh record as RG-5 describes it, from the prepared registration."""
    prepared, digest = prepare_registration(reg(pid, *extra, wake_target=wake_target))
    fields = msgspec.structs.asdict(prepared)
    return ProcessRecord(
        **fields,
        registration_hash=digest,
        created_at_ms=1,
        updated_at_ms=1,
        status=status or StatusRunning(),
    )


def plain(name: str, schema: Any = None) -> ProcessEventType:
    return ProcessEventType(
        name=name,
        payload_schema=LashSchema(schema={} if schema is None else schema),
        semantics=ProcessEventSemanticsSpec(),
    )


def wake_type(
    name: str,
    *,
    when: ProcessValueSelector | None = None,
    input: ProcessValueSelector,
    dedupe_key: ProcessWakeDedupeKey | None = None,
) -> ProcessEventType:
    spec = (
        ProcessWakeSpec(when=when, input=input)
        if dedupe_key is None
        else ProcessWakeSpec(when=when, input=input, dedupe_key=dedupe_key)
    )
    return ProcessEventType(
        name=name, payload_schema=LashSchema.any(), semantics=ProcessEventSemanticsSpec(wake=spec)
    )


def wake(name: str) -> ProcessEventType:
    """``wake(name)``: when present("/wake_input"), input pointer("/wake_input")."""
    return wake_type(name, when=SelPresent("/wake_input"), input=SelPointer("/wake_input"))


def terminal_type(
    name: str, state: ProcessTerminalState, await_output: ProcessValueSelector | None
) -> ProcessEventType:
    return ProcessEventType(
        name=name,
        payload_schema=LashSchema.any(),
        semantics=ProcessEventSemanticsSpec(
            terminal=ProcessTerminalSpec(state=state, await_output=await_output)
        ),
    )
