"""Properties: every valid value round-trips encode -> decode -> encode unchanged, and
malformed input always fails as ``errors.DecodeError`` naming the type and JSON path
(EV-5, WK-7, LS-1, AO-1, §15)."""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lash_streams.errors import DecodeError
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
    CausalProcessEvent,
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
    InputEngine,
    InputExternal,
    InputToolCall,
    LashSchema,
    LeaseAcquired,
    LeaseBusy,
    LeaseOwnerIdentity,
    LivenessLocalProcess,
    LivenessOpaque,
    OriginatorHost,
    OriginatorSession,
    OutcomeCancelled,
    OutcomeFailure,
    OutcomeSuccess,
    ProcessAwaitOutput,
    ProcessEvent,
    ProcessEventAppendResult,
    ProcessEventSemantics,
    ProcessEventSemanticsSpec,
    ProcessEventType,
    ProcessExternalRef,
    ProcessIdentity,
    ProcessLease,
    ProcessLeaseClaimOutcome,
    ProcessProvenance,
    ProcessRecord,
    ProcessRegistration,
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
    RetryExhausted,
    RetryNever,
    RetrySafe,
    RuntimeInvocation,
    RuntimeReplay,
    RuntimeScope,
    SelConst,
    SelPayload,
    SelPointer,
    SelPresent,
    SelTemplate,
    SessionScope,
    StatusAbandoned,
    StatusCancelled,
    StatusCompleted,
    StatusFailed,
    StatusRunning,
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
    encode,
)

text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
u64 = st.integers(0, 2**64 - 1)
u32 = st.integers(0, 2**32 - 1)
opt = st.none().__or__
json_value: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
# ToolValue positions: plain JSON (the reserved key is exercised in test_codec).
tool_value = json_value.filter(lambda v: "$lash_tool_value" not in encode(v).decode())

scope = st.builds(SessionScope, session_id=text, agent_frame_id=opt(text))
causal = st.one_of(
    st.builds(CausalTurn, session_id=text, turn_id=text),
    st.builds(CausalEffect, session_id=text, turn_id=opt(text), effect_id=text),
    st.builds(CausalToolCall, session_id=text, call_id=text),
    st.builds(CausalProcess, process_id=text),
    st.builds(CausalProcessEvent, process_id=text, sequence=u64),
    st.builds(CausalTriggerOccurrence, occurrence_id=text),
    st.builds(CausalSessionNode, session_id=text, node_id=text),
)
invocation = st.builds(
    RuntimeInvocation,
    scope=st.builds(
        RuntimeScope,
        session_id=text,
        turn_id=opt(text),
        turn_index=opt(u64),
        protocol_iteration=opt(u64),
    ),
    subject=st.builds(SubjectProcessEvent, process_id=text, sequence=u64, event_type=text),
    caused_by=opt(causal),
    replay=opt(st.builds(RuntimeReplay, key=text)),
)
selector: st.SearchStrategy[ProcessValueSelector] = st.deferred(
    lambda: st.one_of(
        st.just(SelPayload()),
        st.builds(SelPointer, text),
        st.builds(SelConst, json_value),
        st.builds(SelPresent, text),
        st.builds(SelTemplate, text, st.dictionaries(text, selector, max_size=2)),
    )
)
dedupe = st.one_of(
    st.just(DedupeEventIdentity()),
    st.builds(DedupeSelector, selector),
    st.builds(DedupeConst, text),
)
liveness = st.just(LivenessOpaque()) | st.builds(
    LivenessLocalProcess, host_id=text, boot_id=text, pid=u32, process_start=text
)
owner = st.builds(LeaseOwnerIdentity, owner_id=text, incarnation_id=text, liveness=liveness)
failure = st.builds(
    ToolFailure,
    class_=st.sampled_from(ToolFailureClass),
    code=text,
    message=text,
    source=st.sampled_from(ToolFailureSource),
    retry=st.just(RetryNever())
    | st.builds(RetrySafe, after_ms=opt(u64))
    | st.builds(RetryExhausted, attempts=u32),
    raw=opt(tool_value),
)
control = opt(
    st.one_of(
        st.builds(
            ControlSwitchAgentFrame,
            frame_id=text,
            initial_nodes=st.lists(json_value, max_size=2),
            task=opt(text),
        ),
        st.builds(ControlFinish, value=tool_value),
        st.builds(ControlFail, failure=failure),
    )
)
await_output: st.SearchStrategy[Any] = st.one_of(
    st.builds(AwaitSuccess, value=json_value, control=control),
    st.builds(
        AwaitFailure,
        class_=st.sampled_from(ToolFailureClass),
        code=text,
        message=text,
        raw=opt(json_value),
        control=control,
    ),
    st.builds(AwaitCancelled, message=text, raw=opt(json_value), control=control),
    st.builds(
        AwaitAbandoned,
        evidence=st.builds(
            AbandonEvidence, writer=st.sampled_from(AbandonWriter), owner=opt(owner), epoch_ms=u64
        ),
        control=control,
    ),
)
tool_output = st.builds(
    ToolCallOutput,
    outcome=st.one_of(
        st.builds(OutcomeSuccess, tool_value),
        st.builds(OutcomeFailure, failure),
        st.builds(
            OutcomeCancelled,
            st.builds(
                ToolCancellation,
                message=text,
                source=st.sampled_from(ToolFailureSource),
                raw=opt(tool_value),
            ),
        ),
    ),
    control=control,
)
event_type = st.builds(
    ProcessEventType,
    name=text,
    payload_schema=st.builds(LashSchema, schema=json_value),
    semantics=st.builds(
        ProcessEventSemanticsSpec,
        terminal=opt(
            st.builds(
                ProcessTerminalSpec,
                state=st.sampled_from(ProcessTerminalState),
                await_output=opt(selector),
            )
        ),
        wake=opt(st.builds(ProcessWakeSpec, when=opt(selector), input=selector, dedupe_key=dedupe)),
    ),
)
event = st.builds(
    ProcessEvent,
    process_id=text,
    sequence=u64,
    event_type=text,
    payload=json_value,
    invocation=invocation,
    semantics=st.builds(
        ProcessEventSemantics,
        terminal=opt(
            st.builds(
                ProcessTerminalSemantics,
                state=st.sampled_from(ProcessTerminalState),
                await_output=await_output,
            )
        ),
        wake=opt(st.builds(ProcessWake, input=text, dedupe_key=text)),
    ),
    occurred_at=st.builds(
        SystemTime,
        secs_since_epoch=st.integers(0, 2**63),
        nanos_since_epoch=st.integers(0, 999_999_999),
    ),
)
delivery = st.builds(
    ProcessWakeDelivery,
    wake_id=text,
    target_session_id=text,
    target_scope_id=text,
    process_id=text,
    sequence=u64,
    event_type=text,
    event_invocation=invocation,
    process_caused_by=opt(causal),
    dedupe_key=text,
    input=text,
    created_at_ms=u64,
)
process_input = st.one_of(
    st.builds(InputExternal, metadata=json_value),
    st.builds(InputEngine, kind=text, payload=json_value),
    st.builds(InputToolCall, call=json_value.map(lambda v: msgspec.Raw(encode(v)))),
)
provenance = st.builds(
    ProcessProvenance,
    originator=st.just(OriginatorHost()) | st.builds(OriginatorSession, scope=scope),
    caused_by=opt(causal),
)
identity = st.builds(ProcessIdentity, kind=text, label=opt(text), definition=opt(json_value))
common: dict[str, Any] = {
    "id": text,
    "input": process_input,
    "disposition": st.sampled_from(RecoveryDisposition),
    "identity": identity,
    "event_types": st.lists(event_type, max_size=2),
    "provenance": provenance,
    "env_ref": opt(text),
    "wake_target": opt(scope),
}
registration = st.builds(ProcessRegistration, **common)
status: st.SearchStrategy[Any] = st.just(StatusRunning()) | st.one_of(
    *(
        st.builds(cls, await_output=await_output)
        for cls in (StatusCompleted, StatusFailed, StatusCancelled, StatusAbandoned)
    )
)
record = st.builds(
    ProcessRecord,
    **common,
    registration_hash=text,
    created_at_ms=u64,
    updated_at_ms=u64,
    external_ref=opt(
        st.builds(ProcessExternalRef, backend=text, id=text, metadata=opt(json_value))
    ),
    first_started=opt(st.builds(ProcessStarted, owner=owner, started_at_ms=u64)),
    abandon_request=opt(
        st.builds(AbandonRequest, requested_by=text, requested_at_ms=u64, reason=opt(text))
    ),
    wait=opt(
        st.builds(
            WaitState,
            kind=st.builds(WaitSignal, name=text, event_type=text, key=text, ordinal=u64),
            since_ms=u64,
        )
    ),
    status=status,
)
lease = st.builds(
    ProcessLease,
    schema_version=st.just(2),
    process_id=text,
    owner=owner,
    lease_token=text,
    fencing_token=u64,
    claimed_at_epoch_ms=u64,
    expires_at_epoch_ms=u64,
)
claim = st.builds(LeaseAcquired, lease) | st.builds(LeaseBusy, lease)

CASES: list[tuple[str, st.SearchStrategy[Any], Any]] = [
    ("event", event, ProcessEvent),
    ("delivery", delivery, ProcessWakeDelivery),
    ("registration", registration, ProcessRegistration),
    ("record", record, ProcessRecord),
    ("lease", lease, ProcessLease),
    ("claim", claim, ProcessLeaseClaimOutcome),
    ("await-output", await_output, ProcessAwaitOutput),
    ("status", status, ProcessStatus),
    ("tool-output", tool_output, ToolCallOutput),
    ("event-type", event_type, ProcessEventType),
]


@pytest.mark.parametrize(("strategy", "tp"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_round_trip(data: st.DataObject, strategy: st.SearchStrategy[Any], tp: Any) -> None:
    """EV-5 / WK-7 / LS-1 / AO-1 / §15: encode -> decode -> encode is the identity on
    bytes, and the decoded value equals the original."""
    value = data.draw(strategy)
    wire = encode(value)
    decoded = decode(wire, tp)
    assert decoded == value
    assert encode(decoded) == wire
    assert decode(wire.decode(), tp) == decoded


BAD: list[tuple[str, bytes, Any, str]] = [
    ("malformed", b'{"key":', RuntimeReplay, "cannot decode RuntimeReplay: "),
    ("not-json", b"nope", ProcessEvent, "cannot decode ProcessEvent: "),
    ("wrong-type", b'{"key":1}', RuntimeReplay, "at `$.key`: Expected `str`, got `int`"),
    ("missing-field", b"{}", RuntimeReplay, "at `$`: Object missing required field `key`"),
    (
        "u64-sign",
        b'{"owner":{"owner_id":"a","incarnation_id":"b"},"started_at_ms":-1}',
        ProcessStarted,
        "at `$.started_at_ms`: Expected `int` >= 0",
    ),
    (
        "u32-overflow",
        b'{"kind":"local_process","host_id":"h","boot_id":"b","pid":4294967296,"process_start":"s"}',
        LivenessLocalProcess,
        "at `$.pid`: Expected `int` <= 4294967295",
    ),
    ("internal-tag", b'{"state":"paused"}', ProcessStatus, "at `$.state`: Invalid value 'paused'"),
    ("internal-tag-missing", b'{"value":1}', ProcessAwaitOutput, "missing required field `type`"),
    (
        # serde requires the tag of a one-variant internally tagged enum too
        "lone-variant-tag-missing",
        b'{"kind":{"name":"n","event_type":"e","key":"k","ordinal":1},"since_ms":1}',
        WaitState,
        "at `$.kind`: Object missing required field `kind`",
    ),
    (
        "internal-variant-field-missing",
        b'{"type":"success"}',
        ProcessAwaitOutput,
        "at `$`: Object missing required field `value`",
    ),
    ("array-for-object", b"[1,2]", LeaseOwnerIdentity, "at `$`: Expected `object`, got `array`"),
    ("invalid-utf8", b"\xff\xfe", ProcessEvent, "cannot decode ProcessEvent: JSON is malformed"),
    (
        "snake-case-enum",
        b'"ExternallyOwned"',
        RecoveryDisposition,
        "Invalid enum value 'ExternallyOwned'",
    ),
    (
        "external-tag",
        b'{"state":"completed","await_output":{"pointr":"/x"}}',
        ProcessTerminalSpec,
        "at `$.await_output`: unknown variant `pointr`, expected one of `payload`",
    ),
    (
        "external-unit-as-newtype",
        b'{"input":"pointer"}',
        ProcessWakeSpec,
        "at `$.input`: invalid type: unit variant",
    ),
    (
        "external-nested-path",
        b'{"input":{"template":{"template":"t","fields":{"a":{"const":1},"b":{"pointer":7}}}}}',
        ProcessWakeSpec,
        "at `$.input.template.fields.b.pointer`: expected `str`, got `int`",
    ),
    (
        "template-null-fields",
        b'{"template":{"template":"t","fields":null}}',
        ProcessValueSelector,
        "fields",
    ),
    (
        "dedupe-const-type",
        b'{"const":1}',
        ProcessWakeDedupeKey,
        "at `$.const`: expected `str`, got `int`",
    ),
    (
        "adjacent-status",
        b'{"outcome":{"status":"ok","payload":1}}',
        ToolCallOutput,
        "unknown tool call outcome status `ok`",
    ),
    (
        "adjacent-missing",
        b'{"outcome":{"status":"success"}}',
        ToolCallOutput,
        "missing field `payload`",
    ),
    (
        "lease-variant",
        b'{"Stolen":{}}',
        ProcessLeaseClaimOutcome,
        "at `$`: unknown variant `Stolen`, expected one of `Acquired`, `Busy`",
    ),
    ("lease-lowercase", b'{"acquired":{}}', ProcessLeaseClaimOutcome, "unknown variant `acquired`"),
    (
        "lease-busy-path",
        b'{"Busy":{"holder":{"schema_version":2}}}',
        ProcessLeaseClaimOutcome,
        "at `$.Busy.holder`: Object missing required field `process_id`",
    ),
    (
        "deep-path",
        b'{"event":{"process_id":"p","sequence":1,"event_type":"t","payload":null,'
        b'"invocation":{"scope":{"session_id":5}}}}',
        ProcessEventAppendResult,
        "at `$.event.invocation.scope.session_id`: Expected `str`, got `int`",
    ),
]


@pytest.mark.parametrize(("data", "tp", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_raises_decode_error(data: bytes, tp: Any, expected: str) -> None:
    """§14 ``decode_error``: never a raw msgspec error; the message names the type and path."""
    with pytest.raises(DecodeError) as caught:
        decode(data, tp)
    message = caught.value.message
    assert message.startswith("cannot decode ")
    assert getattr(tp, "__name__", " | ") in message
    assert expected in message


def test_unknown_fields_are_ignored_like_serde() -> None:
    """None of these types has ``deny_unknown_fields``: extra keys are skipped."""
    assert decode(b'{"input":"i","dedupe_key":"d","extra":[1]}', ProcessWake) == ProcessWake(
        input="i", dedupe_key="d"
    )
    output: Any = ProcessAwaitOutput
    assert decode(b'{"type":"success","value":1,"x":0}', output) == AwaitSuccess(value=1)


@settings(max_examples=300)
@given(st.binary(max_size=40) | json_value.map(encode))
def test_arbitrary_input_never_leaks_other_errors(data: bytes) -> None:
    """Any bytes either decode or raise ``DecodeError`` (never msgspec/ValueError)."""
    types: tuple[Any, ...] = (
        ProcessRecord,
        ProcessWakeSpec,
        ProcessLeaseClaimOutcome,
        ToolCallOutput,
        ProcessStatus,
    )
    for tp in types:
        with contextlib.suppress(DecodeError):
            decode(data, tp)
