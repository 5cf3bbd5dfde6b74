"""Lease owner identity and process leases (store/mod.rs, model.rs; LS-1, LS-2)."""

from __future__ import annotations

from typing import Any

from lash_streams.model._base import Wire, always
from lash_streams.model._codec import convert, register_hook

PROCESS_LEASE_SCHEMA_VERSION = 2


class LivenessLocalProcess(Wire, frozen=True, kw_only=True, tag_field="kind", tag="local_process"):
    host_id: str
    boot_id: str
    pid: int
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
    schema_version: int
    process_id: str
    owner: LeaseOwnerIdentity
    lease_token: str
    fencing_token: int
    claimed_at_epoch_ms: int
    expires_at_epoch_ms: int


class ProcessLeaseCompletion(Wire, frozen=True, kw_only=True):
    process_id: str
    lease_token: str

    @classmethod
    def from_lease(cls, lease: ProcessLease) -> ProcessLeaseCompletion:
        return cls(process_id=lease.process_id, lease_token=lease.lease_token)


class ProcessLeaseClaimOutcome:
    """Externally tagged with Rust's variant names: ``{"Acquired": lease}`` or
    ``{"Busy": {"holder": lease}}``. Contention is an outcome, never an error."""

    __slots__ = ()


class LeaseAcquired(ProcessLeaseClaimOutcome):
    __slots__ = ("lease",)

    def __init__(self, lease: ProcessLease) -> None:
        self.lease = lease

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LeaseAcquired) and other.lease == self.lease

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LeaseAcquired({self.lease!r})"


class LeaseBusy(ProcessLeaseClaimOutcome):
    __slots__ = ("holder",)

    def __init__(self, holder: ProcessLease) -> None:
        self.holder = holder

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LeaseBusy) and other.holder == self.holder

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LeaseBusy(holder={self.holder!r})"


def _encode_outcome(obj: ProcessLeaseClaimOutcome) -> Any:
    if isinstance(obj, LeaseAcquired):
        return {"Acquired": obj.lease}
    assert isinstance(obj, LeaseBusy)
    return {"Busy": {"holder": obj.holder}}


def _decode_outcome(obj: Any) -> ProcessLeaseClaimOutcome:
    if isinstance(obj, dict) and len(obj) == 1:
        ((tag, body),) = obj.items()
        if tag == "Acquired":
            return LeaseAcquired(convert(body, ProcessLease))
        if tag == "Busy" and isinstance(body, dict) and "holder" in body:
            return LeaseBusy(convert(body["holder"], ProcessLease))
    raise ValueError('lease claim outcome must be {"Acquired": ...} or {"Busy": {"holder": ...}}')


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
