"""Managed servers and least-privilege users: lash-streams needs only the
commands docs/operating.md lists, and its detection (connect, doctor) says
"unknown" where a command is refused or renamed, rather than failing
(issue 17, "minimal command set")."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from typer.testing import CliRunner

import lash_streams as ls
from lash_streams.cli import app
from lash_streams.server import LocalServer
from tests._servers import Backend
from tests.test_acl import acl_for, acl_url, run_everything  # noqa: F401 - fixture

# What managed services commonly rename away or refuse.
RENAMED = ["CONFIG", "DEBUG", "INFO", "FUNCTION", "CLIENT", "MODULE", "KEYS", "SAVE"]


def _doctor(url: str, namespace: str) -> dict[str, object]:
    result = CliRunner().invoke(app, ["doctor", "--url", url, "--namespace", namespace, "--json"])
    assert result.exit_code == 0, result.output
    report: dict[str, object] = json.loads(result.output)
    return report


def test_doctor_as_the_namespace_user_reports_unknown_for_what_it_cannot_read(
    acl_url: str,  # noqa: F811
    namespace: str,
    any_backend: Backend,
) -> None:
    """The ACL user of docs/operating.md has no INFO and no CONFIG."""
    report = _doctor(acl_url, namespace)
    assert report["server"] == "unknown (INFO refused)"
    assert report["cluster"] is any_backend.is_cluster
    assert report["appendonly"] is None and report["maxmemory_policy"] is None
    assert report["survives"] == {
        "process_crash": "kept",
        "server_crash": "unknown",
        "failover": "unknown",
    }
    assert report["durability_tier"] == "inline"
    text = CliRunner().invoke(app, ["doctor", "--url", acl_url, "--namespace", namespace])
    assert text.exit_code == 0, text.output
    assert "appendonly: unknown" in text.output


@pytest.fixture
async def renamed_server() -> AsyncIterator[LocalServer]:
    extra: list[str] = []
    for command in RENAMED:
        extra += ["--rename-command", command, ""]
    server = LocalServer(extra_args=extra)
    await server.astart()
    try:
        yield server
    finally:
        await server.astop()


@pytest.mark.no_key_hygiene  # a private server without INFO/CONFIG to check with
async def test_everything_runs_on_a_server_with_admin_commands_renamed_away(
    renamed_server: LocalServer,
) -> None:
    async with ls.connect(renamed_server.url, namespace="min") as bus:
        report = bus.durability()
        assert (report.server_crash, report.failover) == ("unknown", "unknown")
        await run_everything(bus)
    doctor = await asyncio.to_thread(_doctor, renamed_server.url, "min")
    assert doctor["server"] == "unknown (INFO refused)"


async def test_a_user_without_command_or_client_still_runs_everything(
    backend: Backend, namespace: str
) -> None:
    """On a single server the ACL's ``+command`` (cluster discovery) and
    ``+client|id +client|unblock`` (prompt shared waits) are optional."""
    user, password = f"lash-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    optional = {"+command", "+cluster|slots", "+client|id", "+client|unblock"}
    tokens = [t for t in acl_for(namespace, user, password) if t not in optional]
    admin = Redis.from_url(backend.url)
    try:
        await admin.execute_command("ACL", "SETUSER", *tokens)
        scheme, rest = backend.connect_url.split("://", 1)
        async with ls.connect(f"{scheme}://{user}:{password}@{rest}", namespace=namespace) as bus:
            await run_everything(bus)
    finally:
        await admin.execute_command("ACL", "DELUSER", user)
        await admin.aclose()


CATEGORY_FORM = (
    "+@read +@write +@scripting +@connection +time -@dangerous +client|unblock +cluster|slots"
)


def test_the_category_form_is_the_one_documented() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "operating.md").read_text()
    assert "  +@read +@write +@scripting +@connection +time -@dangerous\n" in text
    assert "  +client|unblock +cluster|slots\n" in text


async def test_the_category_form_runs_everything(any_backend: Backend, namespace: str) -> None:
    """docs/operating.md's user by ACL categories: the whole workload runs and
    KEYS, FLUSHALL, CONFIG and DEBUG stay refused."""
    from redis.exceptions import ResponseError

    from tests._servers import _masters

    user, password = f"lash-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    rules = ["on", f">{password}", "resetkeys", f"~{namespace}:*", "resetchannels", "-@all"]
    rules += CATEGORY_FORM.split()
    nodes = await _masters(any_backend.url) if any_backend.is_cluster else [any_backend.url]
    admins = [Redis.from_url(u) for u in nodes]
    try:
        for admin in admins:
            await admin.execute_command("ACL", "SETUSER", user, *rules)
        scheme, rest = any_backend.connect_url.split("://", 1)
        url = f"{scheme}://{user}:{password}@{rest}"
        async with ls.connect(url, namespace=namespace) as bus:
            await run_everything(bus)
        plain = Redis.from_url(nodes[0].replace("redis://", f"redis://{user}:{password}@"))
        try:
            for command in (
                ["KEYS", "*"],
                ["FLUSHALL"],
                ["CONFIG", "GET", "*"],
                ["DEBUG", "SLEEP", "0"],
            ):
                with pytest.raises(ResponseError):  # NOPERM (DEBUG: also off)
                    await plain.execute_command(*command)
        finally:
            await plain.aclose()
    finally:
        for admin in admins:
            await admin.execute_command("ACL", "DELUSER", user)
            await admin.aclose()
