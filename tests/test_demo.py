"""``lash-streams demo`` (issue 6): the fleet runs as OS processes, one worker is
SIGKILLed and the sweeper writes ``abandoned{sweep}`` for its started
owner-bound job (SW-7 reclaim on LV-2 evidence, SW-11) while its rerunnable
job is re-run elsewhere (SW-9); every wake is consumed (WK-7). Checked from a pipe, live under tmux,
and against a server given by URL; bad input ends cleanly."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid

import pytest
from typer.testing import CliRunner

from lash_streams.cli import app

pytestmark = pytest.mark.slow

CHECKS = (
    "abandoned{sweep}",
    "abandoned by the sweep, never re-run",
    "(rerunnable) re-run to completion by sweeper",
)


def assert_story(output: str) -> None:
    for text in CHECKS:
        assert text in output, output
    assert "FAILED" not in output and "Traceback" not in output, output


def test_demo_runs_end_to_end_on_the_embedded_server():
    done = subprocess.run(
        [sys.executable, "-m", "lash_streams.cli", "demo", "--no-live"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert_story(done.stdout)
    assert "SIGKILL worker-2" in done.stdout
    assert "kill -> abandoned" in done.stdout


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_demo_live_view_under_tmux():
    session = f"lash-demo-{uuid.uuid4().hex[:6]}"
    command = f"{sys.executable} -m lash_streams.cli demo; echo EXIT=$?; sleep 30"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "48", command],
        check=True,
    )
    try:
        deadline = time.monotonic() + 120
        screen = ""
        while time.monotonic() < deadline and "EXIT=" not in screen:
            time.sleep(0.5)
            screen = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        assert "EXIT=0" in screen, screen
        assert "fleet (OS processes)" in screen and "killed" in screen, screen
        assert_story(screen)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)


def test_demo_against_a_server_url(standalone_servers, namespace):
    url = next(iter(standalone_servers.values()))
    result = CliRunner().invoke(
        app, ["demo", "--url", url, "--namespace", namespace, "--no-live", "--workers", "2"]
    )
    assert result.exit_code == 0, result.output
    assert_story(result.output)


def test_demo_unreachable_server_is_one_line():
    result = CliRunner().invoke(app, ["demo", "--url", "redis://127.0.0.1:1/0", "--no-live"])
    assert result.exit_code == 2
    assert "cannot reach the server" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--workers", "1"], 2, "workers"),
        (["--consumers", "0"], 2, "consumers"),
        (["--namespace", "bad namespace!"], 1, "namespace"),
    ],
)
def test_demo_bad_input(args, code, needle):
    result = CliRunner().invoke(app, ["demo", "--no-live", *args])
    assert result.exit_code == code, result.output
    assert needle in result.output and "Traceback" not in result.output
