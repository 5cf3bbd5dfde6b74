"""AB-2 ``owner_drain``: at graceful close a worker abandons its own started
owner-bound rows (``first_started.owner`` is its stem), each under a fresh
lease; a row busy with another claim is deferred (its later sweep sees this
worker's exit record, with fleet liveness, or an abandon request)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from lash_streams.model import (
    AbandonWriter,
    LeaseAcquired,
    LeaseOwnerIdentity,
    ProcessAwaitOutput,
    ProcessLease,
    RecoveryDisposition,
)

if TYPE_CHECKING:
    from lash_streams.store import Store


class Drainer(Protocol):
    """What the drain needs of a ``Recovery`` (no import cycle)."""

    store: Store
    stem: LeaseOwnerIdentity
    lease_ttl_ms: int

    def attempt_identity(self) -> LeaseOwnerIdentity: ...

    async def became_terminal(self, pid: str, lease: ProcessLease) -> bool: ...

    async def abandoned_output(
        self, writer: AbandonWriter, owner: LeaseOwnerIdentity | None
    ) -> ProcessAwaitOutput: ...

    async def fenced_terminal(
        self, pid: str, lease: ProcessLease, output: ProcessAwaitOutput
    ) -> bool: ...


async def owner_drain(recovery: Drainer) -> list[str]:
    abandoned: list[str] = []
    store = recovery.store
    for record in await store.list_non_terminal():
        started = record.first_started
        if (
            record.disposition is not RecoveryDisposition.OWNER_BOUND
            or started is None
            or started.owner != recovery.stem
        ):
            continue
        outcome = await store.claim_process_lease(
            record.id, recovery.attempt_identity(), recovery.lease_ttl_ms
        )
        if not isinstance(outcome, LeaseAcquired):
            continue
        if await recovery.became_terminal(record.id, outcome.lease):
            continue
        output = await recovery.abandoned_output(AbandonWriter.OWNER_DRAIN, started.owner)
        if await recovery.fenced_terminal(record.id, outcome.lease, output):
            abandoned.append(record.id)
    return abandoned
