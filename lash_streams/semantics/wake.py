"""Wake ids, deliveries and wake turn text (WK-5..WK-7, WK-10)."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from lash_streams.model import ProcessEvent, ProcessRecord, ProcessWakeDelivery, SessionScope
from lash_streams.model._codec import encode
from lash_streams.semantics.selectors import resolve_pointer, stringify


def wake_id(target_scope_id: str, dedupe_key: str) -> str:
    """WK-6: ``"wake:" + sha256(canonical([target_scope_id, dedupe_key]))``.
    Two strings: their canonical JSON is msgspec's as is (no number in it
    for lash's float text to change), so the general encoder is skipped."""
    digest = hashlib.sha256(_STRINGS.encode([target_scope_id, dedupe_key])).hexdigest()
    return "wake:" + digest


_STRINGS = msgspec.json.Encoder()


def resolve_wake_target(
    record: ProcessRecord, request_scope: SessionScope | None
) -> SessionScope | None:
    """WK-5: the request's scope, else the record's current wake target."""
    return request_scope if request_scope is not None else record.wake_target


def build_wake_delivery(
    record: ProcessRecord, event: ProcessEvent, target: SessionScope | None
) -> ProcessWakeDelivery | None:
    """WK-7/WK-8: a delivery iff the event materialized a wake and a target
    resolved. Works for inserts and replays alike (EV-6): everything comes from
    the event as stored, and ``created_at_ms`` is its ``occurred_at``."""
    wake = event.semantics.wake
    if wake is None or target is None:
        return None
    scope_id = target.id()
    return ProcessWakeDelivery(
        wake_id=wake_id(scope_id, wake.dedupe_key),
        target_session_id=target.session_id,
        target_scope_id=scope_id,
        process_id=event.process_id,
        sequence=event.sequence,
        event_type=event.event_type,
        event_invocation=event.invocation,
        process_caused_by=record.provenance.caused_by,
        dedupe_key=wake.dedupe_key,
        input=wake.input,
        created_at_ms=event.occurred_at_ms,
    )


def wake_turn_text(delivery: ProcessWakeDelivery) -> str:
    """WK-10: the model-visible text of a wake turn."""
    return (
        "Background process wake\n"
        f"Process: {delivery.process_id}\n"
        f"Event: {delivery.event_type} #{delivery.sequence}\n"
        f"Wake input:\n{delivery.input}"
    )


def wake_input_from_event_payload(payload: Any) -> str:
    """lash's helper for free-form wake payloads: ``/text``, else ``/value``
    (stringified), else the whole payload as JSON -- a string payload included,
    which therefore comes out quoted."""
    for pointer in ("/text", "/value"):
        found, value = resolve_pointer(payload, pointer)
        if found:
            return stringify(value)
    return encode(payload).decode("utf-8")
