"""The record's mutable facets (ST-2, AB-3, WS-*, XR-1, wake target): one
``set_facet`` script per change, in the record's slot, fenced when a lease is
given. Shared by registration-side writes and session deletion."""

from __future__ import annotations

from typing import Any

from lash_streams.errors import UnknownProcess
from lash_streams.model import ProcessRecord
from lash_streams.store.core import StoreCore, fence_args, fenced_error, text


def pairs(reply: list[Any]) -> dict[bytes, bytes]:
    """The record's fields from a script reply ``[status, k1, v1, k2, v2, ...]``."""
    return {reply[i]: reply[i + 1] for i in range(1, len(reply), 2)}


def record_reply(core: StoreCore, reply: list[Any]) -> ProcessRecord:
    return core.record_from_fields(pairs(reply))


async def set_facet(
    core: StoreCore, process_id: str, op: str, value: bytes | str, lease: Any = None
) -> list[Any]:
    keys = core.keys.process(process_id)
    args = [op, value, *fence_args(lease)]
    reply: list[Any] = await core.retry.idempotent(
        f"{op} on process `{process_id}`",
        lambda: core.scripts.set_facet(keys=[keys.record, keys.lease], args=args),
    )
    status = text(reply[0])
    if status == "NOPROC":
        core.forget(process_id)
        raise UnknownProcess(process_id)
    if status == "FENCED":
        raise fenced_error(process_id, op)
    return reply
