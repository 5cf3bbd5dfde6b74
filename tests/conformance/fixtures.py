"""The conformance scenarios' fixtures (lash-conformance-scenarios.md, "Fixtures")."""

from __future__ import annotations

import os
from typing import Any

from lash_streams.model import (
    AwaitSuccess,
    DedupeEventIdentity,
    InputExternal,
    LashSchema,
    LeaseOwnerIdentity,
    LivenessLocalProcess,
    LivenessOpaque,
    OriginatorHost,
    ProcessEventAppendRequest,
    ProcessEventSemanticsSpec,
    ProcessEventType,
    ProcessIdentity,
    ProcessProvenance,
    ProcessRegistration,
    ProcessWakeSpec,
    RecoveryDisposition,
    RuntimeReplay,
    SelPointer,
    SelPresent,
    SessionScope,
)


def reg(
    pid: str,
    *extra: ProcessEventType,
    disposition: RecoveryDisposition = RecoveryDisposition.EXTERNALLY_OWNED,
    wake_target: SessionScope | None = None,
    provenance: ProcessProvenance | None = None,
) -> ProcessRegistration:
    """reg(id): external input, externally_owned, host provenance, defaults + extra types."""
    from lash_streams.model import default_process_event_types

    return ProcessRegistration(
        id=pid,
        input=InputExternal(metadata=None),
        disposition=disposition,
        identity=ProcessIdentity(kind="external"),
        event_types=[*default_process_event_types(), *extra],
        provenance=provenance or ProcessProvenance(originator=OriginatorHost()),
        wake_target=wake_target,
    )


def ob_reg(pid: str, *extra: ProcessEventType) -> ProcessRegistration:
    return reg(pid, *extra, disposition=RecoveryDisposition.OWNER_BOUND)


def rr_reg(pid: str, *extra: ProcessEventType) -> ProcessRegistration:
    return reg(pid, *extra, disposition=RecoveryDisposition.RERUNNABLE)


def plain(name: str, schema: Any = None) -> ProcessEventType:
    return ProcessEventType(
        name=name,
        payload_schema=LashSchema(schema={} if schema is None else schema),
        semantics=ProcessEventSemanticsSpec(),
    )


def wake(name: str) -> ProcessEventType:
    return ProcessEventType(
        name=name,
        payload_schema=LashSchema(schema={}),
        semantics=ProcessEventSemanticsSpec(
            wake=ProcessWakeSpec(
                when=SelPresent("/wake_input"),
                input=SelPointer("/wake_input"),
                dedupe_key=DedupeEventIdentity(),
            )
        ),
    )


def scope(session: str) -> SessionScope:
    return SessionScope(session_id=session)


def frame(session: str, frame_id: str) -> SessionScope:
    return SessionScope(session_id=session, agent_frame_id=frame_id)


def S(value: Any) -> AwaitSuccess:
    return AwaitSuccess(value=value)


def owner(name: str) -> LeaseOwnerIdentity:
    return LeaseOwnerIdentity(
        owner_id=name, incarnation_id=f"{name}:incarnation", liveness=LivenessOpaque()
    )


def local(name: str, host: str, start: str) -> LeaseOwnerIdentity:
    return LeaseOwnerIdentity(
        owner_id=name,
        incarnation_id=f"{name}:incarnation",
        liveness=LivenessLocalProcess(
            host_id=host, boot_id="boot-a", pid=os.getpid(), process_start=start
        ),
    )


DEAD = local("dead-holder", "host-a", "not-the-current-process-start")
CLAIMANT = local("claimant", "host-a", "claimant-start")


def fixture_oracle(holder: LeaseOwnerIdentity, claimant: LeaseOwnerIdentity) -> bool:
    """The injected oracle the scenarios allow: only `not-the-current-process-start`
    holders on the claimant's host and boot are dead (LV-4)."""
    h, c = holder.liveness, claimant.liveness
    return (
        isinstance(h, LivenessLocalProcess)
        and isinstance(c, LivenessLocalProcess)
        and h.host_id == c.host_id
        and h.boot_id == c.boot_id
        and h.process_start == "not-the-current-process-start"
    )


def req(
    event_type: str,
    payload: Any,
    *,
    key: str | None = None,
    target: SessionScope | None = None,
) -> ProcessEventAppendRequest:
    return ProcessEventAppendRequest(
        event_type=event_type,
        payload=payload,
        replay=RuntimeReplay(key=key) if key is not None else None,
        wake_target_scope=target,
    )
