"""What a sweep would do, without doing it (``lash-streams sweep --dry-run``,
issue 16): the same rules as ``Recovery._recover``/``_examine`` (SW-5..SW-11)
read from the records and leases, with no claim and no write.

A preview is a snapshot: a lease that lapses, a holder that dies or an abandon
request that lands after it changes what the real sweep does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from lash_streams.model import ProcessLease, ProcessRecord, RecoveryDisposition

if TYPE_CHECKING:
    from lash_streams.coordination.recovery import Recovery

Action = Literal["run", "fail", "abandon", "leave"]


@dataclass(frozen=True)
class Decision:
    process_id: str
    action: Action
    reason: str


async def preview(recovery: Recovery) -> list[Decision]:
    """One decision per running row, ascending by id, as ``sweep_once`` would
    take it now."""
    store = recovery.store
    rows = await store.list_non_terminal()
    live = await store.live_leases([row.id for row in rows])
    return [await _decide(recovery, row, live.get(row.id)) for row in rows]


async def _decide(recovery: Recovery, row: ProcessRecord, held: ProcessLease | None) -> Decision:
    pid = row.id

    def decision(action: Action, reason: str) -> Decision:
        return Decision(pid, action, reason)

    dead_holder = held is not None and await recovery.holder_is_dead(held.owner, recovery.stem)
    if row.disposition is RecoveryDisposition.EXTERNALLY_OWNED:
        if row.abandon_request is None:
            return decision("leave", "externally owned, no abandon request")
        if held is not None:
            return decision("leave", "abandon requested; waits for the live lease to lapse")
        return decision("abandon", "abandon requested (reconciled_request)")
    if held is not None and not dead_holder:
        return decision("leave", "held by a live owner")
    started = row.first_started
    if row.disposition is RecoveryDisposition.RERUNNABLE or started is None:
        if recovery.runner is not None:
            return decision("run", "runnable: this worker would run it")
        if recovery.unrunnable == "fail":
            return decision("fail", "runnable, but no runner here: process_recovery_failed")
        return decision("leave", "no runner here: left for a worker that can run it")
    if dead_holder or await recovery.holder_is_dead(started.owner, recovery.stem):
        return decision("abandon", "its worker is provably dead (sweep)")
    if row.abandon_request is not None:
        return decision("abandon", "abandon requested (reconciled_request)")
    return decision(
        "leave",
        "started by a worker not known to be dead and no abandon was requested: left running",
    )
