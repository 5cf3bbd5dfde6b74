"""``lash-streams doctor``: the server, what an acknowledged write survives,
the namespace at a glance, and advice. Every probe tolerates a refused or
renamed command (managed servers, least-privilege ACL users): it reports
``unknown`` instead of failing."""

from __future__ import annotations

from typing import Any

import typer

import lash_streams as ls
from lash_streams.cli.ops import (
    Json,
    Namespace,
    RequiredUrl,
    _text,
    console,
    emit_json,
    namespace_counts,
    run,
)


def register_doctor(app: typer.Typer) -> None:
    @app.command()
    def doctor(url: RequiredUrl, namespace: Namespace = "lash", json: Json = False) -> None:
        """Server version, features, persistence, memory policy, with advice;
        and the namespace's counts (running, terminal, pending wake intents,
        relay dead letters, workers)."""

        async def action(bus: ls.Bus) -> dict[str, Any]:
            # Managed servers and least-privilege users refuse or rename INFO,
            # CONFIG and COMMAND: each probe that fails says "unknown".
            try:
                info = await bus.redis.info()
            except Exception:
                info = {}
            config: dict[str, Any] = {}
            for name in ("maxmemory-policy", "appendonly", "appendfsync", "notify-keyspace-events"):
                try:
                    config.update(await bus.redis.config_get(name))
                except Exception:
                    config[name] = None
            try:
                docs = await bus.redis.execute_command("COMMAND", "DOCS", "XREADGROUP")
                claim = "claim" in repr(docs).lower()
            except Exception:  # COMMAND DOCS needs Redis 7 or Valkey
                claim = False
            return {
                "info": info,
                "config": config,
                "durability": bus.durability_tier().value,
                "survives": bus.durability(),
                "cluster": bus.cluster,
                "claim": claim,
                "namespace": await namespace_counts(bus),
            }

        out = run(url, namespace, action)
        info, config = out["info"], {k: _text(v) for k, v in out["config"].items()}
        valkey = info.get("valkey_version")
        server = f"valkey {valkey}" if valkey else f"redis {info.get('redis_version')}"
        if not info:
            server = "unknown (INFO refused)"
        report = {
            "server": server,
            "cluster": bool(info.get("cluster_enabled")) if info else out["cluster"],
            "durability_tier": out["durability"],
            # What an acknowledged write survives, for writes that do not wait
            # (connect(durability=...) changes it: docs/guarantees.md).
            "survives": {
                "process_crash": out["survives"].process_crash,
                "server_crash": out["survives"].server_crash,
                "failover": out["survives"].failover,
            },
            "replicas_connected": out["survives"].replicas_connected,
            "maxmemory_policy": config.get("maxmemory-policy"),
            "appendonly": config.get("appendonly"),
            "appendfsync": config.get("appendfsync"),
            # Detected, not used yet: consumers reclaim with XAUTOCLAIM everywhere.
            "xreadgroup_claim": out["claim"],
            "advice": _advice(config, out["survives"].replicas_connected),
            "namespace": out["namespace"],
        }
        if json:
            emit_json(report)
            return
        for key, value in report.items():
            if key not in ("advice", "namespace", "survives"):
                console.print(f"{key}: {'unknown' if value is None else value}")
        survives = report["survives"]
        console.print(
            "an acknowledged write survives: "
            + ", ".join(
                f"{fault.replace('_', ' ')}: {verdict}" for fault, verdict in survives.items()
            ),
            markup=False,
        )
        counts = report["namespace"]
        console.print(
            f"namespace {counts['name']}: {counts['running']} running, {counts['terminal']} "
            f"terminal (not pruned yet), {counts['index_shards']} index shard(s), "
            f"{counts['pending_outboxes']} processes with wake intents waiting for the relay, "
            f"{counts['relay_dead_letters']} relay dead letters, {counts['workers']} workers",
            markup=False,
        )
        for line in report["advice"]:
            console.print(f"[yellow]advice[/yellow]: {line}")


def _advice(config: dict[str, Any], replicas: int | None = None) -> list[str]:
    advice = []
    if replicas:
        advice.append(
            f"{replicas} replica(s) copy writes asynchronously: a failover loses the latest "
            "acknowledged writes unless clients connect with durability=Durability(replicas=N)"
        )
    if config.get("maxmemory-policy") not in (None, "noeviction"):
        advice.append("set maxmemory-policy noeviction: evicting process keys loses durable state")
    if config.get("appendonly") == "no":
        advice.append("enable AOF (appendonly yes): without it a restart loses every process")
    elif config.get("appendfsync") not in (None, "always"):
        advice.append(
            "appendfsync always is needed for the durable tier; "
            "everysec can lose about 1 s of writes"
        )
    return advice
