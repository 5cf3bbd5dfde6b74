"""Golden vectors for tool outputs, invocations, selectors and events (see test_golden)."""

from __future__ import annotations

from typing import Any

from lash_streams.model import (
    AbandonEvidence,
    AbandonWriter,
    AwaitAbandoned,
    AwaitCancelled,
    AwaitFailure,
    AwaitSuccess,
    CausalEffect,
    CausalProcess,
    CausalProcessEvent,
    CausalRef,
    CausalSessionNode,
    CausalToolCall,
    CausalTriggerOccurrence,
    CausalTurn,
    ControlFail,
    ControlFinish,
    ControlSwitchAgentFrame,
    DedupeConst,
    DedupeEventIdentity,
    DedupeSelector,
    LashSchema,
    LeaseOwnerIdentity,
    LivenessOpaque,
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
    ProcessTerminalSemantics,
    ProcessTerminalSpec,
    ProcessTerminalState,
    ProcessValueSelector,
    ProcessWake,
    ProcessWakeDedupeKey,
    ProcessWakeDelivery,
    ProcessWakeSpec,
    RetryExhausted,
    RetryNever,
    RetrySafe,
    RuntimeEffectKind,
    RuntimeInvocation,
    RuntimeReplay,
    RuntimeScope,
    RuntimeSubject,
    SelConst,
    SelPayload,
    SelPointer,
    SelPresent,
    SelTemplate,
    SessionScope,
    SubjectEffect,
    SubjectProcess,
    SubjectProcessEvent,
    SubjectSessionNode,
    SubjectTriggerOccurrence,
    SystemTime,
    ToolCallOutput,
    ToolCancellation,
    ToolControl,
    ToolFailure,
    ToolFailureClass,
    ToolFailureSource,
    ToolRetryDisposition,
    default_process_event_types,
)
from tests.model._fixtures import (
    DEFAULT_TYPES_JSON,
    LEASE,
    S_EV_02_DELIVERY,
    S_EV_02_DELIVERY_JSON,
    S_EV_02_EVENT,
    S_EV_02_EVENT_JSON,
    S_EV_02_INVOCATION,
    S_EV_02_INVOCATION_JSON,
)

V = tuple[str, Any, Any, str]  # (id, value, decode type, golden JSON)

TOOL: list[V] = [
    ("retry-never-unit", RetryNever(), ToolRetryDisposition, '{"type":"never"}'),
    ("retry-safe-skip", RetrySafe(), ToolRetryDisposition, '{"type":"safe"}'),
    ("retry-safe", RetrySafe(after_ms=5), ToolRetryDisposition, '{"type":"safe","after_ms":5}'),
    (
        "retry-exhausted",
        RetryExhausted(attempts=3),
        ToolRetryDisposition,
        '{"type":"exhausted","attempts":3}',
    ),
    (
        "tool-failure-raw-sorted",
        ToolFailure(
            class_=ToolFailureClass.RESOURCE_LIMIT,
            code="c",
            message="m",
            source=ToolFailureSource.PLUGIN,
            retry=RetrySafe(after_ms=1),
            raw={"b": [1, 2.5], "a": None},
        ),
        ToolFailure,
        '{"class":"resource_limit","code":"c","message":"m","source":"plugin",'
        '"retry":{"type":"safe","after_ms":1},"raw":{"a":null,"b":[1,2.5]}}',
    ),
    (
        "tool-cancellation",
        ToolCancellation.runtime("stop"),
        ToolCancellation,
        '{"message":"stop","source":"cancellation"}',
    ),
    (
        "control-switch-skip-empty-vec",
        ControlSwitchAgentFrame(frame_id="f"),
        ToolControl,
        '{"type":"switch_agent_frame","frame_id":"f"}',
    ),
    (
        "control-switch-full",
        ControlSwitchAgentFrame(frame_id="f", initial_nodes=[{"z": 1, "a": 2}], task="t"),
        ToolControl,
        '{"type":"switch_agent_frame","frame_id":"f","initial_nodes":[{"a":2,"z":1}],"task":"t"}',
    ),
    (
        "control-finish",
        ControlFinish(value=[1, "x"]),
        ToolControl,
        '{"type":"finish","value":[1,"x"]}',
    ),
    (
        "control-fail",
        ControlFail(failure=ToolFailure.tool(ToolFailureClass.INTERNAL, "c", "m")),
        ToolControl,
        '{"type":"fail","failure":{"class":"internal","code":"c","message":"m","source":"tool",'
        '"retry":{"type":"never"}}}',
    ),
    (
        "outcome-success-adjacent",
        ToolCallOutput(outcome=OutcomeSuccess({"y": 1, "x": 2})),
        ToolCallOutput,
        '{"outcome":{"status":"success","payload":{"x":2,"y":1}}}',
    ),
    (
        "outcome-success-null-payload",
        ToolCallOutput(outcome=OutcomeSuccess(None)),
        ToolCallOutput,
        '{"outcome":{"status":"success","payload":null}}',
    ),
    (
        "outcome-failure-with-control",
        ToolCallOutput(
            outcome=OutcomeFailure(ToolFailure.tool(ToolFailureClass.EXTERNAL, "e", "boom")),
            control=ControlFinish(value=None),
        ),
        ToolCallOutput,
        '{"outcome":{"status":"failure","payload":{"class":"external","code":"e","message":"boom",'
        '"source":"tool","retry":{"type":"never"}}},"control":{"type":"finish","value":null}}',
    ),
    (
        "outcome-cancelled",
        ToolCallOutput(
            outcome=OutcomeCancelled(
                ToolCancellation(message="x", source=ToolFailureSource.RUNTIME, raw="why")
            )
        ),
        ToolCallOutput,
        '{"outcome":{"status":"cancelled","payload":{"message":"x","source":"runtime","raw":"why"}}}',
    ),
]

INVOCATION: list[V] = [
    ("scope-skip", RuntimeScope(session_id="runtime"), RuntimeScope, '{"session_id":"runtime"}'),
    (
        "scope-full",
        RuntimeScope(session_id="s", turn_id="t", turn_index=0, protocol_iteration=2),
        RuntimeScope,
        '{"session_id":"s","turn_id":"t","turn_index":0,"protocol_iteration":2}',
    ),
    ("replay", RuntimeReplay(key="k"), RuntimeReplay, '{"key":"k"}'),
    (
        "subject-effect",
        SubjectEffect(effect_id="e", kind=RuntimeEffectKind.SYNC_EXECUTION_ENVIRONMENT),
        RuntimeSubject,
        '{"type":"effect","effect_id":"e","kind":"sync_execution_environment"}',
    ),
    (
        "subject-process",
        SubjectProcess(process_id="p"),
        RuntimeSubject,
        '{"type":"process","process_id":"p"}',
    ),
    (
        "subject-process-event",
        SubjectProcessEvent(process_id="p", sequence=7, event_type="t"),
        RuntimeSubject,
        '{"type":"process_event","process_id":"p","sequence":7,"event_type":"t"}',
    ),
    (
        "subject-trigger",
        SubjectTriggerOccurrence(occurrence_id="o"),
        RuntimeSubject,
        '{"type":"trigger_occurrence","occurrence_id":"o"}',
    ),
    (
        "subject-node",
        SubjectSessionNode(node_id="n"),
        RuntimeSubject,
        '{"type":"session_node","node_id":"n"}',
    ),
    (
        "causal-turn",
        CausalTurn(session_id="s", turn_id="t"),
        CausalRef,
        '{"type":"turn","session_id":"s","turn_id":"t"}',
    ),
    (
        "causal-effect-skip",
        CausalEffect(session_id="s", effect_id="e"),
        CausalRef,
        '{"type":"effect","session_id":"s","effect_id":"e"}',
    ),
    (
        "causal-effect-full",
        CausalEffect(session_id="s", turn_id="t", effect_id="e"),
        CausalRef,
        '{"type":"effect","session_id":"s","turn_id":"t","effect_id":"e"}',
    ),
    (
        "causal-tool-call",
        CausalToolCall(session_id="s", call_id="c"),
        CausalRef,
        '{"type":"tool_call","session_id":"s","call_id":"c"}',
    ),
    (
        "causal-process",
        CausalProcess(process_id="p"),
        CausalRef,
        '{"type":"process","process_id":"p"}',
    ),
    (
        "causal-process-event",
        CausalProcessEvent(process_id="p", sequence=2),
        CausalRef,
        '{"type":"process_event","process_id":"p","sequence":2}',
    ),
    (
        "causal-trigger",
        CausalTriggerOccurrence(occurrence_id="o"),
        CausalRef,
        '{"type":"trigger_occurrence","occurrence_id":"o"}',
    ),
    (
        "causal-node",
        CausalSessionNode(session_id="s", node_id="n"),
        CausalRef,
        '{"type":"session_node","session_id":"s","node_id":"n"}',
    ),
    ("session-scope", SessionScope(session_id="s"), SessionScope, '{"session_id":"s"}'),
    (
        "session-scope-frame",
        SessionScope(session_id="s", agent_frame_id="f"),
        SessionScope,
        '{"session_id":"s","agent_frame_id":"f"}',
    ),
    ("invocation-s-ev-02", S_EV_02_INVOCATION, RuntimeInvocation, S_EV_02_INVOCATION_JSON),
    (
        "invocation-effect-subject-no-replay",
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
]

SELECTORS: list[V] = [
    ("sel-payload-unit", SelPayload(), ProcessValueSelector, '"payload"'),
    ("sel-pointer-newtype", SelPointer("/x"), ProcessValueSelector, '{"pointer":"/x"}'),
    (
        "sel-const-value-sorted",
        SelConst({"z": 1, "a": [True, None]}),
        ProcessValueSelector,
        '{"const":{"a":[true,null],"z":1}}',
    ),
    ("sel-present", SelPresent("/p"), ProcessValueSelector, '{"present":"/p"}'),
    (
        "sel-template-struct-variant",
        SelTemplate("{b}-{a}", {"b": SelPointer("/b"), "a": SelPayload()}),
        ProcessValueSelector,
        '{"template":{"template":"{b}-{a}","fields":{"a":"payload","b":{"pointer":"/b"}}}}',
    ),
    (
        "sel-template-empty-fields",
        SelTemplate("t"),
        ProcessValueSelector,
        '{"template":{"template":"t","fields":{}}}',
    ),
    ("dedupe-unit", DedupeEventIdentity(), ProcessWakeDedupeKey, '"event_identity"'),
    (
        "dedupe-selector",
        DedupeSelector(SelPointer("/k")),
        ProcessWakeDedupeKey,
        '{"selector":{"pointer":"/k"}}',
    ),
    ("dedupe-const", DedupeConst("c"), ProcessWakeDedupeKey, '{"const":"c"}'),
]

EVENTS: list[V] = [
    # unit variants of snake_case enums, on their own
    ("enum-terminal-state", ProcessTerminalState.COMPLETED, ProcessTerminalState, '"completed"'),
    (
        "enum-abandon-writer",
        AbandonWriter.RECONCILED_REQUEST,
        AbandonWriter,
        '"reconciled_request"',
    ),
    (
        "terminal-spec-skip",
        ProcessTerminalSpec(state=ProcessTerminalState.COMPLETED),
        ProcessTerminalSpec,
        '{"state":"completed"}',
    ),
    (
        "wake-spec-default-dedupe-written",
        ProcessWakeSpec(input=SelPayload()),
        ProcessWakeSpec,
        '{"input":"payload","dedupe_key":"event_identity"}',
    ),
    ("semantics-spec-empty", ProcessEventSemanticsSpec(), ProcessEventSemanticsSpec, "{}"),
    (
        "event-type-terminal-schema",
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
    ("schema-any", LashSchema.any(), LashSchema, '{"schema":{}}'),
    (
        "default-event-types",
        default_process_event_types(),
        list[ProcessEventType],
        DEFAULT_TYPES_JSON,
    ),
    (
        "await-success",
        AwaitSuccess(value={"k": 1}),
        ProcessAwaitOutput,
        '{"type":"success","value":{"k":1}}',
    ),
    (
        "await-success-null-written",
        AwaitSuccess(value=None),
        ProcessAwaitOutput,
        '{"type":"success","value":null}',
    ),
    (
        "await-failure-class-rename",
        AwaitFailure(
            class_=ToolFailureClass.EXECUTION, code="process_failed", message="m", raw=[1]
        ),
        ProcessAwaitOutput,
        '{"type":"failure","class":"execution","code":"process_failed","message":"m","raw":[1]}',
    ),
    (
        "await-cancelled-control",
        AwaitCancelled(message="m", control=ControlSwitchAgentFrame(frame_id="f")),
        ProcessAwaitOutput,
        '{"type":"cancelled","message":"m","control":{"type":"switch_agent_frame","frame_id":"f"}}',
    ),
    (
        "await-abandoned-box-inline",
        AwaitAbandoned(
            evidence=AbandonEvidence(
                writer=AbandonWriter.RECONCILED_REQUEST, owner=LEASE.owner, epoch_ms=9
            )
        ),
        ProcessAwaitOutput,
        '{"type":"abandoned","evidence":{"writer":"reconciled_request","owner":{"owner_id":"w1",'
        '"incarnation_id":"w1:incarnation","liveness":{"kind":"opaque"}},"epoch_ms":9}}',
    ),
    (
        "await-abandoned-owner-and-control",
        AwaitAbandoned(
            evidence=AbandonEvidence(
                writer=AbandonWriter.OWNER_DRAIN,
                owner=LeaseOwnerIdentity(
                    owner_id="w1", incarnation_id="w1:1", liveness=LivenessOpaque()
                ),
                epoch_ms=1,
            ),
            control=ControlFinish(value=1),
        ),
        ProcessAwaitOutput,
        '{"type":"abandoned","evidence":{"writer":"owner_drain","owner":{"owner_id":"w1",'
        '"incarnation_id":"w1:1","liveness":{"kind":"opaque"}},"epoch_ms":1},'
        '"control":{"type":"finish","value":1}}',
    ),
    (
        "abandon-evidence-skip-owner",
        AbandonEvidence(writer=AbandonWriter.OWNER_DRAIN, epoch_ms=0),
        AbandonEvidence,
        '{"writer":"owner_drain","epoch_ms":0}',
    ),
    (
        "terminal-semantics",
        ProcessTerminalSemantics(
            state=ProcessTerminalState.FAILED, await_output=AwaitSuccess(value=1)
        ),
        ProcessTerminalSemantics,
        '{"state":"failed","await_output":{"type":"success","value":1}}',
    ),
    ("wake", ProcessWake(input="i", dedupe_key="d"), ProcessWake, '{"input":"i","dedupe_key":"d"}'),
    ("semantics-empty", ProcessEventSemantics(), ProcessEventSemantics, "{}"),
    (
        "system-time",
        SystemTime.from_ms(1_700_000_000_123),
        SystemTime,
        '{"secs_since_epoch":1700000000,"nanos_since_epoch":123000000}',
    ),
    ("event-s-ev-02", S_EV_02_EVENT, ProcessEvent, S_EV_02_EVENT_JSON),
    (
        "append-request-new",
        ProcessEventAppendRequest.new("producer.line", {"line": "one"}),
        ProcessEventAppendRequest,
        '{"event_type":"producer.line","payload":{"line":"one"}}',
    ),
    (
        "append-request-full",
        ProcessEventAppendRequest.new("x", None)
        .with_replay_key("k")
        .with_wake_target_scope(SessionScope(session_id="root")),
        ProcessEventAppendRequest,
        '{"event_type":"x","payload":null,"replay":{"key":"k"},"wake_target_scope":{"session_id":"root"}}',
    ),
    ("delivery-s-ev-02", S_EV_02_DELIVERY, ProcessWakeDelivery, S_EV_02_DELIVERY_JSON),
    (
        "append-result-skip-delivery",
        ProcessEventAppendResult(event=S_EV_02_EVENT),
        ProcessEventAppendResult,
        '{"event":' + S_EV_02_EVENT_JSON + "}",
    ),
    (
        "append-result-delivery",
        ProcessEventAppendResult(event=S_EV_02_EVENT, wake_delivery=S_EV_02_DELIVERY),
        ProcessEventAppendResult,
        '{"event":' + S_EV_02_EVENT_JSON + ',"wake_delivery":' + S_EV_02_DELIVERY_JSON + "}",
    ),
]
