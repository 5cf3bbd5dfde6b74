"""A plain client of one cluster node, for the blocking reads a cluster
client multiplexes poorly (``StoreCore.blocking_for``).

It routes nothing itself: the cluster client says which node holds a key.
When a slot has moved, the node answers MOVED or ASK; the cluster client only
learns of it from its own commands, so this client makes it learn (a refresh
of its slot map) and reports a transient fault: the caller reads again, on
the new owner. Without the refresh a reader whose slot moved would be sent to
the old node for ever."""

from __future__ import annotations

import contextlib
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import AskError, MovedError
from redis.exceptions import ConnectionError as RedisConnectionError

__all__ = ["NodeClient"]


class NodeClient(Redis):
    def __init__(self, cluster: Any, **options: Any) -> None:
        super().__init__(**options)
        self._cluster = cluster

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        except (MovedError, AskError) as err:
            manager = getattr(self._cluster, "nodes_manager", None)
            if manager is not None:
                with contextlib.suppress(Exception):
                    await manager.initialize()
            raise RedisConnectionError(f"the slot moved ({err}): read again") from err
