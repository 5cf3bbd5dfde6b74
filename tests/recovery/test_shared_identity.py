"""Two live workers given one identity (issue 16): each registration proves
the other dead, so sweepers abandon a live worker's started rows, and before
this nothing said so. Now the worker that can tell (alive, yet superseded)
logs an error once."""

from __future__ import annotations

import asyncio
import logging

from lash_streams.model import LeaseOwnerIdentity


async def _one_pass(worker) -> None:
    stop = asyncio.Event()
    drive = asyncio.create_task(worker.run(0.01, stop=stop))
    await asyncio.sleep(0.2)
    stop.set()
    await drive


async def test_a_worker_says_when_another_registered_its_identity(bus, caplog):
    first = bus.recovery(LeaseOwnerIdentity.opaque("w1", "pod-a"), fleet_liveness=True)
    second = bus.recovery(LeaseOwnerIdentity.opaque("w1", "pod-b"), fleet_liveness=True)
    await first.register()
    with caplog.at_level(logging.ERROR, logger="lash_streams.recovery"):
        await _one_pass(first)
        assert not [r for r in caplog.records if "share this identity" in r.getMessage()]
        await second.register()
        await _one_pass(first)
        await _one_pass(first)
        errors = [r for r in caplog.records if "share this identity" in r.getMessage()]
        assert len(errors) == 1 and "pod-a" in errors[0].getMessage()
        await _one_pass(second)  # the newest incarnation is not told anything
        assert len([r for r in caplog.records if "share this identity" in r.getMessage()]) == 1


async def test_a_restart_after_an_exit_is_not_a_shared_identity(bus, caplog):
    first = bus.recovery(LeaseOwnerIdentity.opaque("w1", "pod-a"), fleet_liveness=True)
    await first.register()
    await first.shutdown()
    again = bus.recovery(LeaseOwnerIdentity.opaque("w1", "pod-a2"), fleet_liveness=True)
    await again.register()
    with caplog.at_level(logging.ERROR, logger="lash_streams.recovery"):
        await _one_pass(again)
    assert not [r for r in caplog.records if "share this identity" in r.getMessage()]
