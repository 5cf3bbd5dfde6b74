"""The CLI: every command, with --json, and its bad inputs (a subset of issue 6)."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

import lash_streams as ls
from lash_streams.cli import app
from lash_streams.model import ProcessEventAppendRequest

from .conformance.fixtures import S, reg, rr_reg

runner = CliRunner()


@pytest.fixture
async def seeded(standalone_servers, namespace):
    url = next(iter(standalone_servers.values()))
    async with ls.connect(url, namespace=namespace) as bus:
        await bus.register_process(reg("live"))
        await bus.append_event("live", ProcessEventAppendRequest.new("process.waiting", {"n": 1}))
        await bus.register_process(reg("done"))
        await bus.complete_process("done", S(1))
        await bus.register_process(rr_reg("orphan"))
    return url, namespace


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_inspect_ls_sweep_prune(seeded):
    url, ns = seeded
    result = invoke("inspect", "live", "--url", url, "--namespace", ns, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["status"] == "running" and data["recent_events"][0]["sequence"] == 1
    assert invoke("inspect", "live", "--url", url, "--namespace", ns).exit_code == 0
    listed = json.loads(invoke("ls", "--url", url, "--namespace", ns, "--json").output)
    assert [r["id"] for r in listed] == ["live", "orphan"]
    every = json.loads(
        invoke("ls", "--url", url, "--namespace", ns, "--status", "any", "--json").output
    )
    assert [r["id"] for r in every] == ["done", "live", "orphan"]
    assert invoke("ls", "--url", url, "--namespace", ns).exit_code == 0
    # No runner: the queued rerunnable row is left for a worker (issue 13), unless asked.
    swept = json.loads(invoke("sweep", "--url", url, "--namespace", ns, "--json").output)
    assert swept["ran"] == [] and swept["skipped"] == ["live", "orphan"]
    assert json.loads(invoke("ls", "--url", url, "--namespace", ns, "--json").output)[1]["id"] == (
        "orphan"
    )
    swept = json.loads(
        invoke("sweep", "--url", url, "--namespace", ns, "--fail-unrunnable", "--json").output
    )
    assert swept["ran"] == ["orphan"] and swept["skipped"] == ["live"]
    pruned = json.loads(
        invoke("prune", "--url", url, "--namespace", ns, "--older-than", "0", "--json").output
    )
    assert pruned["pruned_processes"] >= 1


def test_unknown_process_is_a_clean_error(seeded):
    url, ns = seeded
    result = invoke("inspect", "nope", "--url", url, "--namespace", ns)
    assert result.exit_code == 1
    assert "unknown_process" in result.output and "Traceback" not in result.output


def test_wrong_namespace_shows_nothing(seeded):
    url, _ = seeded
    result = invoke("ls", "--url", url, "--namespace", "no-such-ns", "--json")
    assert result.exit_code == 0 and json.loads(result.output) == []
    bad = invoke("ls", "--url", url, "--namespace", "bad namespace!")
    assert bad.exit_code == 1 and "namespace" in bad.output


def test_unreachable_server_is_a_clean_error():
    result = invoke("ls", "--url", "redis://127.0.0.1:1/0")
    assert result.exit_code == 2
    assert "cannot reach" in result.output and "Traceback" not in result.output


def test_bad_status_filter():
    result = invoke("ls", "--url", "redis://127.0.0.1:1/0", "--status", "sleeping")
    assert result.exit_code == 1 and "invalid status" in result.output


def test_tail_process_and_scope(seeded):
    url, ns = seeded
    result = invoke("tail", "live", "--url", url, "--namespace", ns, "--limit", "1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["event_type"] == "process.waiting"
    missing = invoke("tail", "nope", "--url", url, "--namespace", ns, "--limit", "1")
    assert missing.exit_code == 1 and "unknown_process" in missing.output
    both = invoke("tail", "live", "--scope", "s", "--url", url)
    assert both.exit_code == 1


async def test_tail_scope_shows_wakes(standalone_servers, namespace):
    from .conformance.fixtures import req, scope, wake

    url = next(iter(standalone_servers.values()))
    async with ls.connect(url, namespace=namespace) as bus:
        await bus.register_process(reg("w", wake("ping")))
        await bus.append_event("w", req("ping", {"wake_input": "hello"}, target=scope("room")))
    args = ["tail", "--scope", "room", "--url", url, "--namespace", namespace, "--limit", "1"]
    result = await asyncio.to_thread(invoke, *args, "--json")  # the CLI runs its own loop
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["input"] == "hello"


def test_doctor_reports_and_advises(standalone_servers):
    url = next(iter(standalone_servers.values()))
    result = invoke("doctor", "--url", url, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["maxmemory_policy"] == "noeviction"
    assert report["durability_tier"] == "inline"
    assert any("AOF" in line or "appendfsync" in line for line in report["advice"])
    assert invoke("doctor", "--url", "redis://127.0.0.1:1/0").exit_code == 2


OPERATOR_COMMANDS = [
    ["inspect", "live"],
    ["ls"],
    ["tail", "live", "--limit", "1"],
    ["sweep"],
    ["prune", "--older-than", "0"],
    ["doctor"],
]


@pytest.mark.parametrize("command", OPERATOR_COMMANDS, ids=lambda c: c[0])
def test_every_command_reports_an_unreachable_server_in_one_line(command):
    result = invoke(*command, "--url", "redis://127.0.0.1:1/0")
    assert result.exit_code == 2, result.output
    assert "cannot reach the server" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("command", OPERATOR_COMMANDS[:-1], ids=lambda c: c[0])
def test_every_command_rejects_an_invalid_namespace(seeded, command):
    url, _ = seeded
    result = invoke(*command, "--url", url, "--namespace", "bad namespace!")
    assert result.exit_code == 1, result.output
    assert "namespace" in result.output and "Traceback" not in result.output


def test_wrong_namespace_is_an_unknown_process_or_nothing(seeded):
    url, _ = seeded
    other = ["--url", url, "--namespace", "not-this-one"]
    for command in (["inspect", "live"], ["tail", "live", "--limit", "1"]):
        result = invoke(*command, *other)
        assert result.exit_code == 1 and "unknown_process" in result.output, result.output
    assert json.loads(invoke("sweep", *other, "--json").output)["examined"] == 0
    pruned = json.loads(invoke("prune", "--older-than", "0", *other, "--json").output)
    assert pruned["pruned_processes"] == 0


def test_sweep_every_runs_rounds(seeded):
    url, ns = seeded
    args = ["--url", url, "--namespace", ns, "--every", "0.05", "--rounds", "3", "--json"]
    result = invoke("sweep", *args)
    assert result.exit_code == 0, result.output
    reports = [json.loads(line) for line in result.output.splitlines()]
    assert len(reports) == 3
    assert all(r["ran"] == [] and r["examined"] == 2 for r in reports)
    result = invoke("sweep", *args, "--fail-unrunnable")
    reports = [json.loads(line) for line in result.output.splitlines()]
    assert reports[0]["ran"] == ["orphan"] and reports[-1]["examined"] == 1
    assert invoke("sweep", "--url", url, "--every", "0").exit_code == 2


async def test_ls_filters_by_scope(standalone_servers, namespace):
    from .conformance.fixtures import scope

    url = next(iter(standalone_servers.values()))
    async with ls.connect(url, namespace=namespace) as bus:
        import msgspec

        await bus.register_process(
            msgspec.structs.replace(reg("scoped"), wake_target=scope("room"))
        )
        await bus.register_process(reg("unscoped"))
    args = ["ls", "--url", url, "--namespace", namespace, "--json"]
    rows = json.loads((await asyncio.to_thread(invoke, *args, "--scope", "room")).output)
    assert [r["id"] for r in rows] == ["scoped"]
    rows = json.loads((await asyncio.to_thread(invoke, *args)).output)
    assert [r["id"] for r in rows] == ["scoped", "unscoped"]


def test_passwords_never_reach_error_messages():
    from lash_streams.connection import redact_url

    url = "redis://user:s3cret@127.0.0.1:1/0"
    assert redact_url(url) == "redis://user:***@127.0.0.1:1/0"
    assert redact_url("rediss://:pw@h:6380") == "rediss://:***@h:6380"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"
    for command in (["ls"], ["demo", "--no-live"]):
        result = invoke(*command, "--url", url)
        assert result.exit_code == 2, result.output
        assert "s3cret" not in result.output and "***" in result.output


def test_an_error_message_with_brackets_is_printed_as_text_not_markup() -> None:
    """A message holding `[/db]` used to crash the CLI with a rich MarkupError
    traceback (found by the bench-on-Sentinel work)."""
    result = CliRunner().invoke(app, ["stats", "--url", "redis+sentinel://127.0.0.1:26379"])
    assert result.exit_code == 1, result.exception
    assert "mymaster[/db]" in result.output
