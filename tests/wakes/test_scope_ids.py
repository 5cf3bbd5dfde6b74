"""Scopes mean one thing (issue 16): a wake consumer's scopes are
``SessionScope``s or scope ids; a bare session id is refused, not read as a
scope nothing writes to."""

from __future__ import annotations

import pytest

from lash_streams import errors
from lash_streams.model import SessionScope

from ..conformance.fixtures import reg, req, scope, wake


async def test_a_bare_session_id_as_a_scope_is_refused_with_a_hint(bus):
    """`wake_consumer(scopes=["sess-9"])` read the stream of a scope whose id
    is `sess-9`, which nothing writes (session scopes are `session:<id>`):
    silently nothing. Now it is refused and the message says what to pass."""
    with pytest.raises(errors.InvalidValue, match=r"SessionScope\(session_id='sess-9'\)"):
        bus.wake_consumer(group="g", consumer="c", scopes=["sess-9"])
    with pytest.raises(errors.InvalidValue, match="list of scopes"):
        bus.wake_consumer(group="g", consumer="c", scopes="session:sess-9")
    with pytest.raises(errors.InvalidValue):
        bus.wake_consumer(group="g", consumer="c", scopes=[42])
    with pytest.raises(errors.InvalidValue):
        await bus.trim_wakes("sess-9")


async def test_a_scope_id_string_reads_the_same_wakes_as_its_session_scope(bus):
    await bus.register_process(reg("p", wake("w")))
    await bus.append_event("p", req("w", {"wake_input": "hello"}, target=scope("sess-9")))
    consumer = bus.wake_consumer(group="g", consumer="c", scopes=["session:sess-9"], block_ms=50)
    try:
        message = await consumer.next(timeout=2)
        assert message is not None and message.scope_id == SessionScope(session_id="sess-9").id()
        await message.ack()
    finally:
        await consumer.aclose()
