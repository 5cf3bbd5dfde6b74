"""``lash-streams soak``: bad input refused in one line, a short run on
Valkey, Redis and the cluster writing its JSON, a violation exiting 1."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

import lash_streams as ls
from lash_streams.cli import app
from lash_streams.soak.checker import VIOLATED, Verdict
from lash_streams.soak.observe import ServerFacts
from lash_streams.soak.run import SoakOutcome

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "abc"], "duration `abc` is not a number of seconds"),
        (["--duration", "0s"], "duration `0s` must be more than zero"),
        (["--duration", "10x"], "duration `10x` is not a number of seconds"),
        (["--faults", "kill,boom"], "unknown fault `boom`; choose from kill, pause, proxy"),
        (["--url", "localhost:6379"], "must start with one of redis://"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(args, message):
    out = runner.invoke(app, ["soak", "--duration", "1s", *args])
    assert out.exit_code == 1, out.output
    assert message in out.output
    assert "Traceback" not in out.output


def test_a_process_count_out_of_range_is_refused():
    out = runner.invoke(app, ["soak", "--processes", "2"])
    assert out.exit_code == 2
    assert "--processes" in out.output


def test_an_unreachable_server_exits_2():
    out = runner.invoke(app, ["soak", "--duration", "1s", "--url", "redis://127.0.0.1:1/0"])
    assert out.exit_code == 2
    assert "cannot reach the server" in out.output


@pytest.mark.slow
def test_a_short_run_prints_the_verdicts_and_writes_json(any_backend, tmp_path):
    path = tmp_path / "soak.json"
    args = ["soak", "--url", any_backend.connect_url, "--duration", "3s", "--seed", "5"]
    out = runner.invoke(
        app, [*args, "--faults", "pause,proxy", "--processes", "4", "--json", str(path)]
    )
    assert out.exit_code == 0, out.output
    assert "soak verdict" in out.output and "every invariant held" in out.output
    data = json.loads(path.read_text())
    assert set(data) == {"ok", "server", "run", "verdicts", "faults", "notes"}
    assert data["ok"] is True
    assert set(data["verdicts"]) >= {
        "acknowledged_appends_present", "no_duplicates", "no_unexpected", "sequences_gapless",
        "one_terminal", "wakes_delivered", "no_phantom_wakes", "no_terminal_from_time",
        "stale_writes_refused", "owner_bound_runs_once", "workload_ran",
    }  # fmt: skip
    assert all(v["status"] == "ok" for v in data["verdicts"].values())
    assert data["server"]["cluster"] is any_backend.is_cluster
    assert data["run"]["processes"] == 4 and data["run"]["seed"] == 5
    if any_backend.is_cluster:
        assert any(n.startswith("pause: skipped") for n in data["notes"])

    assert asyncio.run(keys_of(any_backend.connect_url, data["run"]["namespace"])) == []


async def keys_of(url: str, namespace: str) -> list[bytes]:
    async with ls.connect(url, namespace=namespace) as bus:
        pattern = f"{namespace}:*"
        return [k for c in bus.primary_clients() async for k in c.scan_iter(match=pattern)]


def test_a_violation_exits_1_and_names_the_invariant(monkeypatch, tmp_path):
    broken = Verdict("no_duplicates", VIOLATED, {"duplicated": 1}, ["v1 at p#1, p#4"], "...")
    outcome = SoakOutcome(
        [broken],
        ServerFacts(),
        {"seed": 0, "duration_s": 1.0, "wall_s": 1.0, "faults": [], "acknowledged_ops": 1,
         "bus_events": 1, "bus_processes": 1},
    )  # fmt: skip

    async def fake(url, config, say):
        return outcome

    monkeypatch.setattr("lash_streams.soak.run.run_soak", fake)
    path = tmp_path / "out.json"
    out = runner.invoke(app, ["soak", "--duration", "1s", "--json", str(path)])
    assert out.exit_code == 1
    assert "violated" in out.output and "v1 at p#1, p#4" in out.output
    assert json.loads(path.read_text())["verdicts"]["no_duplicates"]["status"] == "violated"
