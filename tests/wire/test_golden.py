"""Golden vectors: our JSON equals lash's serde JSON byte for byte (§15).

Each vector is written by hand from serde's rules for the Rust type (field
declaration order; ``rename_all = "snake_case"``; ``skip_serializing_if``
omitting ``None``; ``#[serde(default)]`` fields always written; maps from
``serde_json::Value`` sorted by key). Every vector is also decoded and
re-encoded, which must give the same bytes back.
"""

from __future__ import annotations

from typing import Any

import pytest

from lash_streams.model import (
    AbandonEvidence,
    AbandonRequest,
    AbandonWriter,
    AwaitAbandoned,
    AwaitCancelled,
    AwaitFailure,
    AwaitSuccess,
    CausalEffect,
    CausalProcess,
    CausalSessionNode,
    ControlFinish,
    ControlSwitchAgentFrame,
    DedupeConst,
    DedupeEventIdentity,
    DedupeSelector,
    InputEngine,
    InputExternal,
    LashSchema,
    LeaseAcquired,
    LeaseBusy,
    LeaseOwnerIdentity,
    LivenessLocalProcess,
    LivenessOpaque,
    OriginatorSession,
    OutcomeCancelled,
    OutcomeFailure,
    OutcomeSuccess,
    ProcessAwaitOutput,
    ProcessEvent,
    ProcessEventAppendRequest,
    ProcessEventAppendResult,
    ProcessEventSemantics,
    ProcessEventSemanticsSpec,
    ProcessEventType,
    ProcessExternalRef,
    ProcessHandleDescriptor,
    ProcessHandleGrant,
    ProcessIdentity,
    ProcessLease,
    ProcessLeaseClaimOutcome,
    ProcessProvenance,
    ProcessPruneReport,
    ProcessRecord,
    ProcessRegistration,
    ProcessSessionDeleteReport,
    ProcessStarted,
    ProcessStatus,
    ProcessTerminalSemantics,
    ProcessTerminalSpec,
    ProcessTerminalState,
    ProcessValueSelector,
    ProcessWake,
    ProcessWakeDedupeKey,
    ProcessWakeDelivery,
    ProcessWakeSpec,
    RecoveryDisposition,
    RuntimeEffectKind,
    RuntimeInvocation,
    RuntimeReplay,
    RuntimeScope,
    SelConst,
    SelPayload,
    SelPointer,
    SelPresent,
    SelTemplate,
    SessionScope,
    StatusCompleted,
    StatusRunning,
    SubjectEffect,
    SubjectProcessEvent,
    SystemTime,
    ToolCallOutput,
    ToolCancellation,
    ToolFailure,
    ToolFailureClass,
    ToolFailureSource,
    WaitSignal,
    WaitState,
    decode,
    default_process_event_types,
    encode,
    process_event_invocation,
)

OPAQUE = LeaseOwnerIdentity(owner_id="w1", incarnation_id="w1:1", liveness=LivenessOpaque())
OPAQUE_JSON = '{"owner_id":"w1","incarnation_id":"w1:1","liveness":{"kind":"opaque"}}'
LEASE = ProcessLease(
    schema_version=2,
    process_id="p",
    owner=OPAQUE,
    lease_token="tok",
    fencing_token=3,
    claimed_at_epoch_ms=10,
    expires_at_epoch_ms=20,
)
LEASE_JSON = (
    '{"schema_version":2,"process_id":"p","owner":' + OPAQUE_JSON + ',"lease_token":"tok",'
    '"fencing_token":3,"claimed_at_epoch_ms":10,"expires_at_epoch_ms":20}'
)
INVOCATION = process_event_invocation(
    "proc-provenance", 1, "producer.custom_wake", "custom-wake:build-failed"
)
INVOCATION_JSON = (
    '{"scope":{"session_id":"runtime"},"subject":{"type":"process_event","process_id":'
    '"proc-provenance","sequence":1,"event_type":"producer.custom_wake"},"caused_by":'
    '{"type":"process","process_id":"proc-provenance"},"replay":{"key":"custom-wake:build-failed"}}'
)

# (value, type, exact serde JSON)
VECTORS: list[tuple[Any, Any, str]] = [
    # unit variants of a snake_case enum
    (ProcessTerminalState.COMPLETED, ProcessTerminalState, '"completed"'),
    (RecoveryDisposition.EXTERNALLY_OWNED, RecoveryDisposition, '"externally_owned"'),
    (AbandonWriter.RECONCILED_REQUEST, AbandonWriter, '"reconciled_request"'),
    # externally tagged enum: unit variant as a string, newtype variants as one-key maps
    (SelPayload(), ProcessValueSelector, '"payload"'),
    (SelPointer("/a/b"), ProcessValueSelector, '{"pointer":"/a/b"}'),
    (
        SelConst({"z": 1, "a": [True, None]}),
        ProcessValueSelector,
        '{"const":{"a":[true,null],"z":1}}',
    ),
    (SelPresent("/x"), ProcessValueSelector, '{"present":"/x"}'),
    # externally tagged struct variant; BTreeMap fields sorted; default {} still written
    (
        SelTemplate("{b} {a}", {"b": SelPointer("/b"), "a": SelPayload()}),
        ProcessValueSelector,
        '{"template":{"template":"{b} {a}","fields":{"a":"payload","b":{"pointer":"/b"}}}}',
    ),
    (SelTemplate("t"), ProcessValueSelector, '{"template":{"template":"t","fields":{}}}'),
    (DedupeEventIdentity(), ProcessWakeDedupeKey, '"event_identity"'),
    (DedupeConst("c"), ProcessWakeDedupeKey, '{"const":"c"}'),
    (DedupeSelector(SelPointer("/d")), ProcessWakeDedupeKey, '{"selector":{"pointer":"/d"}}'),
    # skip_serializing_if on `when`, #[serde(default)] dedupe_key always written
    (
        ProcessWakeSpec(input=SelPointer("/w")),
        ProcessWakeSpec,
        '{"input":{"pointer":"/w"},"dedupe_key":"event_identity"}',
    ),
    # internally tagged ("type") with optional fields skipped
    (AwaitSuccess(value=None), ProcessAwaitOutput, '{"type":"success","value":null}'),
    (
        AwaitFailure(
            class_=ToolFailureClass.EXECUTION, code="process_failed", message="m", raw={"k": 1}
        ),
        ProcessAwaitOutput,
        '{"type":"failure","class":"execution","code":"process_failed","message":"m","raw":{"k":1}}',
    ),
    (AwaitCancelled(message="stop"), ProcessAwaitOutput, '{"type":"cancelled","message":"stop"}'),
    # Box<AbandonEvidence> is inline; owner skipped when absent
    (
        AwaitAbandoned(evidence=AbandonEvidence(writer=AbandonWriter.SWEEP, epoch_ms=5)),
        ProcessAwaitOutput,
        '{"type":"abandoned","evidence":{"writer":"sweep","epoch_ms":5}}',
    ),
    (
        AwaitAbandoned(
            evidence=AbandonEvidence(writer=AbandonWriter.OWNER_DRAIN, owner=OPAQUE, epoch_ms=1),
            control=ControlFinish(value=1),
        ),
        ProcessAwaitOutput,
        '{"type":"abandoned","evidence":{"writer":"owner_drain","owner":'
        + OPAQUE_JSON
        + ',"epoch_ms":1},"control":{"type":"finish","value":1}}',
    ),
    # internally tagged by "state"
    (StatusRunning(), ProcessStatus, '{"state":"running"}'),
    (
        StatusCompleted(await_output=AwaitSuccess(value=1)),
        ProcessStatus,
        '{"state":"completed","await_output":{"type":"success","value":1}}',
    ),
    # internally tagged by "kind"; liveness default written
    (OPAQUE, LeaseOwnerIdentity, OPAQUE_JSON),
    (
        LeaseOwnerIdentity(
            owner_id="a",
            incarnation_id="b",
            liveness=LivenessLocalProcess(host_id="h", boot_id="bt", pid=7, process_start="99"),
        ),
        LeaseOwnerIdentity,
        '{"owner_id":"a","incarnation_id":"b","liveness":{"kind":"local_process","host_id":"h",'
        '"boot_id":"bt","pid":7,"process_start":"99"}}',
    ),
    (
        WaitState(kind=WaitSignal(name="r", event_type="signal.r", key="k", ordinal=1), since_ms=9),
        WaitState,
        '{"kind":{"kind":"signal","name":"r","event_type":"signal.r","key":"k","ordinal":1},"since_ms":9}',
    ),
    # externally tagged with Rust variant names (no rename_all)
    (LeaseAcquired(LEASE), ProcessLeaseClaimOutcome, '{"Acquired":' + LEASE_JSON + "}"),
    (LeaseBusy(LEASE), ProcessLeaseClaimOutcome, '{"Busy":{"holder":' + LEASE_JSON + "}}"),
    # adjacently tagged ToolCallOutcome
    (
        ToolCallOutput(outcome=OutcomeSuccess({"b": 2, "a": 1})),
        ToolCallOutput,
        '{"outcome":{"status":"success","payload":{"a":1,"b":2}}}',
    ),
    (
        ToolCallOutput(
            outcome=OutcomeFailure(ToolFailure.tool(ToolFailureClass.EXTERNAL, "c", "m")),
            control=ControlSwitchAgentFrame(frame_id="f"),
        ),
        ToolCallOutput,
        '{"outcome":{"status":"failure","payload":{"class":"external","code":"c","message":"m",'
        '"source":"tool","retry":{"type":"never"}}},"control":{"type":"switch_agent_frame","frame_id":"f"}}',
    ),
    (
        ToolCallOutput(outcome=OutcomeCancelled(ToolCancellation.runtime("x"))),
        ToolCallOutput,
        '{"outcome":{"status":"cancelled","payload":{"message":"x","source":"cancellation"}}}',
    ),
    # RuntimeInvocation as EV-5 stamps it; transparent ids are plain strings
    (INVOCATION, RuntimeInvocation, INVOCATION_JSON),
    (
        RuntimeInvocation(
            scope=RuntimeScope(session_id="s", turn_id="t", turn_index=0, protocol_iteration=2),
            subject=SubjectEffect(effect_id="e", kind=RuntimeEffectKind.TOOL_ATTEMPT),
            caused_by=CausalEffect(session_id="s", effect_id="e0"),
        ),
        RuntimeInvocation,
        '{"scope":{"session_id":"s","turn_id":"t","turn_index":0,"protocol_iteration":2},'
        '"subject":{"type":"effect","effect_id":"e","kind":"tool_attempt"},'
        '"caused_by":{"type":"effect","session_id":"s","effect_id":"e0"}}',
    ),
    (SessionScope(session_id="s"), SessionScope, '{"session_id":"s"}'),
    (
        SessionScope(session_id="s", agent_frame_id="f"),
        SessionScope,
        '{"session_id":"s","agent_frame_id":"f"}',
    ),
    (
        ProcessEventType(
            name="job.failed",
            payload_schema=LashSchema(schema={"type": "object"}),
            semantics=ProcessEventSemanticsSpec(
                terminal=ProcessTerminalSpec(
                    state=ProcessTerminalState.FAILED, await_output=SelPointer("/error")
                )
            ),
        ),
        ProcessEventType,
        '{"name":"job.failed","payload_schema":{"schema":{"type":"object"}},"semantics":'
        '{"terminal":{"state":"failed","await_output":{"pointer":"/error"}}}}',
    ),
    (
        ProcessEvent(
            process_id="proc-provenance",
            sequence=1,
            event_type="producer.custom_wake",
            payload={"wake_input": "custom wake: build failed", "line": "build failed"},
            invocation=INVOCATION,
            semantics=ProcessEventSemantics(
                wake=ProcessWake(input="custom wake: build failed", dedupe_key="proc-provenance:1")
            ),
            occurred_at=SystemTime.from_ms(1_700_000_000_123),
        ),
        ProcessEvent,
        '{"process_id":"proc-provenance","sequence":1,"event_type":"producer.custom_wake",'
        '"payload":{"line":"build failed","wake_input":"custom wake: build failed"},'
        '"invocation":'
        + INVOCATION_JSON
        + ',"semantics":{"wake":{"input":"custom wake: build failed",'
        '"dedupe_key":"proc-provenance:1"}},"occurred_at":{"secs_since_epoch":1700000000,'
        '"nanos_since_epoch":123000000}}',
    ),
    (
        ProcessWakeDelivery(
            wake_id="wake:46cb",
            target_session_id="target-session",
            target_scope_id="session:target-session/frame:target-frame",
            process_id="proc-provenance",
            sequence=1,
            event_type="producer.custom_wake",
            event_invocation=INVOCATION,
            process_caused_by=CausalSessionNode(
                session_id="target-session", node_id="trigger:button"
            ),
            dedupe_key="proc-provenance:1",
            input="custom wake: build failed",
            created_at_ms=1_700_000_000_123,
        ),
        ProcessWakeDelivery,
        '{"wake_id":"wake:46cb","target_session_id":"target-session","target_scope_id":'
        '"session:target-session/frame:target-frame","process_id":"proc-provenance","sequence":1,'
        '"event_type":"producer.custom_wake","event_invocation":' + INVOCATION_JSON + ","
        '"process_caused_by":{"type":"session_node","session_id":"target-session","node_id":'
        '"trigger:button"},"dedupe_key":"proc-provenance:1","input":"custom wake: build failed",'
        '"created_at_ms":1700000000123}',
    ),
    (
        ProcessEventAppendRequest(event_type="x", payload=None, replay=RuntimeReplay(key="k")),
        ProcessEventAppendRequest,
        '{"event_type":"x","payload":null,"replay":{"key":"k"}}',
    ),
    (
        ProcessStarted(owner=OPAQUE, started_at_ms=111),
        ProcessStarted,
        '{"owner":' + OPAQUE_JSON + ',"started_at_ms":111}',
    ),
    (
        AbandonRequest(requested_by="op", requested_at_ms=3),
        AbandonRequest,
        '{"requested_by":"op","requested_at_ms":3}',
    ),
    (
        ProcessExternalRef(backend="b", id="i", metadata={"q": 1}),
        ProcessExternalRef,
        '{"backend":"b","id":"i","metadata":{"q":1}}',
    ),
    (
        ProcessHandleGrant(session_id="s", process_id="p", descriptor=ProcessHandleDescriptor()),
        ProcessHandleGrant,
        '{"session_id":"s","process_id":"p","descriptor":{}}',
    ),
    (
        ProcessPruneReport(pruned_processes=1, pruned_events=3),
        ProcessPruneReport,
        '{"pruned_processes":1,"pruned_events":3}',
    ),
    (
        ProcessSessionDeleteReport(
            session_id="d",
            revoked_handle_count=3,
            deleted_wake_count=0,
            orphaned_process_ids=["sole"],
            preserved_process_ids=[],
        ),
        ProcessSessionDeleteReport,
        '{"session_id":"d","revoked_handle_count":3,"deleted_wake_count":0,'
        '"orphaned_process_ids":["sole"],"preserved_process_ids":[]}',
    ),
]


@pytest.mark.parametrize(("value", "tp", "expected"), VECTORS, ids=lambda v: type(v).__name__)
def test_golden_vector(value: Any, tp: Any, expected: str) -> None:
    assert encode(value).decode() == expected
    decoded = decode(expected, tp)
    assert decoded == value
    assert encode(decoded).decode() == expected


def test_reg_fixture_registration_matches_serde():
    """The conformance fixture reg(id): Arc<ProcessInput> inline, defaults merged."""
    reg = ProcessRegistration(
        id="p",
        input=InputExternal(metadata=None),
        disposition=RecoveryDisposition.EXTERNALLY_OWNED,
        identity=ProcessIdentity(kind="external"),
        event_types=default_process_event_types()[:1],
        provenance=ProcessProvenance.host(),
    )
    expected = (
        '{"id":"p","input":{"type":"external","metadata":null},"disposition":"externally_owned",'
        '"identity":{"kind":"external"},"event_types":[{"name":"process.cancel_requested",'
        '"payload_schema":{"schema":{}},"semantics":{}}],"provenance":{"originator":{"type":"host"}}}'
    )
    assert encode(reg).decode() == expected
    assert encode(decode(expected, ProcessRegistration)).decode() == expected


def test_defaults_on_decode_are_written_back():
    """#[serde(default)] without skip: missing on input, present on output."""
    record = decode(
        '{"id":"x","registration_hash":"h","input":{"type":"engine","kind":"k"},'
        '"disposition":"rerunnable","identity":{"kind":"k"},"provenance":{"originator":'
        '{"type":"session","scope":{"session_id":"s"}}}}',
        ProcessRecord,
    )
    assert record.status == StatusRunning() and record.event_types == []
    assert record.input == InputEngine(kind="k", payload=None)
    assert record.provenance.originator == OriginatorSession(scope=SessionScope(session_id="s"))
    assert encode(record).decode() == (
        '{"id":"x","registration_hash":"h","input":{"type":"engine","kind":"k","payload":null},'
        '"disposition":"rerunnable","identity":{"kind":"k"},"event_types":[],"provenance":'
        '{"originator":{"type":"session","scope":{"session_id":"s"}}},"created_at_ms":0,'
        '"updated_at_ms":0,"status":{"state":"running"}}'
    )
    delivery = decode(
        '{"wake_id":"w","target_session_id":"s","target_scope_id":"session:s","process_id":"p",'
        '"sequence":1,"dedupe_key":"d","input":"i","created_at_ms":1}',
        ProcessWakeDelivery,
    )
    assert delivery.event_type == "process.wake"
    assert delivery.event_invocation.subject == SubjectProcessEvent(
        process_id="", sequence=0, event_type="process.wake"
    )
    assert '"event_type":"process.wake"' in encode(delivery).decode()
    ident = decode('{"owner_id":"a","incarnation_id":"b"}', LeaseOwnerIdentity)
    assert (
        encode(ident).decode()
        == '{"owner_id":"a","incarnation_id":"b","liveness":{"kind":"opaque"}}'
    )


def test_full_record_with_every_optional_field():
    record = ProcessRecord(
        id="p",
        registration_hash="h",
        input=InputExternal(metadata={"label": "L"}),
        disposition=RecoveryDisposition.OWNER_BOUND,
        identity=ProcessIdentity(kind="external", label="L", definition={"d": 1}),
        event_types=[],
        provenance=ProcessProvenance(
            originator=OriginatorSession(scope=SessionScope(session_id="o")),
            caused_by=CausalProcess(process_id="parent"),
        ),
        env_ref="process-env:sha256:00",
        wake_target=SessionScope(session_id="t", agent_frame_id="f"),
        created_at_ms=1,
        updated_at_ms=2,
        external_ref=ProcessExternalRef(backend="b", id="i"),
        first_started=ProcessStarted(owner=OPAQUE, started_at_ms=3),
        abandon_request=AbandonRequest(requested_by="op", requested_at_ms=4, reason="r"),
        wait=WaitState(
            kind=WaitSignal(name="n", event_type="signal.n", key="k", ordinal=1), since_ms=5
        ),
        status=StatusCompleted(await_output=AwaitSuccess(value="v")),
    )
    expected = (
        '{"id":"p","registration_hash":"h","input":{"type":"external","metadata":{"label":"L"}},'
        '"disposition":"owner_bound","identity":{"kind":"external","label":"L","definition":{"d":1}},'
        '"event_types":[],"provenance":{"originator":{"type":"session","scope":{"session_id":"o"}},'
        '"caused_by":{"type":"process","process_id":"parent"}},"env_ref":"process-env:sha256:00",'
        '"wake_target":{"session_id":"t","agent_frame_id":"f"},"created_at_ms":1,"updated_at_ms":2,'
        '"external_ref":{"backend":"b","id":"i"},"first_started":{"owner":'
        + OPAQUE_JSON
        + ',"started_at_ms":3},"abandon_request":{"requested_by":"op","requested_at_ms":4,'
        '"reason":"r"},"wait":{"kind":{"kind":"signal","name":"n","event_type":"signal.n","key":"k",'
        '"ordinal":1},"since_ms":5},"status":{"state":"completed","await_output":{"type":"success",'
        '"value":"v"}}}'
    )
    assert encode(record).decode() == expected
    assert decode(expected, ProcessRecord) == record


def test_append_result_and_control_chars():
    """serde_json escapes control characters, keeps '/', DEL and non-ASCII raw."""
    payload = {"s": 'a\u0001b\n\t/\u007fé🚀"\\'}
    assert encode(payload).decode() == '{"s":"a\\u0001b\\n\\t/\u007fé🚀\\"\\\\"}'
    assert encode([1.0, 1e20, 0.1, -0.0]).decode() == "[1.0,1e20,0.1,-0.0]"


def test_tool_call_input_bytes_are_kept_exactly():
    """PreparedToolCall is carried as its exact serde bytes (struct order kept)."""
    raw = (
        '{"id":"p","input":{"type":"tool_call","call":{"zeta":1,"alpha":2}},"disposition":'
        '"rerunnable","identity":{"kind":"tool","label":"t"},"event_types":[],"provenance":'
        '{"originator":{"type":"host"}},"env_ref":"e"}'
    )
    assert encode(decode(raw, ProcessRegistration)).decode() == raw


def test_append_result_omits_absent_delivery():
    event = ProcessEvent(
        process_id="p",
        sequence=1,
        event_type="x",
        payload={},
        invocation=process_event_invocation("p", 1, "x", None),
        semantics=ProcessEventSemantics(
            terminal=ProcessTerminalSemantics(
                state=ProcessTerminalState.COMPLETED, await_output=AwaitSuccess(value={})
            )
        ),
        occurred_at=SystemTime.from_ms(0),
    )
    text = encode(ProcessEventAppendResult(event=event)).decode()
    assert "wake_delivery" not in text
    assert (
        '"invocation":{"scope":{"session_id":"runtime"},"subject":{"type":"process_event",' in text
    )
    assert '"caused_by":{"type":"process","process_id":"p"}}' in text
    assert ToolFailureSource.TOOL.value == "tool"
