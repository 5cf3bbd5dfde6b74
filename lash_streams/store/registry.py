"""lash's ``ProcessRegistry`` on Redis: the store's parts composed once.

Each part extends :class:`~lash_streams.store.core.StoreCore` only and owns one
concern; a method is found by its concern:

- ``processes``: registration, facets, ``get_process``, listings, ``ack_wake``
- ``events``: ``events_after``, ``recent_events``, ``count_events_through``,
  ``wake_events_after``
- ``append``: ``append_event``, ``send_signal``, ``request_cancel``,
  ``complete_process``; ``batch``: ``append_events``
- ``delivery``: wake delivery and the outbox relay
- ``leases``: claim, reclaim, renew, release, get
- ``grants``: handle grants and session deletion
- ``retention``: ``prune_terminal_processes``
- ``dispatch``: ready streams and the delayed schedule (``start_job``)
- ``awaiting``: ``await_terminal``, ``await_event``, ``tail_events``

Parts never call each other through ``self``; what they share is on the core or
in a helper module over it (``worklist``, ``facets``, ``events.read_range``,
``append.prepare``/``settle``, ``delivery.deliver_wakes``).
"""

from __future__ import annotations

from lash_streams.store.append_ops import AppendOps
from lash_streams.store.awaiting import AwaitOps
from lash_streams.store.batch import BatchOps
from lash_streams.store.delivery import DeliveryOps
from lash_streams.store.dispatch import DispatchOps
from lash_streams.store.events import EventReadOps
from lash_streams.store.grants import GrantOps
from lash_streams.store.leases import LeaseOps
from lash_streams.store.processes import ProcessOps
from lash_streams.store.retention import RetentionOps


class Store(
    ProcessOps,
    EventReadOps,
    AppendOps,
    BatchOps,
    DeliveryOps,
    LeaseOps,
    GrantOps,
    RetentionOps,
    AwaitOps,
    DispatchOps,
):
    """Every ``ProcessRegistry`` method of lash under the same name, async, plus
    awaiting. Coordination (wakes, fleet, recovery) takes this, never the bus."""


__all__ = ["Store"]
