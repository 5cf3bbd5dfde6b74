"""``lash-streams dlq ls / replay`` (issue 16): a scope's dead-lettered wakes,
listed with their reason and delivered again, on Valkey, Redis and the cluster."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

import lash_streams as ls
from lash_streams.cli import app

from .conformance.fixtures import reg, req, scope, wake

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def dead(any_backend, namespace):
    """One wake of session `s`, dead-lettered by group `g`'s handler."""
    url = any_backend.connect_url

    async def seed() -> None:
        async with ls.connect(url, namespace=namespace) as bus:
            await bus.register_process(reg("p", wake("w")))
            await bus.append_event("p", req("w", {"wake_input": "boom"}, target=scope("s")))
            consumer = bus.wake_consumer(group="g", consumer="c", scopes=[scope("s")], block_ms=50)
            try:
                message = await consumer.next(timeout=5)
                assert message is not None
                await message.dead_letter("the tool crashed")
            finally:
                await consumer.aclose()

    asyncio.run(seed())
    return url, namespace


def test_dlq_ls_shows_the_letter_and_its_reason(dead):
    url, ns = dead
    out = invoke("dlq", "ls", "--scope", "s", "--url", url, "--namespace", ns, "--json")
    assert out.exit_code == 0, out.output
    [letter] = json.loads(out.output)
    assert letter["group"] == "g" and letter["reason"] == "the tool crashed"
    assert letter["delivery"]["process_id"] == "p" and letter["delivery"]["sequence"] == 1
    text = invoke("dlq", "ls", "--scope", "s", "--url", url, "--namespace", ns)
    assert text.exit_code == 0 and "the tool crashed" in text.output
    empty = invoke("dlq", "ls", "--scope", "other", "--url", url, "--namespace", ns)
    assert empty.exit_code == 0 and "no dead-lettered wakes" in empty.output


def test_dlq_replay_delivers_the_wake_again_and_drops_the_letter(dead):
    url, ns = dead
    unknown = invoke(
        "dlq", "replay", "--scope", "s", "--id", "1-1", "--url", url, "--namespace", ns
    )
    assert unknown.exit_code == 1 and "no dead letter 1-1" in unknown.output
    out = invoke("dlq", "replay", "--scope", "s", "--url", url, "--namespace", ns, "--json")
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.output)["replayed"]) == 1

    async def read_again() -> str:
        async with ls.connect(url, namespace=ns) as bus:
            consumer = bus.wake_consumer(group="g", consumer="c2", scopes=[scope("s")], block_ms=50)
            try:
                message = await consumer.next(timeout=5)
                assert message is not None
                await message.ack()
                return message.delivery.input
            finally:
                await consumer.aclose()

    assert asyncio.run(read_again()) == "boom"
    after = invoke("dlq", "ls", "--scope", "s", "--url", url, "--namespace", ns, "--json")
    assert json.loads(after.output) == []
