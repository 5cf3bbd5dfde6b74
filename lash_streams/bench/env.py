"""Where a result was measured: server, persistence mode, machine."""

from __future__ import annotations

import os
import platform
from typing import Any

from redis.asyncio import Redis


async def server_facts(client: Redis) -> dict[str, Any]:
    server = await client.info("server")
    persistence = await client.info("persistence")
    config = await client.config_get("appendfsync")
    save = await client.config_get("save")
    aof = bool(int(persistence.get("aof_enabled", 0)))
    return {
        "redis_version": server.get("redis_version"),
        "valkey_version": server.get("valkey_version"),
        "server": (
            f"valkey {server['valkey_version']}"
            if server.get("valkey_version")
            else f"redis {server.get('redis_version')}"
        ),
        "aof": aof,
        "appendfsync": config.get("appendfsync") if aof else None,
        "rdb_save": save.get("save") or "",
        "persistence": (f"AOF appendfsync {config.get('appendfsync')}" if aof else "no AOF")
        + (f", RDB save '{save.get('save')}'" if save.get("save") else ", no RDB"),
    }


def machine_facts() -> dict[str, Any]:
    return {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }
