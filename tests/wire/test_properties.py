"""Property tests: any valid value round-trips through lash JSON unchanged, and
decoding rejects malformed input with a typed, clear error."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lash_streams.errors import DecodeError
from lash_streams.model import (
    AbandonEvidence,
    AbandonWriter,
    AwaitAbandoned,
    AwaitCancelled,
    AwaitFailure,
    AwaitSuccess,
    DedupeConst,
    DedupeEventIdentity,
    DedupeSelector,
    LashSchema,
    LeaseAcquired,
    LeaseBusy,
    LeaseOwnerIdentity,
    LivenessLocalProcess,
    LivenessOpaque,
    ProcessAwaitOutput,
    ProcessEvent,
    ProcessEventSemantics,
    ProcessEventSemanticsSpec,
    ProcessEventType,
    ProcessLease,
    ProcessLeaseClaimOutcome,
    ProcessTerminalSemantics,
    ProcessTerminalSpec,
    ProcessTerminalState,
    ProcessWake,
    ProcessWakeSpec,
    SelConst,
    SelPayload,
    SelPointer,
    SelPresent,
    SelTemplate,
    SystemTime,
    ToolFailureClass,
    decode,
    encode,
    process_event_invocation,
)

text = st.text(max_size=12)
json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
u64 = st.integers(min_value=0, max_value=2**63)
u32 = st.integers(min_value=0, max_value=2**32 - 1)  # lash's pid is a u32

selectors = st.recursive(
    st.just(SelPayload())
    | st.builds(SelPointer, text)
    | st.builds(SelConst, json_value)
    | st.builds(SelPresent, text),
    lambda inner: st.builds(SelTemplate, text, st.dictionaries(text, inner, max_size=3)),
    max_leaves=6,
)
dedupe = (
    st.just(DedupeEventIdentity())
    | st.builds(DedupeConst, text)
    | st.builds(DedupeSelector, selectors)
)
liveness = st.just(LivenessOpaque()) | st.builds(
    LivenessLocalProcess, host_id=text, boot_id=text, pid=u32, process_start=text
)
owners = st.builds(LeaseOwnerIdentity, owner_id=text, incarnation_id=text, liveness=liveness)
classes = st.sampled_from(list(ToolFailureClass))
await_outputs = st.one_of(
    st.builds(AwaitSuccess, value=json_value),
    st.builds(AwaitFailure, class_=classes, code=text, message=text, raw=json_value),
    st.builds(AwaitCancelled, message=text, raw=json_value),
    st.builds(
        AwaitAbandoned,
        evidence=st.builds(
            AbandonEvidence,
            writer=st.sampled_from(list(AbandonWriter)),
            owner=st.none() | owners,
            epoch_ms=u64,
        ),
    ),
)
event_types = st.builds(
    ProcessEventType,
    name=text,
    payload_schema=st.builds(LashSchema, schema=json_value),
    semantics=st.builds(
        ProcessEventSemanticsSpec,
        terminal=st.none()
        | st.builds(
            ProcessTerminalSpec,
            state=st.sampled_from(list(ProcessTerminalState)),
            await_output=st.none() | selectors,
        ),
        wake=st.none()
        | st.builds(
            ProcessWakeSpec, when=st.none() | selectors, input=selectors, dedupe_key=dedupe
        ),
    ),
)
leases = st.builds(
    ProcessLease,
    schema_version=st.just(2),
    process_id=text,
    owner=owners,
    lease_token=text,
    fencing_token=u64,
    claimed_at_epoch_ms=u64,
    expires_at_epoch_ms=u64,
)
outcomes = st.builds(LeaseAcquired, leases) | st.builds(LeaseBusy, leases)


@st.composite
def events(draw: Any) -> ProcessEvent:
    pid, seq, event_type = draw(text), draw(u64), draw(text)
    replay = draw(st.none() | text)
    terminal = draw(
        st.none()
        | st.builds(
            ProcessTerminalSemantics,
            state=st.sampled_from(list(ProcessTerminalState)),
            await_output=await_outputs,
        )
    )
    wake = draw(st.none() | st.builds(ProcessWake, input=text, dedupe_key=text))
    return ProcessEvent(
        process_id=pid,
        sequence=seq,
        event_type=event_type,
        payload=draw(json_value),
        invocation=process_event_invocation(pid, seq, event_type, replay),
        semantics=ProcessEventSemantics(terminal=terminal, wake=wake),
        occurred_at=SystemTime.from_ms(draw(u64)),
    )


CASES = [
    (await_outputs, ProcessAwaitOutput),
    (event_types, ProcessEventType),
    (outcomes, ProcessLeaseClaimOutcome),
    (events(), ProcessEvent),
]


@pytest.mark.parametrize(("strategy", "tp"), CASES, ids=lambda c: getattr(c, "__name__", "s"))
def test_round_trip(strategy: Any, tp: Any) -> None:
    @settings(max_examples=150, deadline=None)
    @given(strategy)
    def check(value: Any) -> None:
        first = encode(value)
        back = decode(first, tp)
        assert back == value
        assert encode(back) == first

    check()


@pytest.mark.parametrize(
    ("data", "tp", "needle"),
    [
        (b"{", ProcessEvent, "ProcessEvent"),
        (b'{"type":"success"}', ProcessAwaitOutput, "value"),
        (b'{"type":"nope","value":1}', ProcessAwaitOutput, "nope"),
        (b'{"owner_id":1,"incarnation_id":"x"}', LeaseOwnerIdentity, "owner_id"),
        (b'{"Granted":{}}', ProcessLeaseClaimOutcome, "Acquired"),
        (
            b'{"name":"x","payload_schema":{"schema":{}},"semantics":{"wake":{"input":{"ptr":"/"}}}}',
            ProcessEventType,
            "ptr",
        ),
        (
            b'{"name":"x","payload_schema":{"schema":{}},"semantics":{"terminal":{"state":"done"}}}',
            ProcessEventType,
            "done",
        ),
        (b"[1,2]", LeaseOwnerIdentity, "LeaseOwnerIdentity"),
        (b"\xff\xfe", ProcessEvent, "ProcessEvent"),
    ],
)
def test_malformed_json_is_a_typed_error(data: bytes, tp: Any, needle: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(data, tp)
    assert needle in str(info.value)
