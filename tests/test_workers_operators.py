"""Workers and operators (issue 16): the CLI defects a new user hit, each
named for what it covers. The CLI reads its namespace from the environment,
refuses a URL without a scheme and a wrong password in one line each, `tail`
shows payloads and stops at the terminal, and `sweep` says why it left a row
alone. (Scopes: tests/wakes/test_scope_ids.py; a runner's exception:
tests/recovery/test_runner_failures.py.)"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import lash_streams as ls
from lash_streams import errors
from lash_streams.cli import app
from lash_streams.model import ProcessEventAppendRequest

from .conformance.fixtures import S, reg, rr_reg

runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env)


# -- the CLI -------------------------------------------------------------------


@pytest.fixture
async def seeded(standalone_servers, namespace):
    url = next(iter(standalone_servers.values()))
    async with ls.connect(url, namespace=namespace) as bus:
        await bus.register_process(reg("ext"))
        await bus.register_process(rr_reg("job"))
        await bus.append_event("job", ProcessEventAppendRequest.new("process.waiting", {"n": 7}))
        await bus.complete_process("job", S("all done"))
    return url, namespace


def test_the_cli_reads_its_namespace_from_the_environment(seeded):
    url, ns = seeded
    listed = invoke("ls", "--url", url, "--json", env={"LASH_STREAMS_NAMESPACE": ns})
    assert listed.exit_code == 0, listed.output
    assert [row["id"] for row in json.loads(listed.output)] == ["ext"]


@pytest.mark.parametrize("command", ["ls", "doctor", "sweep"])
def test_a_url_without_a_scheme_is_one_line(command):
    result = invoke(command, "--url", "localhost:6379")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "redis://" in lines[0] and "Traceback" not in result.output


async def test_a_url_without_a_scheme_is_a_typed_error():
    with pytest.raises(errors.InvalidValue, match="redis://"):
        await ls.connect("localhost:6379")
    with pytest.raises(errors.InvalidValue, match="must start with"):
        await ls.connect("http://localhost:6379")


async def test_a_wrong_password_is_not_an_unreachable_server(standalone_servers):
    url = next(iter(standalone_servers.values()))
    wrong = url.replace("redis://", "redis://nobody:wrong-password@")
    with pytest.raises(errors.AuthenticationFailed, match="refused the credentials") as caught:
        await ls.connect(wrong)
    assert "wrong-password" not in str(caught.value)


def test_the_cli_reports_a_wrong_password_as_a_refusal(standalone_servers):
    url = next(iter(standalone_servers.values()))
    wrong = url.replace("redis://", "redis://nobody:wrong-password@")
    result = invoke("ls", "--url", wrong)
    assert result.exit_code == 1, result.output
    assert "refused the credentials" in result.output and "cannot reach" not in result.output
    assert "wrong-password" not in result.output


def test_tail_shows_payloads_and_stops_at_the_terminal(seeded):
    url, ns = seeded
    # No --limit: it returns because the process is terminal.
    result = invoke("tail", "job", "--url", url, "--namespace", ns)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("#1 process.waiting") and '{"n":7}' in lines[0]
    assert lines[-1].startswith("#2 process.completed") and "all done" in lines[-1]


def test_sweep_says_why_it_left_each_row_alone(seeded):
    url, ns = seeded
    result = invoke("sweep", "--url", url, "--namespace", ns)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("examined 1: ran 0, abandoned 0, skipped 1, failed 0")
    assert "skipped   ext: externally owned, no abandon request" in result.output
    swept = json.loads(invoke("sweep", "--url", url, "--namespace", ns, "--json").output)
    assert swept["reasons"] == {"ext": "externally owned, no abandon request"}
