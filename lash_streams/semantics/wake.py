"""Wake ids, deliveries and turn text (WK-5..WK-7, WK-10)."""

from __future__ import annotations

from lash_streams.model import ProcessEvent, ProcessRecord, ProcessWakeDelivery, SessionScope
from lash_streams.semantics.canonical import stable_sha256_hex


def wake_id(target_scope_id: str, dedupe_key: str) -> str:
    """WK-6: depends only on the target scope id and the dedupe key."""
    return "wake:" + stable_sha256_hex([target_scope_id, dedupe_key])


def build_wake_delivery(
    record: ProcessRecord, event: ProcessEvent, target: SessionScope | None
) -> ProcessWakeDelivery | None:
    """WK-7/WK-8: a delivery iff the event materialized a wake and a target resolved."""
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
        f"Background process wake\nProcess: {delivery.process_id}\n"
        f"Event: {delivery.event_type} #{delivery.sequence}\nWake input:\n{delivery.input}"
    )
