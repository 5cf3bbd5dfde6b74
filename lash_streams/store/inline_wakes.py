"""Wakes delivered by the append itself (single server, ``append_events``).

On a single server every key lives on one node, so the ``append_batch``
script can deliver a wake to its scope's stream in the step that appends its
event: no delivery intent, no second script call, nothing half done for the
relay to finish (RX-7 holds trivially: the event and its delivery commit
together or not at all).

The delivery is built here, before the call, for the sequence the event is
expected to get (the last one this client saw, plus its place in the batch)
with a random number standing for the server time, which the script puts in.
The script delivers it only if the event got that sequence and the wake that
target; otherwise (another writer appended meanwhile, the wake target changed)
it writes the intent as on a cluster and the appender delivers it after the
call (``delivery.deliver_wakes``), so a wrong guess costs the old path, never
a wrong delivery.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from lash_streams import observability as obs
from lash_streams.model import ProcessEventAppendRequest, ProcessRecord, ProcessWakeDelivery
from lash_streams.model._codec import encode
from lash_streams.semantics.wake import build_wake_delivery
from lash_streams.store.append import Planned, sequenced
from lash_streams.store.core import StoreCore
from lash_streams.store.delivery import source_key

_SEP = b"\0"


def delivery_here(
    core: StoreCore,
    record: ProcessRecord,
    request: ProcessEventAppendRequest,
    planned: Planned,
    seq: int,
    key_index: int,
) -> tuple[list[str], bytes] | None:
    """The script keys and the packed delivery of a waking item, for
    ``append_batch`` to deliver in its step (``lua/append_batch-4n.lua``);
    None when it has no target or cannot be packed (the intent path then)."""
    target = request.wake_target_scope or record.wake_target
    if target is None or planned.plan.event.semantics.wake is None:
        return None
    stand_in = str(random.randrange(10**18, 10**19))
    delivery = build_wake_delivery(record, sequenced(planned, seq, int(stand_in)), target)
    if delivery is None:
        return None
    body = encode(delivery)
    if body.count(stand_in.encode()) != 1:
        return None  # the number is in the payload too: the intent path
    scope_id = delivery.target_scope_id
    small = [
        str(key_index).encode(),
        str(seq).encode(),
        stand_in.encode(),
        encode(target),
        delivery.wake_id.encode(),
        source_key(delivery).encode(),
        scope_id.encode(),
    ]
    if any(_SEP in field for field in small):
        return None
    keys = [
        core.keys.wake_stream(scope_id),
        core.keys.wake_dedupe(scope_id, delivery.wake_id),
        core.keys.fleet_stream_of(scope_id),
        core.keys.fleet_groups_of(scope_id),
    ]
    return keys, _SEP.join([*small, body])


async def observe(delivered: Sequence[tuple[ProcessWakeDelivery, bool]]) -> None:
    """The wakes an append delivered itself, counted (and traced) as a
    ``deliver_wakes`` call is."""
    if obs.hooks is None or not delivered:
        return
    results = [new for _, new in delivered]

    async def done() -> list[bool]:
        return results

    items: list[tuple[ProcessWakeDelivery, Any]] = [(d, None) for d, _ in delivered]
    await obs.hooks.deliver(done(), items)
