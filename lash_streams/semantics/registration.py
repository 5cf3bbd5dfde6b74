"""Registration preparation (RG-2, RG-3, RG-4)."""

from __future__ import annotations

import msgspec

from lash_streams.errors import InvalidRegistration
from lash_streams.ids import id_bytes
from lash_streams.model import (
    InputEngine,
    InputToolCall,
    ProcessRegistration,
    ProcessTerminalState,
    default_process_event_types,
)
from lash_streams.semantics.canonical import stable_sha256_hex


def with_default_event_types(registration: ProcessRegistration) -> ProcessRegistration:
    """RG-2: declared types first, then every missing default in ET-2 order."""
    declared = {t.name for t in registration.event_types}
    missing = [t for t in default_process_event_types() if t.name not in declared]
    if not missing:
        return registration
    return msgspec.structs.replace(registration, event_types=[*registration.event_types, *missing])


def validate_registration(registration: ProcessRegistration) -> None:
    """RG-3, with lash's messages."""
    pid = registration.id
    if not pid.strip():
        raise InvalidRegistration("process id must be a non-empty string")
    id_bytes("process id", pid)
    needs_env = isinstance(registration.input, (InputToolCall, InputEngine))
    if needs_env and registration.env_ref is None:
        raise InvalidRegistration(
            f"process `{pid}` requires a captured execution env", process_id=pid
        )
    if not needs_env and registration.env_ref is not None:
        raise InvalidRegistration(
            f"process `{pid}` must not capture an execution env for this input kind",
            process_id=pid,
        )
    seen: set[str] = set()
    for event_type in registration.event_types:
        if not event_type.name.strip():
            raise InvalidRegistration(
                f"process `{pid}` declares an empty event type", process_id=pid
            )
        if event_type.name in seen:
            raise InvalidRegistration(
                f"process `{pid}` declares duplicate event type `{event_type.name}`",
                process_id=pid,
            )
        seen.add(event_type.name)
        terminal = event_type.semantics.terminal
        if (
            terminal is not None
            and terminal.state is not ProcessTerminalState.COMPLETED
            and terminal.await_output is None
        ):
            raise InvalidRegistration(
                f"terminal event `{event_type.name}` for process `{pid}` must declare await output",
                process_id=pid,
            )
    if registration.wake_target is not None:
        id_bytes("wake target session id", registration.wake_target.session_id)


def prepare_registration(registration: ProcessRegistration) -> tuple[ProcessRegistration, str]:
    """RG-2 then RG-3, and the registration hash over the prepared value (RG-4)."""
    prepared = with_default_event_types(registration)
    validate_registration(prepared)
    return prepared, stable_sha256_hex(prepared)
