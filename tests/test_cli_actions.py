"""The operator CLI acts (issue 16): ``abandon``, ``cancel``, ``signal`` and
``stats``, each with its bad inputs, on Valkey, Redis and the cluster."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

import lash_streams as ls
from lash_streams.cli import app
from lash_streams.cli.act import age
from lash_streams.model import AbandonWriter, StatusAbandoned

from .conformance.fixtures import S, plain, reg, rr_reg
from .recovery.test_recovery_v2 import stem

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def _seed(url: str, namespace: str) -> None:
    async def seed() -> None:
        async with ls.connect(url, namespace=namespace) as bus:
            await bus.register_process(reg("ext"))
            await bus.register_process(rr_reg("job", plain("signal.nudge")))
            await bus.register_process(reg("done"))
            await bus.complete_process("done", S(1))
            from lash_streams.coordination.fleet_liveness import register_incarnation

            await register_incarnation(bus, stem("worker-1"))

    asyncio.run(seed())


def _read(url: str, namespace: str, call):
    async def read():
        async with ls.connect(url, namespace=namespace) as bus:
            return await call(bus)

    return asyncio.run(read())


@pytest.fixture
def seeded(any_backend, namespace):
    _seed(any_backend.connect_url, namespace)
    return any_backend.connect_url, namespace


def test_abandon_requests_and_a_sweep_writes_it(seeded):
    url, ns = seeded
    out = invoke("abandon", "ext", "--url", url, "--namespace", ns, "--reason", "stuck", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["this_request"] and data["abandon_request"]["reason"] == "stuck"
    again = invoke("abandon", "ext", "--url", url, "--namespace", ns, "--by", "someone-else")
    assert again.exit_code == 0 and "already has an abandon request (by cli)" in again.output
    assert invoke("sweep", "--url", url, "--namespace", ns).exit_code == 0
    status = _read(url, ns, lambda bus: bus.get_process("ext"))
    assert isinstance(status.status, StatusAbandoned)
    assert status.status.await_output.evidence.writer is AbandonWriter.RECONCILED_REQUEST


@pytest.mark.parametrize(
    ("pid", "expected"),
    [("nobody", "unknown"), ("done", "terminal")],
)
def test_abandon_refuses_an_unknown_or_terminal_process_in_one_line(seeded, pid, expected):
    url, ns = seeded
    out = invoke("abandon", pid, "--url", url, "--namespace", ns)
    assert out.exit_code == 1
    assert expected in out.output.lower() and "Traceback" not in out.output


def test_cancel_appends_the_request(seeded):
    url, ns = seeded
    out = invoke("cancel", "job", "--url", url, "--namespace", ns, "--reason", "user", "--json")
    assert out.exit_code == 0, out.output
    sequence = json.loads(out.output)["sequence"]
    events = _read(url, ns, lambda bus: bus.events_after("job", 0))
    assert [(e.sequence, e.event_type) for e in events] == [(sequence, "process.cancel_requested")]
    done = invoke("cancel", "done", "--url", url, "--namespace", ns)
    assert done.exit_code == 1 and "Traceback" not in done.output


def test_signal_appends_an_event_and_replays_its_id(seeded):
    url, ns = seeded
    args = ("signal", "job", "nudge", "--url", url, "--namespace", ns)
    out = invoke(*args, "--payload", '{"n": 1}', "--id", "s-1", "--json")
    assert out.exit_code == 0, out.output
    first = json.loads(out.output)
    assert first["event_type"] == "signal.nudge"
    again = json.loads(invoke(*args, "--payload", '{"n": 1}', "--id", "s-1", "--json").output)
    assert again["sequence"] == first["sequence"]  # the same id and payload: a replay
    events = _read(url, ns, lambda bus: bus.events_after("job", 0))
    assert [e.payload for e in events] == [{"n": 1}]


def test_signal_bad_inputs_are_one_line(seeded):
    url, ns = seeded
    bad_json = invoke("signal", "job", "nudge", "--url", url, "--namespace", ns, "--payload", "{")
    assert bad_json.exit_code == 2 and "not JSON" in bad_json.output
    bad_name = invoke("signal", "job", "no spaces!", "--url", url, "--namespace", ns)
    assert bad_name.exit_code == 1 and "Traceback" not in bad_name.output
    unknown = invoke("signal", "nobody", "nudge", "--url", url, "--namespace", ns)
    assert unknown.exit_code == 1 and "Traceback" not in unknown.output


def test_stats_counts_statuses_workers_and_the_relay(seeded):
    url, ns = seeded
    out = invoke("stats", "--url", url, "--namespace", ns, "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["processes"] == {"completed": 1, "running": 2}
    assert data["oldest_running"]["process_id"] in {"ext", "job"}
    assert [w["worker"] for w in data["workers"]] == ["worker-1"]
    assert data["workers"][0]["state"] == "running"
    assert data["pending_outboxes"] == 0 and data["relay_dead_letters"] == 0
    text = invoke("stats", "--url", url, "--namespace", ns)
    assert text.exit_code == 0 and "1 completed, 2 running" in text.output
    assert "worker-1" in text.output


def test_stats_on_an_empty_namespace(any_backend, namespace):
    out = invoke("stats", "--url", any_backend.connect_url, "--namespace", namespace)
    assert out.exit_code == 0, out.output
    assert "processes: none" in out.output


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0s"),
        (45_999, "45s"),
        (725_000, "12m05s"),
        (12_000_000, "3h20m"),
        (2 * 86_400_000 + 4 * 3_600_000, "2d04h"),
    ],
)
def test_ages_read_as_durations(ms, text):
    assert age(ms) == text
