"""The operator CLI acts (issue 16): ``abandon``, ``cancel``, ``signal`` and
``stats``, each with its bad inputs, on Valkey, Redis and the cluster."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import pytest
from typer.testing import CliRunner

import lash_streams as ls
from lash_streams.cli import app
from lash_streams.cli.act import age
from lash_streams.model import AbandonWriter, StatusAbandoned

from .conformance.fixtures import S, ob_reg, plain, reg, rr_reg
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


def test_workers_lists_each_identity_and_its_incarnations(seeded):
    url, ns = seeded

    async def restart(bus):
        from lash_streams.coordination.fleet_liveness import register_incarnation

        await register_incarnation(bus, stem("worker-1", "worker-1-second"))

    _read(url, ns, restart)
    out = invoke("workers", "--url", url, "--namespace", ns, "--json")
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert [(r["incarnation"], r["state"]) for r in rows] == [
        ("worker-1-second", "running"),
        ("worker-1-incarnation", "superseded"),
    ]
    text = invoke("workers", "--url", url, "--namespace", ns)
    assert text.exit_code == 0 and "superseded" in text.output


def test_inspect_shows_ages_not_epoch_milliseconds(seeded):
    url, ns = seeded

    async def hold(bus):
        await bus.claim_process_lease("job", stem("holder"), 600_000)

    _read(url, ns, hold)
    out = invoke("inspect", "job", "--url", url, "--namespace", ns)
    assert out.exit_code == 0, out.output
    assert "created 0s ago" in out.output or "created 1s ago" in out.output
    assert "expires in 9m" in out.output or "expires in 10m" in out.output


def test_doctor_reports_the_namespace(seeded):
    url, ns = seeded
    out = invoke("doctor", "--url", url, "--namespace", ns, "--json")
    assert out.exit_code == 0, out.output
    counts = json.loads(out.output)["namespace"]
    assert counts == {
        "name": ns,
        "index_shards": 1,
        "running": 2,
        "terminal": 1,
        "pending_outboxes": 0,
        "relay_dead_letters": 0,
        "workers": 1,
    }
    text = invoke("doctor", "--url", url, "--namespace", ns)
    assert f"namespace {ns}: 2 running, 1 terminal" in text.output


def test_sweep_dry_run_says_what_it_would_do_and_writes_nothing(seeded):
    url, ns = seeded

    async def more(bus):
        from lash_streams.model import AbandonRequest, ProcessStarted

        await bus.register_process(ob_reg("asked"))
        await bus.record_first_started("asked", ProcessStarted(owner=stem("gone"), started_at_ms=1))
        await bus.request_process_abandon(
            "asked", AbandonRequest(requested_by="op", requested_at_ms=1)
        )
        await bus.register_process(rr_reg("held"))
        await bus.claim_process_lease("held", stem("holder"), 600_000)

    _read(url, ns, more)
    out = invoke("sweep", "--url", url, "--namespace", ns, "--dry-run", "--json")
    assert out.exit_code == 0, out.output
    decided = {d["process_id"]: (d["action"], d["reason"]) for d in json.loads(out.output)}
    assert decided == {
        "asked": ("abandon", "abandon requested (reconciled_request)"),
        "ext": ("leave", "externally owned, no abandon request"),
        "held": ("leave", "held by a live owner"),
        "job": ("leave", "no runner here: left for a worker that can run it"),
    }
    failing = invoke("sweep", "--url", url, "--namespace", ns, "--dry-run", "--fail-unrunnable")
    assert "fail     job: runnable, but no runner here" in failing.output
    running = _read(url, ns, lambda bus: bus.list_non_terminal())
    assert sorted(r.id for r in running) == ["asked", "ext", "held", "job"]  # nothing written
    swept = json.loads(invoke("sweep", "--url", url, "--namespace", ns, "--json").output)
    assert swept["abandoned"] == ["asked"]  # the real sweep does what the preview said


def test_health_for_probes(any_backend):
    out = invoke("health", "--url", any_backend.connect_url, "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["ok"] is True and data["latency_ms"] >= 0 and data["error"] is None
    down = invoke("health", "--url", "redis://127.0.0.1:1/0")
    assert down.exit_code == 2 and "Traceback" not in down.output


async def test_bus_health_reports_a_paused_server_without_raising():
    from lash_streams.server import LocalServer

    server = LocalServer(persistence="none").start()
    try:
        async with ls.connect(server.url) as bus:
            assert (await bus.health()).ok
            with pytest.raises(ls.errors.InvalidValue):
                await bus.health(timeout=0)
            os.kill(server.pid, signal.SIGSTOP)  # a hung server: reached, silent
            try:
                result = await bus.health(timeout=0.2)
            finally:
                os.kill(server.pid, signal.SIGCONT)
            assert not result.ok and "no answer within 0.2 s" in result.error
    finally:
        server.stop()


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
