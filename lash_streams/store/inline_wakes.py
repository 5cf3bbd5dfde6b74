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
from lash_streams.model import (
    ProcessEventAppendRequest,
    ProcessRecord,
    ProcessWakeDelivery,
    SessionScope,
)
from lash_streams.model._codec import encode
from lash_streams.semantics.wake import build_wake_delivery
from lash_streams.store.append import Planned, sequenced
from lash_streams.store.core import StoreCore
from lash_streams.store.delivery import source_key

_SEP = b"\0"


class InlineWakes:
    """The wakes of one ``append_events`` call delivered in its script: each
    waking item's packed delivery, and the keys that go after every
    process's (``lua/append_batch-4n.lua``)."""

    def __init__(self, core: StoreCore, first_key: int) -> None:
        self.core = core
        self.first_key = first_key
        self.keys: list[str] = []
        # One stand-in for the server time per call: it only has to be absent
        # from each delivery but once (checked per delivery).
        self.stand_in = str(random.randrange(10**18, 10**19))
        self._stand_in = self.stand_in.encode()
        self._scopes: dict[str, tuple[str, str, str]] = {}
        self._targets: dict[SessionScope, bytes] = {}

    def pack(
        self,
        record: ProcessRecord,
        request: ProcessEventAppendRequest,
        planned: Planned,
        target_json: bytes,
        seq: int,
    ) -> bytes:
        """The packed delivery of a waking item, its keys added; ``b""``
        when it has no target or cannot be packed (the intent path then)."""
        target = request.wake_target_scope or record.wake_target
        if target is None or planned.plan.event.semantics.wake is None:
            return b""
        event = sequenced(planned, seq, int(self.stand_in))
        delivery = build_wake_delivery(record, event, target)
        if delivery is None:
            return b""
        body = encode(delivery)
        if body.count(self._stand_in) != 1:
            return b""  # the number is in the payload too: the intent path
        if not target_json:
            target_json = self._targets.get(target) or self._targets.setdefault(
                target, encode(target)
            )
        scope_id = delivery.target_scope_id
        head = _SEP.join(
            [
                str(self.first_key + len(self.keys)).encode(),
                str(seq).encode(),
                self._stand_in,
                target_json,
                delivery.wake_id.encode(),
                source_key(delivery).encode(),
                scope_id.encode(),
            ]
        )
        if head.count(_SEP) != 6:
            return b""  # a separator inside an id: the intent path
        scope_keys = self._scopes.get(scope_id)
        if scope_keys is None:
            ks = self.core.keys
            scope_keys = (
                ks.wake_stream(scope_id),
                ks.fleet_stream_of(scope_id),
                ks.fleet_groups_of(scope_id),
            )
            self._scopes[scope_id] = scope_keys
        stream, notices, groups = scope_keys
        self.keys += [
            stream,
            self.core.keys.wake_dedupe(scope_id, delivery.wake_id),
            notices,
            groups,
        ]
        return head + _SEP + body


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
