"""Lease owner identity and process leases (store/mod.rs, model.rs; LS-1, LS-2)."""

from __future__ import annotations

from typing import Any

import msgspec

from lash_streams.model._codec import (
    U32,
    U64,
    HookValue,
    Wire,
    always,
    convert,
    fail,
    register_hook,
)

PROCESS_LEASE_SCHEMA_VERSION = 2


class LivenessLocalProcess(Wire, frozen=True, kw_only=True, tag_field="kind", tag="local_process"):
    host_id: str
    boot_id: str
    pid: U32
    process_start: str


class LivenessOpaque(Wire, frozen=True, kw_only=True, tag_field="kind", tag="opaque"):
    pass


LeaseOwnerLiveness = LivenessLocalProcess | LivenessOpaque


class LeaseOwnerIdentity(Wire, frozen=True, kw_only=True):
    owner_id: str
    incarnation_id: str
    liveness: LeaseOwnerLiveness = always(LivenessOpaque)

    @classmethod
    def opaque(cls, owner_id: str, incarnation_id: str) -> LeaseOwnerIdentity:
        return cls(owner_id=owner_id, incarnation_id=incarnation_id, liveness=LivenessOpaque())

    def same_incarnation(self, other: LeaseOwnerIdentity) -> bool:
        """LS-2: equal owner and incarnation ids; liveness is ignored."""
        return self.owner_id == other.owner_id and self.incarnation_id == other.incarnation_id


class ProcessLease(Wire, frozen=True, kw_only=True):
    """LS-1. ``schema_version`` (:data:`PROCESS_LEASE_SCHEMA_VERSION`) has no
    default: serde requires it on decode, and a default would either be omitted
    by ``omit_defaults`` or make decoding lenient."""

    schema_version: U32
    process_id: str
    owner: LeaseOwnerIdentity
    lease_token: str
    fencing_token: U64
    claimed_at_epoch_ms: U64
    expires_at_epoch_ms: U64


class ProcessLeaseCompletion(Wire, frozen=True, kw_only=True):
    process_id: str
    lease_token: str

    @classmethod
    def from_lease(cls, lease: ProcessLease) -> ProcessLeaseCompletion:
        return cls(process_id=lease.process_id, lease_token=lease.lease_token)


class ProcessLeaseClaimOutcome(HookValue):
    """Externally tagged with Rust's variant names (no rename): ``{"Acquired": lease}``
    or ``{"Busy": {"holder": lease}}``. Contention is an outcome, never an error."""

    __slots__ = ()


class LeaseAcquired(ProcessLeaseClaimOutcome):
    __slots__ = ("lease",)
    lease: ProcessLease

    def __init__(self, lease: ProcessLease) -> None:
        super().__init__(lease=lease)


class LeaseBusy(ProcessLeaseClaimOutcome):
    __slots__ = ("holder",)
    holder: ProcessLease

    def __init__(self, holder: ProcessLease) -> None:
        super().__init__(holder=holder)


class _Busy(msgspec.Struct):
    holder: ProcessLease


def _encode_outcome(obj: ProcessLeaseClaimOutcome) -> Any:
    if isinstance(obj, LeaseAcquired):
        return {"Acquired": obj.lease}
    if isinstance(obj, LeaseBusy):
        return {"Busy": _Busy(obj.holder)}
    raise TypeError(f"not a lease claim outcome: {obj!r}")


def _decode_outcome(obj: Any) -> ProcessLeaseClaimOutcome:
    if not isinstance(obj, dict) or len(obj) != 1:
        raise fail('expected {"Acquired": lease} or {"Busy": {"holder": lease}}')
    ((tag, body),) = obj.items()
    if tag == "Acquired":
        return LeaseAcquired(convert(body, ProcessLease, ".Acquired"))
    if tag == "Busy":
        return LeaseBusy(convert(body, _Busy, ".Busy").holder)
    raise fail(f"unknown variant `{tag}`, expected one of `Acquired`, `Busy`")


register_hook(ProcessLeaseClaimOutcome, _encode_outcome, _decode_outcome)

__all__ = [
    "PROCESS_LEASE_SCHEMA_VERSION",
    "LeaseAcquired",
    "LeaseBusy",
    "LeaseOwnerIdentity",
    "LeaseOwnerLiveness",
    "LivenessLocalProcess",
    "LivenessOpaque",
    "ProcessLease",
    "ProcessLeaseClaimOutcome",
    "ProcessLeaseCompletion",
]
