"""Death evidence that works across pods (issue: leases and recovery).

lash's own evidence (LV-2) is host-local: same host and boot, pid gone or
restarted. Pods on other machines never qualify. A fleet adds one more kind of
evidence, recorded in Redis by the workers themselves:

- a worker identity (``owner_id``) registers each *incarnation* when it starts;
  a newer incarnation of the same identity proves every older one is gone
  (the identity is unique to one running worker, e.g. a StatefulSet pod name);
- a worker records its own graceful exit.

A lapsed lease alone is never evidence (LV-3), and neither is silence: a worker
that vanished without a successor or an exit record stays "not provably dead",
and only an abandon request (reconciled after its lease lapses) closes its
OwnerBound work.

One hash, ``<ns>:workers:{<ns>}``, holds one field per worker identity (its
latest incarnation and state), so its size is bounded by the number of worker
identities.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from lash_streams.model import LeaseOwnerIdentity

if TYPE_CHECKING:
    from lash_streams.store import Store


class _Incarnation(msgspec.Struct):
    incarnation_id: str
    state: str  # "running" | "exited"
    since_ms: int


def _key(store: Store) -> str:
    return f"{store.namespace}:workers:{{{store.namespace}}}"


async def register_incarnation(store: Store, owner: LeaseOwnerIdentity) -> None:
    """Record that this incarnation now runs as ``owner.owner_id``."""
    now = await store.server_time_ms()
    value = msgspec.json.encode(_Incarnation(owner.incarnation_id, "running", now))
    await store.command("register worker", "hset", _key(store), owner.owner_id, value)


async def record_exit(store: Store, owner: LeaseOwnerIdentity) -> None:
    """Record this incarnation's graceful exit (only if it is still the latest)."""
    current = await current_incarnation(store, owner.owner_id)
    if current is None or current.incarnation_id == owner.incarnation_id:
        now = await store.server_time_ms()
        value = msgspec.json.encode(_Incarnation(owner.incarnation_id, "exited", now))
        await store.command("record worker exit", "hset", _key(store), owner.owner_id, value)


async def current_incarnation(store: Store, owner_id: str) -> _Incarnation | None:
    raw = await store.command("read worker", "hget", _key(store), owner_id)
    return msgspec.json.decode(raw, type=_Incarnation) if raw else None


def worker_of(holder: LeaseOwnerIdentity) -> tuple[str, str]:
    """The worker identity and incarnation behind a lease holder: recovery
    attempts hold leases as ``<owner>:recovery:<attempt>`` with incarnation
    ``<incarnation>/<attempt>`` (SW-4)."""
    owner_id, sep, _ = holder.owner_id.partition(":recovery:")
    if not sep:
        return holder.owner_id, holder.incarnation_id
    return owner_id, holder.incarnation_id.split("/", 1)[0]


async def is_provably_dead(store: Store, holder: LeaseOwnerIdentity) -> bool:
    """Fleet evidence: a newer incarnation of the holder's worker identity
    registered, or that incarnation recorded its own exit."""
    owner_id, incarnation_id = worker_of(holder)
    current = await current_incarnation(store, owner_id)
    if current is None:
        return False
    if current.incarnation_id != incarnation_id:
        return True
    return current.state == "exited"
