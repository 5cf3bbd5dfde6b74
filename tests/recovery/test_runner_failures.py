"""A runner's failure says what went wrong (issue 16): its exception type and
traceback are kept in the failure and logged."""

from __future__ import annotations

import logging

from lash_streams.model import StatusFailed

from ..conformance.fixtures import rr_reg
from .test_recovery_v2 import stem


async def _tool_lookup(record, lease):
    return {"web_search": 1}["tool"]


async def test_a_runner_that_raises_keeps_its_exception_type_and_traceback(bus, caplog):
    """The row ended `failed` with only `str(err)` (`'tool'`): no type, no
    traceback, nothing logged."""
    await bus.register_process(rr_reg("job"))
    worker = bus.recovery(stem("w"), runner=_tool_lookup)
    with caplog.at_level(logging.ERROR, logger="lash_streams.recovery"):
        assert await worker.execute("job") == "ran"
    status = (await bus.get_process("job")).status
    assert isinstance(status, StatusFailed)
    failure = status.await_output
    assert failure.message == "KeyError: 'tool'"
    assert failure.raw["exception"] == "builtins.KeyError"
    assert "_tool_lookup" in failure.raw["traceback"]
    assert "KeyError" in failure.raw["traceback"]
    logged = [r for r in caplog.records if "job" in r.getMessage()]
    assert logged and logged[0].exc_info is not None
