"""docker/compose.yaml is valid and wired as the docs say."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parent.parent / "docker" / "compose.yaml"


def test_compose_file_parses_and_names_the_services():
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert {"redis", "cluster-1", "cluster-2", "cluster-3", "cluster-init", "demo"} <= set(services)
    redis_cmd = services["redis"]["command"]
    assert "--appendonly" in redis_cmd and "noeviction" in redis_cmd
    assert "lash-streams demo --url redis://redis:6379/0" in services["demo"]["command"]
    assert "--cluster create" in services["cluster-init"]["command"]
    for name in ("cluster-1", "cluster-2", "cluster-3"):
        assert services[name]["image"].startswith("redis:")
