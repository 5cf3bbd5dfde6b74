"""Lease storage (LS-1..LS-10): claim, reclaim, renew, release, get.

The lease row is a hash beside the record; its ``fence`` field outlives every
holder (LS-5) and only prune deletes it. Expiry is compared with the server
clock inside the scripts (RX-11), so the row stays readable after it lapses
(LS-9: expiry is a raw fact observers read).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import msgspec

from lash_streams import observability as obs
from lash_streams.errors import InvalidValue, LeaseExpired, UnknownProcess
from lash_streams.model import (
    LeaseAcquired,
    LeaseBusy,
    LeaseOwnerIdentity,
    ProcessLease,
    ProcessLeaseClaimOutcome,
    ProcessLeaseCompletion,
)
from lash_streams.model._codec import decode
from lash_streams.semantics.inputs import require, require_u64, wire_bytes
from lash_streams.store import worklist
from lash_streams.store.core import StoreCore, text

#: "Is this holder definitely dead, as seen from this claimant?" (LV-2, LV-4).
DeathOracle = Callable[[LeaseOwnerIdentity, LeaseOwnerIdentity], bool]


#: The lease hash fields ``_lease`` reads, in its order ("owner" twice keeps
#: the row's indexes those of the claim script's reply).
_LEASE_FIELDS = ["owner", "owner", "token", "fence", "claimed", "expires"]


def lease_of_reply(process_id: str, row: list[Any]) -> ProcessLease:
    """A lease from a claim script's reply (``start_job`` answers the same way)
    or from ``_LEASE_FIELDS`` read back."""
    return ProcessLease(
        schema_version=2,
        process_id=process_id,
        owner=decode(row[1], LeaseOwnerIdentity),
        lease_token=text(row[2]),
        fencing_token=int(row[3]),
        claimed_at_epoch_ms=int(row[4]),
        expires_at_epoch_ms=int(row[5]),
    )


def _new_token() -> str:
    """LS-6: opaque and unique per acquisition."""
    return secrets.token_hex(16)


#: The longest lease a claim or renewal takes (about 3 years): the expiry,
#: server time plus the TTL, stays a u64 lash reads back.
MAX_LEASE_TTL_MS = 10**11


def checked_ttl(lease_ttl_ms: int) -> int:
    """A lease TTL lash reads back (a u64 at most ``MAX_LEASE_TTL_MS``), else a typed error."""
    ttl = require_u64(lease_ttl_ms, "lease_ttl_ms")
    if ttl > MAX_LEASE_TTL_MS:
        raise InvalidValue(f"lease_ttl_ms must be at most {MAX_LEASE_TTL_MS}, got {ttl}")
    return ttl


class LeaseOps(StoreCore):
    #: Injected death evidence (LV-4); the bus sets the host-local LV-2 oracle
    #: of ``coordination.liveness`` when none is given.
    death_oracle: DeathOracle | None = None

    def is_definitely_dead(self, holder: LeaseOwnerIdentity, claimant: LeaseOwnerIdentity) -> bool:
        """Without an oracle the store knows no evidence: nobody is dead."""
        return self.death_oracle is not None and self.death_oracle(holder, claimant)

    async def _claim(
        self, process_id: str, args: list[Any], *, idempotent: bool
    ) -> ProcessLeaseClaimOutcome:
        keys = self.keys.process(process_id)

        def call() -> Any:
            return self.scripts.claim_lease(keys=[keys.record, keys.lease], args=args)

        what = f"claim lease of `{process_id}`"
        reply = await (
            self.retry.idempotent(what, call) if idempotent else self.retry.once(what, call)
        )
        status = text(reply[0])
        if obs.hooks is not None:
            obs.hooks.lease_claimed(args[4], status)
        if status == "NOPROC":
            raise UnknownProcess(process_id)
        lease = lease_of_reply(process_id, reply)
        # Acquired: due when it lapses; busy: the holder's expiry (repairs a
        # score left early by a lost rescore).
        await worklist.rescore(self, process_id, lease.expires_at_epoch_ms)
        return LeaseAcquired(lease) if status == "ACQUIRED" else LeaseBusy(holder=lease)

    async def claim_process_lease(
        self, process_id: str, owner: LeaseOwnerIdentity, lease_ttl_ms: int
    ) -> ProcessLeaseClaimOutcome:
        """LS-4. Retrying is safe: a repeat by the same incarnation re-enters."""
        ttl = checked_ttl(lease_ttl_ms)
        args = [
            wire_bytes(owner, LeaseOwnerIdentity, "owner"),
            owner.owner_id,
            owner.incarnation_id,
            ttl,
            "claim",
            _new_token(),
        ]
        return await self._claim(process_id, args, idempotent=True)

    async def reclaim_process_lease(
        self,
        process_id: str,
        owner: LeaseOwnerIdentity,
        observed_holder: ProcessLease,
        lease_ttl_ms: int,
        *,
        death_evidence: bool | None = None,
    ) -> ProcessLeaseClaimOutcome:
        """LS-10: compare-and-set on the observed holder; death evidence is
        evaluated here, on the claimant's host (RX-14), unless the caller
        already established it (``death_evidence``, e.g. fleet liveness)."""
        ttl = checked_ttl(lease_ttl_ms)
        claimant = wire_bytes(owner, LeaseOwnerIdentity, "owner")
        wire_bytes(observed_holder, ProcessLease, "observed_holder")
        dead = (
            self.is_definitely_dead(observed_holder.owner, owner)
            if death_evidence is None
            else death_evidence
        )
        args = [
            claimant,
            owner.owner_id,
            owner.incarnation_id,
            ttl,
            "reclaim",
            _new_token(),
            observed_holder.lease_token,
            observed_holder.owner.owner_id,
            observed_holder.owner.incarnation_id,
            observed_holder.fencing_token,
            "1" if dead else "0",
        ]
        return await self._claim(process_id, args, idempotent=False)

    async def renew_process_lease(self, lease: ProcessLease, lease_ttl_ms: int) -> ProcessLease:
        """LS-7: same token, incarnation and fencing, and still live."""
        wire_bytes(lease, ProcessLease, "lease")
        ttl = checked_ttl(lease_ttl_ms)
        key = self.keys.process(lease.process_id).lease
        args: list[Any] = [
            lease.lease_token,
            lease.owner.owner_id,
            lease.owner.incarnation_id,
            lease.fencing_token,
            ttl,
        ]
        reply = await self.retry.idempotent(
            f"renew lease of `{lease.process_id}`",
            lambda: self.scripts.renew_lease(keys=[key], args=args),
        )
        renewed = text(reply[0]) == "OK"
        if obs.hooks is not None:
            obs.hooks.lease_renewed(renewed)
        if not renewed:
            raise LeaseExpired(lease.process_id)
        expires = int(reply[1])
        await worklist.rescore(self, lease.process_id, expires)
        return msgspec.structs.replace(lease, expires_at_epoch_ms=expires)

    async def complete_process_lease(
        self, completion: ProcessLeaseCompletion, *, terminal: bool = False
    ) -> None:
        """LS-8: release by token; never fails. ``terminal``: the row is
        terminal now, out of the worklist, so there is nothing to rescore."""
        wire_bytes(completion, ProcessLeaseCompletion, "completion")
        key = self.keys.process(completion.process_id).lease
        released = await self.retry.idempotent(
            f"release lease of `{completion.process_id}`",
            lambda: self.scripts.release_lease(keys=[key], args=[completion.lease_token]),
        )
        if released and not terminal:  # free now: due at once
            await worklist.rescore(self, completion.process_id, 0)

    async def get_process_lease(self, process_id: str) -> ProcessLease | None:
        """LS-9: the held lease even when expired; none when free or unknown."""
        key = self.keys.process(process_id).lease
        row: list[Any] = await self.retry.idempotent(
            f"read lease of `{process_id}`",
            lambda: self.redis.hmget(key, _LEASE_FIELDS),
        )
        if not row[2]:
            return None
        return lease_of_reply(process_id, row)

    async def live_leases(
        self, process_ids: list[str], now_ms: int | None = None
    ) -> dict[str, ProcessLease]:
        """The leases among ``process_ids`` that are live by the server clock,
        in one pipeline after one ``TIME`` (or at ``now_ms``, a server time the
        caller just read): a sweep skips those rows without a claim unless it
        has death evidence for the holder. A lease that lapses after that time
        counts as live for this pass only (the next one claims it); no
        ownership is decided from this read."""
        if now_ms is not None:
            require_u64(now_ms, "now_ms")
        require(process_ids, list | tuple, "process_ids")
        if not process_ids:
            return {}
        now = await self.server_time_ms() if now_ms is None else now_ms
        keys = [self.keys.process(pid).lease for pid in process_ids]

        async def run() -> list[list[Any]]:
            pipe = self.redis.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(key, _LEASE_FIELDS)
            rows: list[list[Any]] = await pipe.execute()
            return rows

        rows = await self.retry.idempotent("read leases", run)
        live: dict[str, ProcessLease] = {}
        for pid, row in zip(process_ids, rows, strict=True):
            if row[2] and row[5] and int(row[5]) > now:
                live[pid] = lease_of_reply(pid, row)
        return live
