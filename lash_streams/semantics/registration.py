"""Registration preparation (RG-2, RG-3, RG-4) and storable ids."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import msgspec

from lash_streams.errors import InvalidId, InvalidRegistration, LashStreamsError
from lash_streams.ids import id_bytes
from lash_streams.model import (
    InputEngine,
    InputToolCall,
    ProcessRegistration,
    ProcessTerminalState,
    SessionScope,
    default_process_event_types,
)
from lash_streams.model._codec import decode
from lash_streams.semantics.canonical import canonical_json
from lash_streams.semantics.inputs import (
    json_problem,
    mistyped_field,
    remember_clean,
    require,
    seen_clean,
)
from lash_streams.semantics.schema import check_schema

#: Longest storable id in UTF-8 bytes. lash has no limit; Redis keys embed ids,
#: so a bound keeps every key (and the cluster hash tag) reasonably small.

# Rust's `str::trim` strips Unicode White_Space; Python's `str.strip` also
# strips U+001C..U+001F, which would make "\x1c" an empty id here but not in lash.
_WHITE_SPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _blank(text: str) -> bool:
    """``text.trim().is_empty()`` in Rust."""
    # A first character that is not white space settles it (the usual case).
    return not text or (text[0] in _WHITE_SPACE and all(ch in _WHITE_SPACE for ch in text))


def validate_storable_id(kind: str, value: object) -> bytes:
    """The UTF-8 bytes of an id that can be stored, else ``InvalidId`` (one
    rule for the whole package: :func:`lash_streams.ids.id_bytes`)."""
    return id_bytes(kind, value)  # type: ignore[arg-type]


def validate_scope(kind: str, scope: SessionScope) -> None:
    """A scope whose parts and scope id (``session:<sid>/frame:<fid>``, the
    wake stream's key) can all be stored, else ``InvalidId``."""
    require(scope, SessionScope, kind)
    validate_storable_id(f"{kind} session id", scope.session_id)
    if scope.agent_frame_id is not None:
        validate_storable_id(f"{kind} agent frame id", scope.agent_frame_id)
    validate_storable_id(f"{kind} scope id", scope.id())


def with_default_event_types(registration: ProcessRegistration) -> ProcessRegistration:
    """RG-2: declared types first, in their order; then each default (ET-2
    order) whose name is not declared, so a declaration overrides a default."""
    declared = {event_type.name for event_type in registration.event_types}
    missing = [t for t in default_process_event_types() if t.name not in declared]
    if not missing:
        return registration
    return msgspec.structs.replace(registration, event_types=[*registration.event_types, *missing])


def validate_registration(registration: ProcessRegistration) -> None:
    """RG-3 in lash's order and with lash's messages."""
    pid = registration.id
    if not isinstance(pid, str) or _blank(pid):
        raise InvalidRegistration("process id must be a non-empty string")
    if isinstance(registration.input, (InputToolCall, InputEngine)):
        if registration.env_ref is None:
            raise InvalidRegistration(
                f"process `{pid}` requires a captured execution env", process_id=pid
            )
    elif registration.env_ref is not None:
        raise InvalidRegistration(
            f"process `{pid}` must not capture an execution env for this input kind",
            process_id=pid,
        )
    seen: set[str] = set()
    for event_type in registration.event_types:
        name = event_type.name
        if _blank(name):
            raise InvalidRegistration(
                f"process `{pid}` declares an empty event type", process_id=pid
            )
        if name in seen:
            raise InvalidRegistration(
                f"process `{pid}` declares duplicate event type `{name}`", process_id=pid
            )
        seen.add(name)
        terminal = event_type.semantics.terminal
        if (
            terminal is not None
            and terminal.state is not ProcessTerminalState.COMPLETED
            and terminal.await_output is None
        ):
            raise InvalidRegistration(
                f"terminal event `{name}` for process `{pid}` must declare await output",
                process_id=pid,
            )


def _check_reads_back(prepared: ProcessRegistration, prepared_json: bytes) -> None:
    """``InvalidRegistration`` unless the stored JSON decodes as a registration
    holding the same types at every place (stored, a value that does not read
    back would break every read of the record, and of the namespace)."""
    checked = prepared
    if prepared.event_types and all(
        seen_clean(_READS_BACK, event_type) for event_type in prepared.event_types
    ):
        # Each event type already read back as itself (frozen, by identity: a
        # fleet registers with the same objects): only the rest is decoded.
        checked = msgspec.structs.replace(prepared, event_types=[])
        prepared_json = canonical_json(checked)
    try:
        decoded = decode(prepared_json, ProcessRegistration)
    except LashStreamsError as err:
        raise InvalidRegistration(
            f"process `{prepared.id}` registration would not read back: {err}",
            process_id=prepared.id,
        ) from None
    wrong = mistyped_field(checked, decoded)
    if wrong is not None:  # e.g. disposition="rerunnable": a str, not the enum
        raise InvalidRegistration(
            f"process `{prepared.id}` registration: the value at `{wrong}` is not of the "
            "type lash reads back there",
            process_id=prepared.id,
        )
    if checked is prepared:
        for event_type in prepared.event_types:
            remember_clean(_READS_BACK, event_type)


#: Event types (frozen values, by identity) whose JSON read back as themselves.
_READS_BACK: OrderedDict[int, Any] = OrderedDict()


def prepare_registration(registration: ProcessRegistration) -> tuple[ProcessRegistration, str]:
    """RG-2..RG-4: the prepared registration and its hash (see
    :func:`prepare_registration_json`)."""
    prepared, _, digest = prepare_registration_json(registration)
    return prepared, digest


def prepare_registration_json(
    registration: ProcessRegistration,
) -> tuple[ProcessRegistration, bytes, str]:
    """RG-2, RG-3, then the storable-id checks this adapter adds, and the
    registration hash over the prepared value (RG-4). The hash digests the
    serde JSON, so it is sensitive to ``event_types`` order exactly as lash's."""
    require(registration, ProcessRegistration, "registration")
    prepared = with_default_event_types(registration)
    validate_registration(prepared)
    validate_storable_id("process id", prepared.id)
    if prepared.wake_target is not None:
        validate_scope("wake target", prepared.wake_target)
    problem = json_problem(prepared)
    if problem is not None:
        raise InvalidRegistration(
            f"process `{prepared.id}` registration cannot be encoded: it holds {problem}",
            process_id=prepared.id,
        )
    try:
        prepared_json = canonical_json(prepared)
    except (UnicodeEncodeError, msgspec.EncodeError) as err:
        # lash's registration is all Rust Strings: valid UTF-8 by construction.
        raise InvalidRegistration(
            f"process `{prepared.id}` registration cannot be encoded: {err}",
            process_id=prepared.id,
        ) from None
    _check_reads_back(prepared, prepared_json)
    for event_type in prepared.event_types:
        check_schema(event_type.payload_schema, event_type.name, prepared.id)
        # Each name keys the per-type index: one that cannot be stored would
        # register, then refuse every append of that type.
        try:
            validate_storable_id("event type", event_type.name)
        except InvalidId as err:
            raise InvalidRegistration(
                f"process `{prepared.id}` declares an event type that cannot be stored: {err}",
                process_id=prepared.id,
            ) from None
    return prepared, prepared_json, hashlib.sha256(prepared_json).hexdigest()
