"""Failures you can see (issue 16): during a server outage a wake consumer's
``next()`` returned None for ever with no log and no metric, so the pod
looked healthy. Now the outage is logged when it starts (again every 30 s
while it lasts) and when it ends, and each failed read is counted."""

from __future__ import annotations

import asyncio
import logging

import lash_streams as ls
from lash_streams.server import LocalServer

from ..conformance.fixtures import scope


async def test_a_wake_consumer_says_when_the_server_is_unreachable_and_back(
    observed, namespace, caplog
):
    server = LocalServer(persistence="none").start()
    try:
        bus = await ls.connect(server.url, namespace=namespace)
        consumer = bus.wake_consumer(group="g", consumer="c", scopes=[scope("s")], block_ms=50)
        await consumer.ensure_groups()
        await asyncio.to_thread(server.kill)
        with caplog.at_level(logging.WARNING, logger="lash_streams.wakes"):
            assert await consumer.next(timeout=1.5) is None
            down = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
            assert len(down) == 1 and "wake consumer `c` of `g`" in down[0]
            faults = observed.registry.get_sample_value(
                "lash_streams_consumer_server_faults_total", {"group": "g"}
            )
            assert faults is not None and faults >= 2
            await asyncio.to_thread(server.restart)
            assert await consumer.next(timeout=3) is None
            assert any("answers again" in r.getMessage() for r in caplog.records)
        await consumer.aclose()
        await bus.aclose()
    finally:
        server.stop()
