"""lash's process semantics as pure functions (no I/O): canonical hashing,
registration preparation, payload schemas, selectors, terminal and wake
materialization, append planning, signals and the await/tool output mapping."""

from lash_streams.ids import MAX_ID_BYTES
from lash_streams.semantics.append import AppendPlan, complete_request, plan_append, repair_status
from lash_streams.semantics.canonical import canonical_json, payload_hash, stable_sha256_hex
from lash_streams.semantics.materialize import (
    materialize_semantics,
    materialize_terminal,
    materialize_wake,
    parse_await_output,
)
from lash_streams.semantics.registration import (
    prepare_registration,
    validate_registration,
    validate_storable_id,
    with_default_event_types,
)
from lash_streams.semantics.schema import validate_payload
from lash_streams.semantics.selectors import is_truthy, resolve_pointer, select_value, stringify
from lash_streams.semantics.signals import (
    CANCEL_REQUESTED,
    cancel_requested_request,
    signal_event_type,
    signal_name_from_event_type,
    signal_replay_key,
    signal_wait_key,
    validate_signal_name,
)
from lash_streams.semantics.tool_output import (
    abandoned_message,
    await_output_from_tool_output,
    await_output_to_tool_output,
    observed_error,
)
from lash_streams.semantics.wake import (
    build_wake_delivery,
    wake_id,
    wake_input_from_event_payload,
    wake_turn_text,
)

__all__ = [
    "CANCEL_REQUESTED",
    "MAX_ID_BYTES",
    "AppendPlan",
    "abandoned_message",
    "await_output_from_tool_output",
    "await_output_to_tool_output",
    "build_wake_delivery",
    "cancel_requested_request",
    "canonical_json",
    "complete_request",
    "is_truthy",
    "materialize_semantics",
    "materialize_terminal",
    "materialize_wake",
    "observed_error",
    "parse_await_output",
    "payload_hash",
    "plan_append",
    "prepare_registration",
    "repair_status",
    "resolve_pointer",
    "select_value",
    "signal_event_type",
    "signal_name_from_event_type",
    "signal_replay_key",
    "signal_wait_key",
    "stable_sha256_hex",
    "stringify",
    "validate_payload",
    "validate_registration",
    "validate_signal_name",
    "validate_storable_id",
    "wake_id",
    "wake_input_from_event_payload",
    "wake_turn_text",
    "with_default_event_types",
]
