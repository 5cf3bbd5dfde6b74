"""Golden vectors: the model's JSON equals lash's serde_json output byte for byte (§15).

Every expected string is written by hand from serde's rules for the Rust type:
struct fields in declaration order; ``rename_all = "snake_case"`` tags; externally
tagged enums (unit variant = bare string, newtype/struct variant = one-key object);
internally tagged enums (``type`` / ``state`` / ``kind`` first); the adjacently
tagged ``ToolCallOutcome``; ``skip_serializing_if`` omitting ``None``/empty;
``#[serde(default)]`` fields still written; ``Box``/``Arc`` inline; transparent
newtypes as bare strings; ``serde_json::Value`` maps with sorted keys. Each vector
is encoded, decoded, and the golden bytes re-encoded unchanged.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from lash_streams.model import (
    AbandonRequest,
    AbandonWriter,
    AwaitFailure,
    AwaitSuccess,
    CausalTriggerOccurrence,
    DedupeEventIdentity,
    InputEngine,
    LeaseOwnerIdentity,
    LivenessLocalProcess,
    OriginatorSession,
    ProcessEvent,
    ProcessEventAppendRequest,
    ProcessEventAppendResult,
    ProcessEventSemantics,
    ProcessExternalRef,
    ProcessIdentity,
    ProcessListFilter,
    ProcessProvenance,
    ProcessRecord,
    ProcessRegistration,
    ProcessStarted,
    ProcessStatusFilter,
    ProcessTerminalSemantics,
    ProcessTerminalState,
    ProcessValueSelector,
    ProcessWakeDedupeKey,
    ProcessWakeDelivery,
    ProcessWakeSpec,
    RecoveryDisposition,
    RuntimeEffectKind,
    RuntimeInvocation,
    RuntimeScope,
    SelPayload,
    SelTemplate,
    SessionScope,
    StatusCancelled,
    StatusCompleted,
    StatusRunning,
    SubjectProcessEvent,
    SystemTime,
    ToolFailureClass,
    ToolFailureSource,
    WaitSignal,
    WaitState,
    canonical_json,
    decode,
    encode,
    is_terminal,
    process_event_invocation,
    status_from_terminal,
    status_label,
    terminal_state_of,
)
from tests.model._fixtures import (
    S_EV_02_DELIVERY,
    S_EV_02_EVENT,
    S_EV_02_INVOCATION,
    reg,
)
from tests.model._vectors import EVENTS, INVOCATION, SELECTORS, TOOL
from tests.model._vectors_process import HOST, LEASES, PROCESS

VECTORS = TOOL + INVOCATION + SELECTORS + EVENTS + PROCESS + LEASES


@pytest.mark.parametrize(
    ("value", "tp", "golden"), [v[1:] for v in VECTORS], ids=[v[0] for v in VECTORS]
)
def test_golden(value: Any, tp: Any, golden: str) -> None:
    """§15 / AO-1 / LS-1 / EV-5 / WK-7: encode == golden; the golden bytes decode to
    an equal value and re-encode unchanged."""
    assert encode(value).decode() == golden
    decoded = decode(golden.encode(), tp)
    assert decoded == value
    assert encode(decoded) == golden.encode()


def test_enum_values_are_snake_case() -> None:
    """AO-1 failure classes; serde ``rename_all = "snake_case"`` on unit-only enums."""
    assert encode(list(ToolFailureClass)) == (
        b'["invalid_request","unavailable","permission_denied","timeout","execution",'
        b'"external","resource_limit","internal"]'
    )
    assert encode(list(ToolFailureSource)) == b'["runtime","tool","plugin","policy","cancellation"]'
    assert encode(list(RecoveryDisposition)) == b'["rerunnable","owner_bound","externally_owned"]'
    assert encode(list(AbandonWriter)) == b'["owner_drain","sweep","reconciled_request"]'
    assert encode(list(ProcessTerminalState)) == b'["completed","failed","cancelled","abandoned"]'
    assert encode(RuntimeEffectKind.LLM_CALL) == b'"llm_call"'


def test_process_record_with_every_optional_field() -> None:
    """§15 record shape: every ``Option`` present, ``Box`` fields inline, field order kept."""
    record = ProcessRecord(
        id="p",
        registration_hash="h",
        input=InputEngine(kind="k", payload={"n": 1}),
        disposition=RecoveryDisposition.OWNER_BOUND,
        identity=ProcessIdentity(kind="k", label="L", definition={"d": 1}),
        event_types=[],
        provenance=ProcessProvenance(
            originator=OriginatorSession(scope=SessionScope(session_id="o")),
            caused_by=CausalTriggerOccurrence(occurrence_id="occ"),
        ),
        env_ref="env:abc",
        wake_target=SessionScope(session_id="t", agent_frame_id="f"),
        created_at_ms=1,
        updated_at_ms=2,
        external_ref=ProcessExternalRef(backend="b", id="x", metadata={"m": True}),
        first_started=ProcessStarted(owner=LeaseOwnerIdentity.opaque("w", "w:1"), started_at_ms=3),
        abandon_request=AbandonRequest(requested_by="u", requested_at_ms=4, reason="r"),
        wait=WaitState(
            kind=WaitSignal(name="go", event_type="signal.go", key="k", ordinal=0), since_ms=5
        ),
        status=StatusCompleted(await_output=AwaitSuccess(value=None)),
    )
    golden = (
        '{"id":"p","registration_hash":"h","input":{"type":"engine","kind":"k","payload":{"n":1}},'
        '"disposition":"owner_bound","identity":{"kind":"k","label":"L","definition":{"d":1}},'
        '"event_types":[],"provenance":{"originator":{"type":"session","scope":{"session_id":"o"}},'
        '"caused_by":{"type":"trigger_occurrence","occurrence_id":"occ"}},"env_ref":"env:abc",'
        '"wake_target":{"session_id":"t","agent_frame_id":"f"},"created_at_ms":1,"updated_at_ms":2,'
        '"external_ref":{"backend":"b","id":"x","metadata":{"m":true}},'
        '"first_started":{"owner":{"owner_id":"w","incarnation_id":"w:1","liveness":{"kind":"opaque"}},'
        '"started_at_ms":3},"abandon_request":{"requested_by":"u","requested_at_ms":4,"reason":"r"},'
        '"wait":{"kind":{"kind":"signal","name":"go","event_type":"signal.go","key":"k","ordinal":0},'
        '"since_ms":5},"status":{"state":"completed","await_output":{"type":"success","value":null}}}'
    )
    assert encode(record).decode() == golden
    assert decode(golden, ProcessRecord) == record
    assert encode(decode(golden, ProcessRecord)).decode() == golden
    assert record.is_terminal()


def test_record_defaults_on_decode() -> None:
    """serde defaults: created/updated_at_ms 0, status running, event_types []; all written back."""
    minimal = (
        '{"id":"p","registration_hash":"h","input":{"type":"external"},'
        '"disposition":"externally_owned","identity":{"kind":"external"},'
        '"provenance":{"originator":{"type":"host"}}}'
    )
    record = decode(minimal, ProcessRecord)
    assert record.status == StatusRunning() and not record.is_terminal()
    assert (record.created_at_ms, record.updated_at_ms, record.event_types) == (0, 0, [])
    assert encode(record).decode() == (
        '{"id":"p","registration_hash":"h","input":{"type":"external","metadata":null},'
        '"disposition":"externally_owned","identity":{"kind":"external"},"event_types":[],'
        '"provenance":{"originator":{"type":"host"}},"created_at_ms":0,"updated_at_ms":0,'
        '"status":{"state":"running"}}'
    )
    engine = decode(
        '{"id":"x","registration_hash":"h","input":{"type":"engine","kind":"k"},'
        '"disposition":"rerunnable","identity":{"kind":"k"},"provenance":{"originator":'
        '{"type":"session","scope":{"session_id":"s"}}}}',
        ProcessRecord,
    )
    assert engine.input == InputEngine(kind="k", payload=None)
    assert engine.provenance.originator == OriginatorSession(scope=SessionScope(session_id="s"))
    assert encode(engine).decode() == (
        '{"id":"x","registration_hash":"h","input":{"type":"engine","kind":"k","payload":null},'
        '"disposition":"rerunnable","identity":{"kind":"k"},"event_types":[],"provenance":'
        '{"originator":{"type":"session","scope":{"session_id":"s"}}},"created_at_ms":0,'
        '"updated_at_ms":0,"status":{"state":"running"}}'
    )


def test_registration_event_types_default_and_always_written() -> None:
    """RG-1: ``event_types`` has ``#[serde(default)]`` but no skip: ``[]`` is written."""
    golden = (
        '{"id":"p","input":{"type":"external","metadata":null},"disposition":"rerunnable",'
        '"identity":{"kind":"external"},"provenance":{"originator":{"type":"host"}}}'
    )
    reg_ = decode(golden, ProcessRegistration)
    assert reg_.event_types == []
    assert encode(reg_).decode() == golden.replace(
        '"identity":{"kind":"external"},', '"identity":{"kind":"external"},"event_types":[],'
    )


def test_wake_delivery_serde_defaults_on_decode() -> None:
    """WK-7: a delivery persisted without ``event_type``/``event_invocation`` decodes with
    ``process.wake`` and the default invocation, which are then always written."""
    old = (
        '{"wake_id":"w","target_session_id":"s","target_scope_id":"session:s","process_id":"p",'
        '"sequence":1,"dedupe_key":"p:1","input":"i","created_at_ms":7}'
    )
    delivery = decode(old, ProcessWakeDelivery)
    assert delivery.event_type == "process.wake"
    assert delivery.event_invocation == RuntimeInvocation(
        scope=RuntimeScope(session_id=""),
        subject=SubjectProcessEvent(process_id="", sequence=0, event_type="process.wake"),
    )
    assert encode(delivery).decode() == old.replace(
        '"sequence":1,',
        '"sequence":1,"event_type":"process.wake","event_invocation":{"scope":{"session_id":""},'
        '"subject":{"type":"process_event","process_id":"","sequence":0,"event_type":"process.wake"}},',
    )


def test_wake_spec_and_template_defaults_on_decode() -> None:
    """WK-2 / SEL-5: ``dedupe_key`` defaults to ``event_identity``; template
    ``fields`` to ``{}``."""
    spec = decode('{"input":{"template":{"template":"t"}}}', ProcessWakeSpec)
    assert spec == ProcessWakeSpec(input=SelTemplate("t"), dedupe_key=DedupeEventIdentity())
    assert (
        encode(spec)
        == b'{"input":{"template":{"template":"t","fields":{}}},"dedupe_key":"event_identity"}'
    )


def test_unit_variants_accept_null_object_form() -> None:
    """serde_json accepts ``{"payload": null}`` for a unit variant; it re-encodes
    as the bare string."""
    assert decode(b'{"payload":null}', ProcessValueSelector) == SelPayload()
    assert encode(decode(b'{"event_identity":null}', ProcessWakeDedupeKey)) == b'"event_identity"'


def test_liveness_defaults_to_opaque() -> None:
    """LS-2: ``liveness`` has a serde default (``opaque``) and is always written."""
    owner = decode(b'{"owner_id":"a","incarnation_id":"b"}', LeaseOwnerIdentity)
    assert owner == LeaseOwnerIdentity.opaque("a", "b")
    assert encode(owner) == b'{"owner_id":"a","incarnation_id":"b","liveness":{"kind":"opaque"}}'


def test_process_event_occurred_at() -> None:
    """EV-5: ``occurred_at`` is serde's SystemTime; ``occurred_at_ms`` reads it back."""
    assert S_EV_02_EVENT.occurred_at_ms == 1_700_000_000_123
    assert decode(
        b'{"secs_since_epoch":1,"nanos_since_epoch":1999000000}', SystemTime
    ) == SystemTime(secs_since_epoch=2, nanos_since_epoch=999_000_000)


def test_s_ev_02_invocation_and_wake_id() -> None:
    """S-EV-02 / EV-5 / WK-6: the stamped invocation, and the precomputed wake id from
    canonical JSON of ``[target_scope_id, dedupe_key]``."""
    assert process_event_invocation(
        "proc-provenance", 1, "producer.custom_wake", "custom-wake:build-failed"
    ) == (S_EV_02_INVOCATION)
    digest = hashlib.sha256(canonical_json([S_EV_02_DELIVERY.target_scope_id, "proc-provenance:1"]))
    assert S_EV_02_DELIVERY.wake_id == "wake:" + digest.hexdigest()


def test_append_result_omits_absent_delivery() -> None:
    """EV-5: an invocation stamped without a replay key skips ``replay``; an append
    result without a wake delivery skips ``wake_delivery``."""
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
    assert encode(ProcessEventAppendResult(event=event)).decode() == (
        '{"event":{"process_id":"p","sequence":1,"event_type":"x","payload":{},"invocation":'
        '{"scope":{"session_id":"runtime"},"subject":{"type":"process_event","process_id":"p",'
        '"sequence":1,"event_type":"x"},"caused_by":{"type":"process","process_id":"p"}},'
        '"semantics":{"terminal":{"state":"completed","await_output":{"type":"success",'
        '"value":{}}}},"occurred_at":{"secs_since_epoch":0,"nanos_since_epoch":0}}}'
    )


def test_reg_fixture_helpers() -> None:
    """Conformance fixture ``reg(id)``; ID-2 scope ids."""
    assert reg("x") == ProcessRegistration.external("x")
    assert reg("x").provenance == HOST
    assert SessionScope(session_id="s").id() == "session:s"
    assert SessionScope(session_id="s", agent_frame_id="").id() == "session:s"
    assert SessionScope(session_id="s", agent_frame_id="f").id() == "session:s/frame:f"


def test_status_helpers_and_list_filter() -> None:
    """AO-2 / PS-1 / RD-5: terminal state of an output, status projection, labels, and
    the list filter (definition compared as serde_json values: 1 != 1.0 != true)."""
    output = AwaitFailure(class_=ToolFailureClass.TIMEOUT, code="c", message="m")
    assert terminal_state_of(output) == ProcessTerminalState.FAILED
    status = status_from_terminal(
        ProcessTerminalSemantics(state=ProcessTerminalState.CANCELLED, await_output=output)
    )
    assert status == StatusCancelled(await_output=output)  # TM-4: the declared state wins
    assert is_terminal(status) and not is_terminal(StatusRunning())
    assert [status_label(s) for s in (StatusRunning(), status)] == ["running", "cancelled"]
    record = decode(
        '{"id":"p","registration_hash":"h","input":{"type":"external"},"disposition":"rerunnable",'
        '"identity":{"kind":"k","definition":1},"provenance":{"originator":{"type":"host"}}}',
        ProcessRecord,
    )
    assert ProcessListFilter().matches_record(record)
    assert ProcessListFilter(definition=1, waiting=False).matches_record(record)
    assert not ProcessListFilter(definition=1.0).matches_record(record)
    assert not ProcessListFilter(definition=True).matches_record(record)
    assert not ProcessListFilter(status=ProcessStatusFilter.COMPLETED).matches_record(record)
    assert ProcessListFilter(status=ProcessStatusFilter.ANY).matches_record(record)
    assert not ProcessListFilter(waiting=True).matches_record(record)


def test_append_request_cancel_requested() -> None:
    """CN-1: ``process.cancel_requested`` with ``{"reason": r}`` and a keyed replay."""
    request = ProcessEventAppendRequest.cancel_requested("p", None)
    assert (request.event_type, request.payload) == ("process.cancel_requested", {"reason": None})
    assert request.replay is not None
    assert request.replay.key.startswith("process:p:cancel_requested:")


def test_same_incarnation_ignores_liveness() -> None:
    """LS-2: owner identity match is owner id + incarnation id only."""
    local = LivenessLocalProcess(host_id="h", boot_id="b", pid=1, process_start="s")
    a = LeaseOwnerIdentity(owner_id="w", incarnation_id="i", liveness=local)
    assert a.same_incarnation(LeaseOwnerIdentity.opaque("w", "i"))
    assert not a.same_incarnation(LeaseOwnerIdentity.opaque("w", "j"))


_LASH_SERDE = Path(__file__).parent / "data" / "lash_serde_cc4a0e3b.tsv"


def test_values_lash_serde_wrote_read_and_write_back_byte_equal() -> None:
    """§15 against lash's own serde: 351 generated values of ten wire types
    (events, wake deliveries, registrations, records, leases, claim outcomes,
    await outputs, statuses, tool outputs, event types), each as lash's type
    definitions at cc4a0e3b (serde 1.0.228, serde_json 1.0.149 with
    ``float_roundtrip``) read and wrote it; decoding and encoding gives the
    same bytes. How they were made: docs/guarantees.md, "Wire"."""
    from tests.model.test_properties import CASES

    types = {name: tp for name, _, tp in CASES}
    lines = _LASH_SERDE.read_text(encoding="utf-8").split("\n")[:-1]
    assert len(lines) == 351
    for line in lines:
        name, text = line.split("\t")
        assert encode(decode(text, types[name])).decode() == text, line
