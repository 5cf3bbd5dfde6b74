"""Golden vectors for process registrations, records, facets and leases (see test_golden)."""

from __future__ import annotations

from typing import Any

import msgspec

from lash_streams.model import (
    AbandonEvidence,
    AbandonRequest,
    AbandonWriter,
    AwaitAbandoned,
    AwaitCancelled,
    AwaitFailure,
    AwaitSuccess,
    CausalTurn,
    InputEngine,
    InputExternal,
    InputSessionTurn,
    InputToolCall,
    LeaseAcquired,
    LeaseBusy,
    LeaseOwnerIdentity,
    LeaseOwnerLiveness,
    LivenessLocalProcess,
    LivenessOpaque,
    OriginatorHost,
    OriginatorSession,
    ProcessExternalRef,
    ProcessHandleDescriptor,
    ProcessHandleGrant,
    ProcessIdentity,
    ProcessInput,
    ProcessLease,
    ProcessLeaseClaimOutcome,
    ProcessLeaseCompletion,
    ProcessOriginator,
    ProcessProvenance,
    ProcessPruneReport,
    ProcessRegistration,
    ProcessSessionDeleteReport,
    ProcessStarted,
    ProcessStatus,
    RecoveryDisposition,
    SessionScope,
    StatusAbandoned,
    StatusCancelled,
    StatusCompleted,
    StatusFailed,
    StatusRunning,
    ToolFailureClass,
    WaitSignal,
    WaitState,
)
from tests.model._fixtures import (
    LEASE,
    LEASE_JSON,
    reg,
    reg_json,
)

V = tuple[str, Any, Any, str]  # (id, value, decode type, golden JSON)

HOST = ProcessProvenance.host()
PROCESS: list[V] = [
    ("originator-host-unit", OriginatorHost(), ProcessOriginator, '{"type":"host"}'),
    (
        "originator-session",
        OriginatorSession(scope=SessionScope(session_id="s", agent_frame_id="f")),
        ProcessOriginator,
        '{"type":"session","scope":{"session_id":"s","agent_frame_id":"f"}}',
    ),
    (
        "provenance-caused-by",
        ProcessProvenance(
            originator=OriginatorHost(), caused_by=CausalTurn(session_id="s", turn_id="t")
        ),
        ProcessProvenance,
        '{"originator":{"type":"host"},"caused_by":{"type":"turn","session_id":"s","turn_id":"t"}}',
    ),
    (
        "input-external-null-written",
        InputExternal(),
        ProcessInput,
        '{"type":"external","metadata":null}',
    ),
    (
        "input-engine-null-written",
        InputEngine(kind="k"),
        ProcessInput,
        '{"type":"engine","kind":"k","payload":null}',
    ),
    (
        "input-engine-payload",
        InputEngine(kind="k", payload={"z": 0, "a": 1}),
        ProcessInput,
        '{"type":"engine","kind":"k","payload":{"a":1,"z":0}}',
    ),
    (
        "input-tool-call-raw",
        InputToolCall(call=msgspec.Raw(b'{"tool_name":"t","call_id":"c"}')),
        ProcessInput,
        '{"type":"tool_call","call":{"tool_name":"t","call_id":"c"}}',
    ),
    (
        "input-session-turn-raw",
        InputSessionTurn(
            create_request=msgspec.Raw(b'{"session_id":"s"}'),
            turn_input=msgspec.Raw(b'{"items":[]}'),
            output_contract=msgspec.Raw(b'{"mode":"text"}'),
        ),
        ProcessInput,
        '{"type":"session_turn","create_request":{"session_id":"s"},"turn_input":{"items":[]},'
        '"output_contract":{"mode":"text"}}',
    ),
    ("identity-skip", ProcessIdentity(kind="external"), ProcessIdentity, '{"kind":"external"}'),
    (
        "identity-full",
        ProcessIdentity(kind="engine", label="L", definition={"b": 1, "a": 2}),
        ProcessIdentity,
        '{"kind":"engine","label":"L","definition":{"a":2,"b":1}}',
    ),
    ("reg-fixture", reg("proc-1"), ProcessRegistration, reg_json("proc-1")),
    (
        "reg-tool-call-bytes-kept-env-ref",
        ProcessRegistration(
            id="p",
            input=InputToolCall(call=msgspec.Raw(b'{"zeta":1,"alpha":2}')),
            disposition=RecoveryDisposition.RERUNNABLE,
            identity=ProcessIdentity(kind="tool", label="t"),
            event_types=[],
            provenance=HOST,
            env_ref="e",
        ),
        ProcessRegistration,
        '{"id":"p","input":{"type":"tool_call","call":{"zeta":1,"alpha":2}},"disposition":'
        '"rerunnable","identity":{"kind":"tool","label":"t"},"event_types":[],"provenance":'
        '{"originator":{"type":"host"}},"env_ref":"e"}',
    ),
    (
        "enum-recovery-disposition",
        RecoveryDisposition.EXTERNALLY_OWNED,
        RecoveryDisposition,
        '"externally_owned"',
    ),
    ("status-running-unit", StatusRunning(), ProcessStatus, '{"state":"running"}'),
    (
        "status-completed",
        StatusCompleted(await_output=AwaitSuccess(value="done")),
        ProcessStatus,
        '{"state":"completed","await_output":{"type":"success","value":"done"}}',
    ),
    (
        "status-failed",
        StatusFailed(
            await_output=AwaitFailure(class_=ToolFailureClass.TIMEOUT, code="c", message="m")
        ),
        ProcessStatus,
        '{"state":"failed","await_output":{"type":"failure","class":"timeout","code":"c","message":"m"}}',
    ),
    (
        "status-cancelled",
        StatusCancelled(await_output=AwaitCancelled(message="m")),
        ProcessStatus,
        '{"state":"cancelled","await_output":{"type":"cancelled","message":"m"}}',
    ),
    (
        # lash's Some(Value::Null) (TM-2 on a selected null) is written; only None is skipped
        "status-cancelled-null-raw-written",
        StatusCancelled(await_output=AwaitCancelled(message="null", raw=None)),
        ProcessStatus,
        '{"state":"cancelled","await_output":{"type":"cancelled","message":"null","raw":null}}',
    ),
    (
        "status-abandoned",
        StatusAbandoned(
            await_output=AwaitAbandoned(
                evidence=AbandonEvidence(writer=AbandonWriter.SWEEP, epoch_ms=5)
            )
        ),
        ProcessStatus,
        '{"state":"abandoned","await_output":{"type":"abandoned","evidence":{"writer":"sweep","epoch_ms":5}}}',
    ),
    (
        "wait-state-kind-tag",
        WaitState(
            kind=WaitSignal(
                name="go", event_type="signal.go", key="process:p:signal.go:1", ordinal=1
            ),
            since_ms=5,
        ),
        WaitState,
        '{"kind":{"kind":"signal","name":"go","event_type":"signal.go","key":"process:p:signal.go:1",'
        '"ordinal":1},"since_ms":5}',
    ),
    (
        "started",
        ProcessStarted(owner=LEASE.owner, started_at_ms=3),
        ProcessStarted,
        '{"owner":{"owner_id":"w1","incarnation_id":"w1:incarnation","liveness":{"kind":"opaque"}},'
        '"started_at_ms":3}',
    ),
    (
        "abandon-request-skip",
        AbandonRequest(requested_by="u", requested_at_ms=4),
        AbandonRequest,
        '{"requested_by":"u","requested_at_ms":4}',
    ),
    (
        "external-ref-skip",
        ProcessExternalRef(backend="b", id="i"),
        ProcessExternalRef,
        '{"backend":"b","id":"i"}',
    ),
    ("descriptor-empty", ProcessHandleDescriptor(), ProcessHandleDescriptor, "{}"),
    (
        "grant",
        ProcessHandleGrant(
            session_id="s", process_id="p", descriptor=ProcessHandleDescriptor(kind="k", label="l")
        ),
        ProcessHandleGrant,
        '{"session_id":"s","process_id":"p","descriptor":{"kind":"k","label":"l"}}',
    ),
    (
        "delete-report-empty-vecs-written",
        ProcessSessionDeleteReport(
            session_id="s",
            revoked_handle_count=0,
            deleted_wake_count=0,
            orphaned_process_ids=[],
            preserved_process_ids=[],
        ),
        ProcessSessionDeleteReport,
        '{"session_id":"s","revoked_handle_count":0,"deleted_wake_count":0,'
        '"orphaned_process_ids":[],"preserved_process_ids":[]}',
    ),
    (
        "prune-report",
        ProcessPruneReport(pruned_processes=1, pruned_events=2),
        ProcessPruneReport,
        '{"pruned_processes":1,"pruned_events":2}',
    ),
]

LOCAL = LivenessLocalProcess(host_id="host-a", boot_id="boot-a", pid=42, process_start="777")
LEASES: list[V] = [
    ("liveness-opaque-unit", LivenessOpaque(), LeaseOwnerLiveness, '{"kind":"opaque"}'),
    (
        "owner-local-process",
        LeaseOwnerIdentity(owner_id="x", incarnation_id="x:incarnation", liveness=LOCAL),
        LeaseOwnerIdentity,
        '{"owner_id":"x","incarnation_id":"x:incarnation","liveness":{"kind":"local_process",'
        '"host_id":"host-a","boot_id":"boot-a","pid":42,"process_start":"777"}}',
    ),
    (
        "owner-opaque-default-written",
        LeaseOwnerIdentity(owner_id="x", incarnation_id="i"),
        LeaseOwnerIdentity,
        '{"owner_id":"x","incarnation_id":"i","liveness":{"kind":"opaque"}}',
    ),
    ("lease", LEASE, ProcessLease, LEASE_JSON),
    (
        "claim-acquired-newtype",
        LeaseAcquired(LEASE),
        ProcessLeaseClaimOutcome,
        '{"Acquired":' + LEASE_JSON + "}",
    ),
    (
        "claim-busy-struct-variant",
        LeaseBusy(LEASE),
        ProcessLeaseClaimOutcome,
        '{"Busy":{"holder":' + LEASE_JSON + "}}",
    ),
    (
        "completion",
        ProcessLeaseCompletion.from_lease(LEASE),
        ProcessLeaseCompletion,
        '{"process_id":"p","lease_token":"tok"}',
    ),
]
