"""Wake deliveries and wake text (WK-5..WK-7, WK-10), ported from lash's
process/tests.rs wake tests."""

from __future__ import annotations

from typing import Any

import pytest

from lash_streams.model import (
    CausalProcess,
    CausalSessionNode,
    ProcessWakeDelivery,
    RuntimeInvocation,
    RuntimeScope,
    SessionScope,
    SubjectProcessEvent,
)
from lash_streams.semantics import wake_input_from_event_payload, wake_turn_text


def _delivery(caused_by: Any = None) -> ProcessWakeDelivery:
    return ProcessWakeDelivery(
        wake_id="wake:abc",
        target_session_id="target",
        target_scope_id=SessionScope(session_id="target").id(),
        process_id="process-1",
        sequence=7,
        event_type="process.ready",
        event_invocation=RuntimeInvocation(
            scope=RuntimeScope(session_id="target"),
            subject=SubjectProcessEvent(
                process_id="process-1", sequence=7, event_type="process.ready"
            ),
            caused_by=CausalProcess(process_id="process-1"),
        ),
        process_caused_by=caused_by,
        dedupe_key="process-1:7",
        input="line one\nline two",
        created_at_ms=123,
    )


def test_wk_10_wake_turn_text() -> None:
    """WK-10 (tests.rs process_wake_turn_text_frames_process_id_sequence_and_input)."""
    assert wake_turn_text(_delivery()) == (
        "Background process wake\nProcess: process-1\nEvent: process.ready #7\n"
        "Wake input:\nline one\nline two"
    )


def test_wk_7_delivery_carries_invocation_and_cause() -> None:
    """WK-7 (tests.rs process_wake_delivery_carries_event_invocation_and_process_cause)."""
    cause = CausalSessionNode(session_id="target", node_id="trigger:button")
    delivery = _delivery(cause)
    assert delivery.process_caused_by == cause
    assert delivery.event_invocation.subject == SubjectProcessEvent(
        process_id="process-1", sequence=7, event_type="process.ready"
    )


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        ({"text": "ready", "value": "ignored"}, "ready"),
        ({"value": {"status": "ready"}}, '{"status":"ready"}'),
        ({"unexpected": True}, '{"unexpected":true}'),
        (42, "42"),
        ("plain", '"plain"'),
    ],
)
def test_wake_input_from_event_payload(payload: Any, text: str) -> None:
    """tests.rs process_wake_input_from_event_payload_*: /text, else /value,
    else the payload as JSON (a string payload comes out quoted)."""
    assert wake_input_from_event_payload(payload) == text
