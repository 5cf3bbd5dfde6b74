"""Reopen after close, and waiting on an appender in another OS process."""

from __future__ import annotations

import asyncio
import sys
import textwrap

import lash_streams as ls
from lash_streams.model import ProcessExternalRef, ProcessHandleDescriptor, ProcessLeaseCompletion

from ..conformance.fixtures import S, owner, plain, reg, req, scope, wake


async def test_reopen_after_close_keeps_everything(standalone_bus, namespace):
    """DT-1 / RX-13: close the bus, connect again, every fact is still there."""
    bus, url = standalone_bus
    await bus.register_process(reg("p", wake("w")))
    await bus.set_external_ref("p", ProcessExternalRef(backend="b", id="i"))
    await bus.grant_handle(scope("s"), "p", ProcessHandleDescriptor(kind="k"))
    first = await bus.append_event("p", req("w", {"wake_input": "x"}, key="k", target=scope("s")))
    await bus.ack_wake("p", 1)
    lease = (await bus.claim_process_lease("p", owner("o"), 60_000)).lease
    await bus.aclose()

    again = await ls.connect(url, namespace=namespace)
    try:
        record = await again.get_process("p")
        assert record is not None and record.external_ref == ProcessExternalRef(backend="b", id="i")
        assert [e.sequence for e in await again.events_after("p", 0)] == [1]
        assert await again.wake_events_after("p", 0) == []
        assert len(await again.list_handle_grants(scope("s"))) == 1
        held = await again.get_process_lease("p")
        assert held is not None and held.fencing_token == lease.fencing_token
        replay = await again.append_event(
            "p", req("w", {"wake_input": "x"}, key="k", target=scope("s"))
        )
        assert replay.event == first.event
        await again.complete_process_lease(ProcessLeaseCompletion.from_lease(lease))
        assert (await again.claim_process_lease("p", owner("o2"), 1000)).lease.fencing_token == 2
    finally:
        await again.aclose()


_APPENDER = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, {root!r})
    import lash_streams as ls
    from tests.conformance.fixtures import S, req

    async def main():
        async with ls.connect({url!r}, namespace={ns!r}) as bus:
            await asyncio.sleep(0.3)
            await bus.append_event("p", req("x", {{"from": "child"}}))
            await bus.complete_process("p", S("from another process"))

    asyncio.run(main())
    """
)


async def test_await_and_tail_across_os_processes(standalone_bus, namespace):
    """AW-1/AW-4 and RX-15: the appender is another OS process."""
    import os

    bus, url = standalone_bus
    await bus.register_process(reg("p", plain("x")))
    root = os.getcwd()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _APPENDER.format(root=root, url=url, ns=namespace)
    )
    seen = []

    async def tail() -> None:
        async for event in bus.tail_events("p", 0):
            seen.append(event.sequence)
            if event.semantics.terminal is not None:
                return

    output, _ = await asyncio.wait_for(
        asyncio.gather(bus.await_terminal("p", timeout=20), tail()), 20
    )
    assert output == S("from another process")
    assert seen == [1, 2]
    assert await child.wait() == 0
