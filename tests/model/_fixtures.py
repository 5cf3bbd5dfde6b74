"""Shared golden fixtures: the conformance ``reg(id)``, the S-EV-02 event and
delivery, and a lease, each with its hand-written serde JSON."""

from __future__ import annotations

from lash_streams.model import (
    CausalProcess,
    CausalSessionNode,
    LeaseOwnerIdentity,
    ProcessEvent,
    ProcessEventSemantics,
    ProcessLease,
    ProcessRegistration,
    ProcessWake,
    ProcessWakeDelivery,
    RuntimeInvocation,
    RuntimeReplay,
    RuntimeScope,
    SubjectProcessEvent,
)


def _plain(name: str) -> str:
    return f'{{"name":"{name}","payload_schema":{{"schema":{{}}}},"semantics":{{}}}}'


def _terminal(name: str, state: str) -> str:
    return (
        f'{{"name":"{name}","payload_schema":{{"schema":{{}}}},"semantics":{{"terminal":'
        f'{{"state":"{state}","await_output":{{"pointer":"/await_output"}}}}}}}}'
    )


#: ET-2: the seven default event types, in lash's order.
DEFAULT_TYPES_JSON = (
    "["
    + ",".join(
        [
            _plain("process.cancel_requested"),
            _plain("process.waiting"),
            _plain("process.resumed"),
            _terminal("process.completed", "completed"),
            _terminal("process.failed", "failed"),
            _terminal("process.cancelled", "cancelled"),
            _terminal("process.abandoned", "abandoned"),
        ]
    )
    + "]"
)


def reg(process_id: str) -> ProcessRegistration:
    """Conformance fixture ``reg(id)``: external{metadata: null}, externally_owned,
    host provenance, the seven default types, no wake target, no env ref."""
    return ProcessRegistration.external(process_id)


def reg_json(process_id: str) -> str:
    return (
        f'{{"id":"{process_id}","input":{{"type":"external","metadata":null}},'
        f'"disposition":"externally_owned","identity":{{"kind":"external"}},'
        f'"event_types":{DEFAULT_TYPES_JSON},"provenance":{{"originator":{{"type":"host"}}}}}}'
    )


# S-EV-02: `producer.custom_wake` appended with replay key `custom-wake:build-failed`.
S_EV_02_INVOCATION = RuntimeInvocation(
    scope=RuntimeScope(session_id="runtime"),
    subject=SubjectProcessEvent(
        process_id="proc-provenance", sequence=1, event_type="producer.custom_wake"
    ),
    caused_by=CausalProcess(process_id="proc-provenance"),
    replay=RuntimeReplay(key="custom-wake:build-failed"),
)
S_EV_02_INVOCATION_JSON = (
    '{"scope":{"session_id":"runtime"},"subject":{"type":"process_event",'
    '"process_id":"proc-provenance","sequence":1,"event_type":"producer.custom_wake"},'
    '"caused_by":{"type":"process","process_id":"proc-provenance"},'
    '"replay":{"key":"custom-wake:build-failed"}}'
)
S_EV_02_EVENT = ProcessEvent.new(
    process_id="proc-provenance",
    sequence=1,
    event_type="producer.custom_wake",
    payload={"wake_input": "custom wake: build failed", "line": "build failed"},
    invocation=S_EV_02_INVOCATION,
    semantics=ProcessEventSemantics(
        wake=ProcessWake(input="custom wake: build failed", dedupe_key="proc-provenance:1")
    ),
    occurred_at_ms=1_700_000_000_123,
)
S_EV_02_EVENT_JSON = (
    '{"process_id":"proc-provenance","sequence":1,"event_type":"producer.custom_wake",'
    '"payload":{"line":"build failed","wake_input":"custom wake: build failed"},'
    f'"invocation":{S_EV_02_INVOCATION_JSON},'
    '"semantics":{"wake":{"input":"custom wake: build failed","dedupe_key":"proc-provenance:1"}},'
    '"occurred_at":{"secs_since_epoch":1700000000,"nanos_since_epoch":123000000}}'
)
S_EV_02_DELIVERY = ProcessWakeDelivery(
    wake_id="wake:46cb109adef9ba0513a94be3a54c1a0adf5e05fcbbe38b46ba57e14f546b1e00",
    target_session_id="target-session",
    target_scope_id="session:target-session/frame:target-frame",
    process_id="proc-provenance",
    sequence=1,
    event_type="producer.custom_wake",
    event_invocation=S_EV_02_INVOCATION,
    process_caused_by=CausalSessionNode(session_id="target-session", node_id="trigger:button"),
    dedupe_key="proc-provenance:1",
    input="custom wake: build failed",
    created_at_ms=1_700_000_000_123,
)
S_EV_02_DELIVERY_JSON = (
    '{"wake_id":"wake:46cb109adef9ba0513a94be3a54c1a0adf5e05fcbbe38b46ba57e14f546b1e00",'
    '"target_session_id":"target-session",'
    '"target_scope_id":"session:target-session/frame:target-frame",'
    '"process_id":"proc-provenance","sequence":1,"event_type":"producer.custom_wake",'
    f'"event_invocation":{S_EV_02_INVOCATION_JSON},'
    '"process_caused_by":{"type":"session_node","session_id":"target-session",'
    '"node_id":"trigger:button"},'
    '"dedupe_key":"proc-provenance:1","input":"custom wake: build failed",'
    '"created_at_ms":1700000000123}'
)

LEASE = ProcessLease(
    schema_version=2,
    process_id="p",
    owner=LeaseOwnerIdentity.opaque("w1", "w1:incarnation"),
    lease_token="tok",
    fencing_token=3,
    claimed_at_epoch_ms=10,
    expires_at_epoch_ms=20,
)
LEASE_JSON = (
    '{"schema_version":2,"process_id":"p","owner":{"owner_id":"w1",'
    '"incarnation_id":"w1:incarnation","liveness":{"kind":"opaque"}},"lease_token":"tok",'
    '"fencing_token":3,"claimed_at_epoch_ms":10,"expires_at_epoch_ms":20}'
)
