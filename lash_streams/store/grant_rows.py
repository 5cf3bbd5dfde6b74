"""Grant rows stamped with their process's incarnation (GR-1..GR-3, PR-3, PR-4).

A grant is written in two slots: the scope's hash (``<ns>:s:{<scope>}:grants``,
process id -> row) and the process's reverse index (``<ns>:p:{<pid>}:grants``,
a set). Both carry the **incarnation** of the process they were written for,
the record's ``inc`` field (``<created>-<random token>``, written by
registration; a record stored before incarnations has only ``created``, which
stands in for it):

- scope row: ``<inc>|<ProcessHandleGrant JSON>``
- reverse index member: ``<inc>|<SessionScope JSON>``

A value stored before incarnations is the bare JSON (it starts with ``{``)
and carries the empty stamp.

A row counts only while its stamp is the record's current incarnation; a row
of a pruned process, or of an earlier process under the same id, is absent to
every reader, who may delete it (by stamp: ``drop_grant-1.lua`` never removes
a newer grant of the same scope and process). A bare row counts only for a
record without ``inc`` whose reverse index holds the bare scope (the previous
layout always indexed a live grant that way; prune deleted the index first).

Shared by the grant part and retention (functions over the core, like
``worklist`` and ``facets``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lash_streams.model import ProcessHandleGrant, SessionScope
from lash_streams.model._codec import decode
from lash_streams.store.core import StoreCore

#: The stamp of a value stored before incarnations.
UNSTAMPED = b""

Fields = dict[bytes, bytes]


def incarnation(fields: Fields) -> bytes:
    """The record's incarnation (its ``created`` time for a record stored
    before incarnations)."""
    return fields.get(b"inc") or fields[b"created"]


def stamped(inc: bytes, body: bytes) -> bytes:
    return inc + b"|" + body


def split(raw: bytes) -> tuple[bytes, bytes]:
    """``(stamp, JSON)`` of a stored row or reverse index member."""
    if raw[:1] == b"{":
        return UNSTAMPED, raw
    stamp, _, body = raw.partition(b"|")
    return stamp, body


def current(stamp: bytes, fields: Fields) -> bool:
    """Whether a stamped value was written for the record's incarnation; an
    unstamped one can only belong to a record without ``inc``."""
    if not fields:
        return False
    if stamp == UNSTAMPED:
        return b"inc" not in fields
    return stamp == incarnation(fields)


async def read_records(core: StoreCore, process_ids: Iterable[str]) -> dict[str, Fields]:
    """Record fields of many ids in one pipeline (empty for a missing record)."""
    pids = list(dict.fromkeys(process_ids))
    if not pids:
        return {}
    keys = [core.keys.process(pid).record for pid in pids]

    async def run() -> list[Fields]:
        pipe = core.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        result: list[Fields] = await pipe.execute()
        return result

    rows = await core.retry.idempotent("read process records", run)
    return dict(zip(pids, rows, strict=True))


async def read_index(core: StoreCore, process_id: str) -> set[bytes]:
    key = core.keys.process(process_id).grants
    members: set[bytes] = await core.retry.idempotent(
        "read grant index", lambda: core.redis.smembers(key)
    )
    return members


def bare_scope_ids(members: Iterable[bytes]) -> set[str]:
    """Scope ids of the unstamped members of a reverse index."""
    return {decode(m, SessionScope).id() for m in members if split(m)[0] == UNSTAMPED}


@dataclass(frozen=True, slots=True)
class Row:
    process_id: str
    stamp: bytes
    grant: ProcessHandleGrant
    fields: Fields


async def sort_rows(
    core: StoreCore, session_scope: SessionScope, rows: Mapping[str, bytes]
) -> tuple[list[Row], list[tuple[str, bytes]]]:
    """A scope's rows -> (live rows ascending by process id, stale ``(pid, stamp)``)."""
    pids = sorted(rows, key=str.encode)
    records = await read_records(core, pids)
    parsed = {pid: split(rows[pid]) for pid in pids}
    scope_id = session_scope.id()
    live: list[Row] = []
    stale: list[tuple[str, bytes]] = []
    for pid in pids:
        stamp, body = parsed[pid]
        fields = records[pid]
        ok = current(stamp, fields)
        if ok and stamp == UNSTAMPED:
            ok = scope_id in bare_scope_ids(await read_index(core, pid))
        if ok:
            live.append(Row(pid, stamp, decode(body, ProcessHandleGrant), fields))
        else:
            stale.append((pid, stamp))
    return live, stale


async def drop_row(core: StoreCore, scope_id: str, process_id: str, stamp: bytes) -> None:
    """Delete a scope row if (and only if) it still carries ``stamp``."""
    key = core.keys.scope_grants(scope_id)
    drop = core.scripts.drop_grant
    await core.retry.idempotent(
        f"drop stale grant of `{process_id}`",
        lambda: drop(keys=[key], args=[process_id, stamp]),
    )


async def drop_rows(core: StoreCore, scope_id: str, stale: Iterable[tuple[str, bytes]]) -> None:
    for pid, stamp in stale:
        await drop_row(core, scope_id, pid, stamp)


async def finish(core: StoreCore, process_id: str, members: Iterable[bytes]) -> None:
    """Finish the clean-up of reverse index members of a dead incarnation (the
    intent a prune leaves): drop each scope row still carrying the member's
    stamp, then the member. Idempotent; safe while the id lives again (a new
    incarnation's rows and members carry another stamp)."""
    key = core.keys.process(process_id).grants
    for member in members:
        stamp, body = split(member)
        scope = decode(body, SessionScope)
        await drop_row(core, scope.id(), process_id, stamp)
        await core.command("drop grant index entry", "srem", key, member)


async def process_grants(
    core: StoreCore, process_id: str, fields: Fields
) -> list[tuple[SessionScope, ProcessHandleGrant]]:
    """The live grants of one incarnation, found through its reverse index;
    members of earlier incarnations found on the way are cleaned up."""
    members = await read_index(core, process_id)
    leftovers: list[bytes] = []
    scopes: dict[str, SessionScope] = {}
    for member in members:
        stamp, body = split(member)
        if current(stamp, fields):
            scope = decode(body, SessionScope)
            scopes.setdefault(scope.id(), scope)
        else:
            leftovers.append(member)
    if leftovers:
        await finish(core, process_id, leftovers)
    bare = bare_scope_ids(members) if b"inc" not in fields else set()
    found: list[tuple[SessionScope, ProcessHandleGrant]] = []
    for scope_id, scope in scopes.items():
        key = core.keys.scope_grants(scope_id)
        raw: bytes | None = await core.command("read grant", "hget", key, process_id)
        if raw is None:
            continue  # a grant write that never got to its row, or a revoke
        stamp, body = split(raw)
        if current(stamp, fields) and (stamp != UNSTAMPED or scope_id in bare):
            found.append((scope, decode(body, ProcessHandleGrant)))
        else:
            await drop_row(core, scope_id, process_id, stamp)
    return found


__all__ = [
    "UNSTAMPED",
    "Row",
    "bare_scope_ids",
    "current",
    "drop_row",
    "drop_rows",
    "finish",
    "incarnation",
    "process_grants",
    "read_index",
    "read_records",
    "sort_rows",
    "split",
]
