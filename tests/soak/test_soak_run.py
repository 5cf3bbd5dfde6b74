"""The short seeded soak (issue 14): the workload's OS processes on a private
server started here, SIGKILLed and paused, every invariant holds; and the soak
as a namespace-limited ACL user (docs/soak.md's permissions), which skips the
pause with a note instead of failing."""

from __future__ import annotations

import time

import pytest
from redis.asyncio import Redis

from lash_streams.server import LocalServer
from lash_streams.soak.checker import OKAY
from lash_streams.soak.config import SoakConfig
from lash_streams.soak.run import run_soak
from tests.test_acl import documented_acl

pytestmark = pytest.mark.slow


async def leftovers(url: str) -> list[bytes]:
    client = Redis.from_url(url)
    try:
        return [key async for key in client.scan_iter(match="soak-*")]
    finally:
        await client.aclose()


async def test_a_seeded_soak_with_kills_and_pauses_holds_every_invariant():
    started = time.monotonic()
    async with LocalServer(persistence="aof") as server:
        config = SoakConfig(duration_s=20, faults=("kill", "pause"), seed=11, fault_every_s=3)
        outcome = await run_soak(server.url, config)
        assert await leftovers(server.url) == []  # the run's namespace is gone
    bad = {v.name: (v.status, v.examples) for v in outcome.verdicts if v.status != OKAY}
    assert bad == {}, outcome.notes
    kinds = [fault for _, fault, _ in outcome.fault_log]
    assert "kill" in kinds and "pause" in kinds, outcome.fault_log
    assert outcome.run["acknowledged_ops"] > 300
    assert outcome.run["ops"]["stale_append"] > 0 and outcome.run["ops"]["wake"] > 0
    assert outcome.notes == []
    assert time.monotonic() - started < 90  # about 25 s here; room for a loaded CI machine


async def test_a_namespace_user_without_client_pause_skips_the_pause_with_a_note():
    async with LocalServer() as server:
        admin = Redis.from_url(server.url)
        tokens = ["~soak-*" if t == "~lash:*" else t for t in documented_acl()]
        tokens = [">pw" if t == ">CHANGE-ME" else t for t in tokens]
        await admin.execute_command(*tokens[:2], "soaker", *tokens[3:])
        await admin.aclose()
        url = server.url.replace("redis://", "redis://soaker:pw@")
        outcome = await run_soak(url, SoakConfig(duration_s=4, faults=("pause",), seed=2))
        assert await leftovers(server.url) == []
    assert [v.name for v in outcome.verdicts if v.status != OKAY] == []
    assert any(
        n.startswith("pause: skipped, the server refused CLIENT PAUSE") for n in outcome.notes
    )
    assert outcome.facts.durability_tier == "inline"  # no CONFIG GET: not known to be durable
