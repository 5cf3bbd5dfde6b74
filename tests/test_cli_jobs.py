"""``lash-streams retry`` and ``top`` (issue 16: the CLI acts on jobs and
shows a live namespace), each with its bad inputs, on Valkey, Redis and the
cluster."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from typer.testing import CliRunner

import lash_streams as ls
from lash_streams.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def _on(url: str, namespace: str, call: Any) -> Any:
    async def go() -> Any:
        async with ls.connect(url, namespace=namespace) as bus:
            return await call(bus)

    return asyncio.run(go())


@pytest.fixture
def seeded(any_backend, namespace):
    url = any_backend.connect_url

    async def seed(bus: ls.Bus) -> None:
        await bus.ensure_ready_group("search")
        await bus.submit("search", {"q": "a"}, id="waiting")
        # Created in a later millisecond of the server clock, so "oldest
        # first" has one answer (two submits can share a millisecond).
        await asyncio.sleep(0.005)
        await bus.submit("search", {"q": "b"}, id="later", delay_s=600)
        await bus.submit("search", {"q": "c"}, id="broken")
        await bus.complete_process(
            "broken", ls.AwaitFailure(class_=ls.ToolFailureClass.EXECUTION, code="x", message="y")
        )
        await bus.submit("search", {"q": "d"}, id="done")
        await bus.complete_process("done", ls.AwaitSuccess(value=1))
        await bus.register_process(ls.ProcessRegistration.external("ext"))
        # Read by nobody: every submit's entry (and the schedule's wake-up) stays.

    _on(url, namespace, seed)
    return url, namespace


def test_retry_queues_a_running_job_and_drops_its_delay(seeded):
    url, ns = seeded
    out = invoke("retry", "later", "--url", url, "--namespace", ns, "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == {"process_id": "later", "action": "queued", "kind": "search"}

    async def check(bus: ls.Bus) -> None:
        assert await bus.redis.zcard(bus.keys.delayed) == 0
        entries = await bus.redis.xrange(bus.keys.ready_stream("search"))
        queued = [f[b"id"] for _, f in entries if f.get(b"id")]
        assert queued == [b"waiting", b"broken", b"done", b"later"]

    _on(url, ns, check)
    text = invoke("retry", "waiting", "--url", url, "--namespace", ns)
    assert text.exit_code == 0 and "queued for the workers of `search`" in text.output


def test_retry_copies_a_failed_job_and_a_worker_runs_the_copy(seeded):
    url, ns = seeded
    out = invoke("retry", "broken", "--as", "broken-2", "--url", url, "--namespace", ns, "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["new_process_id"] == "broken-2"

    async def run_it(bus: ls.Bus) -> Any:
        async def search(job: ls.Job[Any]) -> Any:
            return job.payload

        worker = bus.worker(ls.owner_identity("w"), {"search": search})
        return await worker.execute("broken-2")

    outcome = _on(url, ns, run_it)
    assert outcome.status == "completed" and outcome.output == ls.AwaitSuccess(value={"q": "c"})
    again = invoke("retry", "broken", "--as", "broken-2", "--url", url, "--namespace", ns)
    assert again.exit_code == 0  # the same copy id: the same copy (idempotent)


@pytest.mark.parametrize(
    ("pid", "needle"),
    [
        ("done", "completed: nothing to retry"),
        ("ext", "externally owned"),
        ("nope", "nope"),
    ],
)
def test_retry_refuses_what_cannot_be_retried(seeded, pid, needle):
    url, ns = seeded
    out = invoke("retry", pid, "--url", url, "--namespace", ns)
    assert out.exit_code == 1, out.output
    assert needle in out.output and "Traceback" not in out.output


def test_retry_without_a_worker_says_the_sweep_runs_it(any_backend, namespace):
    url = any_backend.connect_url
    _on(url, namespace, lambda bus: bus.submit("lonely", id="j"))
    out = invoke("retry", "j", "--url", url, "--namespace", namespace)
    assert out.exit_code == 0 and "no worker serves `lonely`" in out.output


def test_top_shows_running_jobs_ready_streams_and_workers(seeded):
    url, ns = seeded
    out = invoke("top", "--once", "--url", url, "--namespace", ns)
    assert out.exit_code == 0, out.output
    for needle in ("waiting", "later", "search", "ready streams", "3 running, 1 delayed"):
        assert needle in out.output, needle
    data = json.loads(invoke("top", "--json", "--url", url, "--namespace", ns).output)
    assert data["running"] == 3 and data["delayed"] == 1
    assert [r["kind"] for r in data["ready"]] == ["search"]
    assert data["ready"][0]["waiting"] == 4  # three submits' entries and a schedule wake-up
    assert [j["process_id"] for j in data["jobs"]] == ["waiting", "later", "ext"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["top", "--once", "--interval", "0"], "interval"),
        (["top", "--once", "--limit", "0"], "limit"),
        (["retry"], "process_id"),
    ],
)
def test_bad_options_are_one_line(any_backend, namespace, args, needle):
    out = invoke(*args, "--url", any_backend.connect_url, "--namespace", namespace)
    assert out.exit_code == 2 and needle in out.output, out.output


def test_unreachable_server_is_one_line():
    out = invoke("top", "--once", "--url", "redis://127.0.0.1:1/0")
    assert out.exit_code == 2 and "cannot reach the server" in out.output
