"""A delivery nobody settles (issue 16): a forgotten ack() never warned, and
the wake stayed the consumer's for ever, kept alive in the background."""

from __future__ import annotations

import asyncio
import logging

from ..conformance.fixtures import reg, req, scope, wake


async def test_a_delivery_left_unsettled_is_warned_about_once(bus, caplog):
    """A forgotten ack() never warned (issue 16): the wake stayed this
    consumer's, kept alive in the background, and nothing said so."""
    await bus.register_process(reg("p", wake("w")))
    await bus.append_event("p", req("w", {"wake_input": "x"}, target=scope("s")))
    consumer = bus.wake_consumer(
        group="g", consumer="c", scopes=[scope("s")], claim_idle_ms=60, block_ms=20
    )
    consumer.unsettled_warn_s = 0.2  # the threshold is then 10 claim times: 0.6 s
    try:
        with caplog.at_level(logging.WARNING, logger="lash_streams.wakes"):
            message = await consumer.next(timeout=2)
            assert message is not None
            await asyncio.sleep(0.3)
            assert not [r for r in caplog.records if "in hand for" in r.getMessage()]
            await asyncio.sleep(0.8)
            warned = [r.getMessage() for r in caplog.records if "in hand for" in r.getMessage()]
            assert len(warned) == 1 and message.entry_id in warned[0]
            await asyncio.sleep(0.3)
            assert len([r for r in caplog.records if "in hand for" in r.getMessage()]) == 1
        assert await message.ack()
    finally:
        await consumer.aclose()
