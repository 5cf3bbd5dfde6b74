"""Death evidence that works across pods (issue: leases and recovery).

lash's own evidence (LV-2) is host-local: same host, boot and PID namespace,
pid gone or restarted. Pods on other machines never qualify. A fleet adds one
more kind of evidence, recorded in Redis by the workers themselves:

- a worker identity (``owner_id``) registers each *incarnation* when it starts;
  the server numbers them in registration order, and a strictly newer one
  proves every older one gone (the identity is unique to one running worker,
  e.g. a StatefulSet pod name);
- a worker records its own graceful exit, for that exact incarnation.

Both are one script each (``worker_incarnation-1.lua``): no read-then-write,
so an old pod's exit landing after its successor registered (a rolling
restart with overlap) marks only the old incarnation. An incarnation nobody
registered cannot be ordered and is never dead by this evidence.

A lapsed lease alone is never evidence (LV-3), and neither is silence: a worker
that vanished without a successor or an exit record stays "not provably dead",
and only an abandon request (reconciled after its lease lapses) closes its
OwnerBound work.

One hash, ``<ns>:workers:{<ns>}``, holds one field per worker identity with
its latest ``KEEP_INCARNATIONS`` incarnations, so its size is bounded by the
number of worker identities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lash_streams.errors import InvalidId
from lash_streams.ids import id_bytes
from lash_streams.model import LeaseOwnerIdentity
from lash_streams.semantics.inputs import require

if TYPE_CHECKING:
    from lash_streams.store import Store

#: Incarnations remembered per worker identity. One older than this many
#: restarts is forgotten, and is then no longer provably dead: its rows wait
#: for an abandon request, as a silent holder's do.
KEEP_INCARNATIONS = 64


@dataclass(frozen=True)
class Incarnation:
    incarnation_id: str
    order: int  # 0 for an exit nobody registered
    state: str  # "running" | "exited"
    since_ms: int


def workers_key(store: Store) -> str:
    """The hash of every worker identity's incarnations."""
    return f"{store.namespace}:workers:{{{store.namespace}}}"


def _checked(owner: LeaseOwnerIdentity) -> LeaseOwnerIdentity:
    require(owner, LeaseOwnerIdentity, "owner")
    for what, value in (("owner_id", owner.owner_id), ("incarnation_id", owner.incarnation_id)):
        id_bytes(what, value)  # UTF-8, bounded
        if not value or "\n" in value:  # one line per incarnation in the hash
            raise InvalidId(f"{what} must be non-empty and without a newline, got {value!r}")
    return owner


async def _transition(store: Store, mode: str, owner: LeaseOwnerIdentity) -> None:
    owner_id, incarnation_id = worker_of(_checked(owner))
    key = workers_key(store)
    args = [mode, owner_id, incarnation_id, KEEP_INCARNATIONS]
    # Idempotent: a repeat finds its own line and changes nothing.
    await store.retry.idempotent(
        f"{mode} worker `{owner_id}`",
        lambda: store.scripts.worker_incarnation(keys=[key], args=args),
    )


async def register_incarnation(store: Store, owner: LeaseOwnerIdentity) -> None:
    """Record that this incarnation now runs as ``owner.owner_id``; it proves
    every incarnation registered before it gone."""
    await _transition(store, "register", owner)


async def record_exit(store: Store, owner: LeaseOwnerIdentity) -> None:
    """Record this exact incarnation's graceful exit (never a newer one's)."""
    await _transition(store, "exit", owner)


async def incarnations(store: Store, owner_id: str) -> list[Incarnation]:
    """The remembered incarnations of a worker identity, newest first."""
    raw = await store.command("read worker", "hget", workers_key(store), owner_id)
    return _parsed(raw) if raw else []


async def all_incarnations(store: Store) -> dict[str, list[Incarnation]]:
    """Every worker identity's remembered incarnations, newest first, in one
    read (for operators: ``lash-streams stats`` and ``workers``)."""
    raw: dict[Any, Any] = await store.command("read workers", "hgetall", workers_key(store))
    named = {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in raw.items()}
    return {owner_id: _parsed(named[owner_id]) for owner_id in sorted(named)}


def _parsed(raw: Any) -> list[Incarnation]:
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    if text.startswith("{"):
        # The earlier single-incarnation form; the next transition rewrites it.
        import msgspec

        old = msgspec.json.decode(text)
        return [Incarnation(old["incarnation_id"], 1, old["state"], int(old["since_ms"]))]
    rows = []
    for line in text.splitlines():
        order, state, since, incarnation_id = line.split(" ", 3)
        rows.append(Incarnation(incarnation_id, int(order), state, int(since)))
    return rows


def worker_of(holder: LeaseOwnerIdentity) -> tuple[str, str]:
    """The worker identity and incarnation behind a lease holder: recovery
    attempts hold leases as ``<owner>:recovery:<attempt>`` with incarnation
    ``<incarnation>/<attempt>`` (SW-4)."""
    owner_id, sep, _ = holder.owner_id.partition(":recovery:")
    if not sep:
        return holder.owner_id, holder.incarnation_id
    return owner_id, holder.incarnation_id.split("/", 1)[0]


async def is_provably_dead(store: Store, holder: LeaseOwnerIdentity) -> bool:
    """Fleet evidence: this exact incarnation recorded its exit, or a strictly
    newer incarnation of its worker identity registered."""
    owner_id, incarnation_id = worker_of(holder)
    rows = await incarnations(store, owner_id)
    mine = next((row for row in rows if row.incarnation_id == incarnation_id), None)
    if mine is None:
        return False
    if mine.state == "exited":
        return True
    return mine.order > 0 and any(row.order > mine.order for row in rows)
