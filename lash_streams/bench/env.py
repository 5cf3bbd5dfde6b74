"""Where a result was measured: server(s), persistence mode, machine."""

from __future__ import annotations

import os
import platform
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster


async def server_facts(client: Redis) -> dict[str, Any]:
    server = await client.info("server")
    persistence = await client.info("persistence")
    config = await client.config_get("appendfsync")
    save = await client.config_get("save")
    return _facts(server, persistence, config, save)


async def facts_per_master(client: RedisCluster) -> list[dict[str, Any]]:
    """``server_facts`` of every master of a cluster, each with its address."""
    every = RedisCluster.PRIMARIES
    server = await client.info("server", target_nodes=every)
    persistence = await client.info("persistence", target_nodes=every)
    config = await client.config_get("appendfsync", target_nodes=every)
    save = await client.config_get("save", target_nodes=every)
    return [
        {"address": node, **_facts(server[node], persistence[node], config[node], save[node])}
        for node in sorted(server)
    ]


async def info_per_master(client: Any, section: str) -> list[dict[str, Any]]:
    """``INFO section`` of every node holding data: the server, or each
    master of a cluster (a cluster client's plain ``info`` asks one node)."""
    if isinstance(client, RedisCluster):
        replies = await client.info(section, target_nodes=RedisCluster.PRIMARIES)
        return list(replies.values())
    return [await client.info(section)]


def _facts(
    server: dict[str, Any], persistence: dict[str, Any], config: Any, save: Any
) -> dict[str, Any]:
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
