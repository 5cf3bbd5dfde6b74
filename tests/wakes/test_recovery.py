"""Cross-slot safety and server restarts under consumers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

import pytest

import lash_streams as ls
from lash_streams.errors import ConsumerClosed
from lash_streams.server import LocalCluster, LocalServer

from ..conformance.fixtures import reg, req, scope, wake

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_CHILD = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    sys.path.insert(0, {root!r})
    import lash_streams as ls
    from lash_streams.store import delivery
    from tests.conformance.fixtures import req, scope

    async def die(core, items):
        # Killed after the event and its wake intent committed, before delivery.
        os.kill(os.getpid(), signal.SIGKILL)

    delivery.deliver_wakes = die

    async def main():
        bus = await ls.connect({url!r}, namespace={ns!r})
        request = req("w", {{"wake_input": "orphan"}}, key="k", target=scope("r"))
        await bus.append_event("p", request)

    asyncio.run(main())
    """
)


async def test_relay_finishes_a_wake_whose_appender_died(real_bus, namespace):
    """RX-7: the intent written with the event is delivered by the relay,
    exactly once, on a single node and on the cluster."""
    bus, url = real_bus
    await bus.register_process(reg("p", wake("w")))
    code = _CHILD.format(root=ROOT, url=url, ns=namespace)
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    stream = bus.keys.wake_stream("session:r")
    assert await bus.redis.xlen(stream) == 0
    assert await bus.redis.xlen(bus.keys.process("p").outbox) == 1
    assert await bus.relay_pending() == 1
    assert await bus.redis.xlen(stream) == 1
    assert await bus.redis.xlen(bus.keys.process("p").outbox) == 0
    assert await bus.relay_pending() == 0
    # The appender retrying its keyed append gets the same event, no new wake.
    again = await bus.append_event(
        "p", req("w", {"wake_input": "orphan"}, key="k", target=scope("r"))
    )
    assert again.event.sequence == 1 and await bus.redis.xlen(stream) == 1
    consumer = bus.wake_consumer(group="g", consumer="c", scopes=[scope("r")], block_ms=50)
    message = await consumer.next(timeout=2)
    assert message is not None and message.delivery == again.wake_delivery
    await message.ack()
    await consumer.aclose()


async def test_relay_after_delivery_but_before_clearing_the_intent_dedupes(bus):
    await bus.register_process(reg("p", wake("w")))
    result = await bus.append_event("p", req("w", {"wake_input": "x"}, target=scope("d")))
    # Simulate a writer that delivered but died before clearing its intent
    # (written and marked pending in one step, as the append script does).
    outbox = bus.keys.process("p").outbox
    await bus.redis.xadd(outbox, {"seq": 1, "scope": b'{"session_id":"d"}'})
    await bus.scripts.mark_pending(keys=[bus.keys.index_outbox], args=["p"])
    assert await bus.relay_pending() == 0
    assert await bus.redis.xlen(bus.keys.wake_stream("session:d")) == 1
    assert await bus.redis.xlen(outbox) == 0
    assert result.wake_delivery is not None


@pytest.mark.parametrize("persistence", ["none", "aof"])
@pytest.mark.parametrize("topology", ["single", "cluster"])
async def test_consumers_recover_from_a_server_restart(topology, persistence, namespace):
    if topology == "cluster":
        server: Any = LocalCluster(persistence=persistence).start()
        url = server.url.replace("redis://", "redis+cluster://")
    else:
        server = LocalServer(persistence=persistence).start()
        url = server.url
    try:
        bus = await ls.connect(url, namespace=namespace)
        await bus.register_process(reg("p", wake("w")))
        consumer = bus.wake_consumer(group="g", consumer="c", scopes=[scope("s")], block_ms=100)
        await consumer.ensure_groups()
        got: list[str] = []

        async def consume() -> None:
            while True:
                message = await consumer.next(timeout=0.2)  # raises once closed
                if message is not None:
                    got.append(message.delivery.input)
                    await message.ack()

        task = asyncio.create_task(consume())
        for i in range(3):
            await bus.append_event(
                "p", req("w", {"wake_input": f"a{i}"}, key=f"a{i}", target=scope("s"))
            )
        await _until(lambda: len(got) == 3)
        await asyncio.sleep(1.1)  # let appendfsync everysec reach the disk
        await asyncio.to_thread(server.restart)
        if persistence == "none":
            # Everything is gone, the group included: re-register and go on.
            await bus.register_process(reg("p", wake("w")))
        else:
            assert (await bus.get_process("p")) is not None
        for i in range(3):
            await bus.append_event(
                "p", req("w", {"wake_input": f"b{i}"}, key=f"b{i}", target=scope("s"))
            )
        await _until(lambda: sum(x.startswith("b") for x in got) == 3 or task.done())
        if task.done():
            task.result()  # surface the consumer's failure
        assert sorted(x for x in got if x.startswith("b")) == ["b0", "b1", "b2"]
        await consumer.aclose()  # its loop ends with ConsumerClosed
        with contextlib.suppress(ConsumerClosed):
            await task
        await bus.aclose()
    finally:
        server.stop()


def keyed(text: str):
    return req("w", {"wake_input": text}, key=text, target=scope("s"))


async def _until(check, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)
