"""docs/operating.md's ACL user, run as written: a user limited to one
namespace's keys and to the commands lash-streams sends can register, append,
consume wakes (a consumer group and fleet mode), hold leases, sweep, relay,
trim and prune, and cannot touch any key outside its namespace."""

from __future__ import annotations

import asyncio
import re
import shlex
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import NoPermissionError, ResponseError

import lash_streams as ls
from tests._servers import Backend, _masters
from tests.conformance.fixtures import S, plain, reg

OPERATING = Path(__file__).resolve().parent.parent / "docs" / "operating.md"
MARKER = "<!-- tested by tests/test_acl.py"


def documented_acl() -> list[str]:
    """The tokens of the ``ACL SETUSER`` command docs/operating.md shows."""
    text = OPERATING.read_text()
    block = re.search(re.escape(MARKER) + r".*?\n```[a-z]*\n(.*?)\n```", text, re.S)
    assert block is not None, "docs/operating.md lost its tested ACL block"
    tokens = shlex.split(block.group(1).replace("\\\n", " "))
    assert tokens[:3] == ["ACL", "SETUSER", "lash-app"] and "~lash:*" in tokens
    return tokens


def acl_for(namespace: str, user: str, password: str) -> list[str]:
    swap = {"lash-app": user, ">CHANGE-ME": f">{password}", "~lash:*": f"~{namespace}:*"}
    return [swap.get(t, t) for t in documented_acl()[2:]]


@pytest.fixture
async def acl_url(any_backend: Backend, namespace: str) -> AsyncIterator[str]:
    """A ``redis://user:password@...`` URL of a fresh user made from the doc's
    command (on every master of a cluster: ACLs are per node)."""
    user, password = f"lash-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    nodes = await _masters(any_backend.url) if any_backend.is_cluster else [any_backend.url]
    admins = [Redis.from_url(u) for u in nodes]
    try:
        for admin in admins:
            await admin.execute_command("ACL", "SETUSER", *acl_for(namespace, user, password))
        url = any_backend.connect_url
        scheme, rest = url.split("://", 1)
        yield f"{scheme}://{user}:{password}@{rest}"
    finally:
        for admin in admins:
            await admin.execute_command("ACL", "DELUSER", user)
            await admin.aclose()


PROGRESS = ls.ProcessEventType(
    name="progress",
    payload_schema=ls.LashSchema(schema={"type": "integer"}),
    semantics=ls.ProcessEventSemanticsSpec(
        wake=ls.ProcessWakeSpec(input=ls.SelTemplate("step {n}", {"n": ls.SelPayload()}))
    ),
)


async def run_everything(bus: ls.Bus) -> None:
    session = ls.SessionScope(session_id="s-1")
    reg = ls.ProcessRegistration.external(
        "job-1", disposition=ls.RecoveryDisposition.RERUNNABLE, event_types=[PROGRESS],
        wake_target=session,
    )  # fmt: skip
    await bus.register_process(reg)
    assert (await bus.register_process(reg)).id == "job-1"
    await bus.append_event("job-1", ls.ProcessEventAppendRequest.new("progress", 1))
    keyed = ls.ProcessEventAppendRequest.new("progress", 2).with_replay_key("two")
    await bus.append_events([("job-1", keyed)])
    assert (await bus.append_event("job-1", keyed)).event.sequence == 2
    assert await bus.count_events_through("job-1", "progress", 2) == 2
    assert len(await bus.recent_events("job-1", 10)) == 2

    async with bus.wake_consumer(group="g", consumer="c1", scopes=[session]) as wakes:
        for _ in range(2):
            message = await wakes.next(timeout=5)
            assert message is not None
            await message.ack(mark_process=True)
    assert await bus.wake_events_after("job-1", 0) == []
    async with bus.fleet_consumer(group="fleet-app", pod="pod-1", lease_ms=2_000) as fleet:
        message = await fleet.next(timeout=5)
        assert message is not None
        await message.ack()
    await bus.trim_wakes(session)
    await bus.relay_pending()

    me = ls.LeaseOwnerIdentity.opaque("w", "1")
    claimed = await bus.claim_process_lease("job-1", me, 10_000)
    assert isinstance(claimed, ls.LeaseAcquired)
    lease = await bus.renew_process_lease(claimed.lease, 10_000)
    assert await bus.get_process_lease("job-1") is not None
    await bus.complete_process_lease(ls.ProcessLeaseCompletion.from_lease(lease))

    async def runner(record: ls.ProcessRecord, lease: ls.ProcessLease) -> Any:
        return ls.AwaitSuccess(value=record.id)

    recovery = bus.recovery(
        ls.LeaseOwnerIdentity.opaque("sweeper", "1"), runner=runner, fleet_liveness=True
    )
    await recovery.register()
    report = await recovery.sweep_once()
    assert report.ran == ["job-1"], report
    assert await bus.await_terminal("job-1", timeout=10) == ls.AwaitSuccess(value="job-1")
    await recovery.shutdown()

    # A worker: dispatch (its ready stream and group), a delayed job, its sweep.
    async def echo(job: ls.Job[Any]) -> Any:
        return job.payload

    worker = bus.worker(ls.owner_identity("w-1"), {"echo": echo}, sweep_every_s=0.2)
    stop = asyncio.Event()
    serving = asyncio.create_task(worker.run(stop=stop))
    now_job = await bus.submit("echo", {"n": 1}, id="job-3")
    later = await bus.submit("echo", {"n": 2}, id="job-4", delay_s=0.2)
    assert await bus.await_terminal(now_job.id, timeout=10) == ls.AwaitSuccess(value={"n": 1})
    assert await bus.await_terminal(later.id, timeout=10) == ls.AwaitSuccess(value={"n": 2})
    await bus.reclaim_ready(["echo"], "w-2", 0, 10)  # a dead reader's entries, old consumers
    stop.set()
    await serving

    await bus.register_process(ls.ProcessRegistration.external("job-2"))
    await bus.request_cancel("job-2", "stop")
    await bus.complete_process("job-2", ls.AwaitCancelled(message="stopped"))
    assert {r.id for r in await bus.list_processes(ls.ProcessListFilter(
        status=ls.ProcessStatusFilter.ANY))} == {"job-1", "job-2", "job-3", "job-4"}  # fmt: skip
    now = await bus.server_time_ms()
    assert (await bus.prune_terminal_processes(now + 1)).pruned_processes == 4


async def test_namespace_user_runs_everything(acl_url: str, namespace: str) -> None:
    async with ls.connect(acl_url, namespace=namespace) as bus:
        # CONFIG is not granted: the bus reports the inline tier (RX-13).
        assert bus.durability_tier() is ls.DurabilityTier.INLINE
        await asyncio.wait_for(run_everything(bus), 60)


async def test_namespace_user_cannot_touch_other_keys(
    acl_url: str, namespace: str, any_backend: Backend
) -> None:
    other = f"{namespace}x"  # shares the prefix, not the `<ns>:` pattern
    async with ls.connect(acl_url, namespace=other) as bus:
        # A refused command surfaces as lash's typed error (issue 11: no raw
        # redis-py exception escapes the bus), with the server's reply.
        with pytest.raises(ls.errors.PermissionDenied, match=r"(?i)permission"):
            await bus.register_process(ls.ProcessRegistration.external("job-1"))
        with pytest.raises(ls.errors.PermissionDenied):
            await bus.get_process("job-1")
    # Raw commands, as the same user, on one node (ACLs are checked before
    # any cluster redirection).
    creds = acl_url.split("://", 1)[1].split("@", 1)[0]
    node = Redis.from_url(any_backend.url.replace("redis://", f"redis://{creds}@"))
    try:
        assert await node.ping()
        for command in (
            ("SET", f"{other}:k", "1"),
            ("GET", "unrelated"),
            ("KEYS", "*"),
            ("FLUSHALL",),
            ("CONFIG", "SET", "maxmemory-policy", "allkeys-lru"),
            ("CONFIG", "GET", "requirepass"),
            ("PUBLISH", "ch", "x"),
        ):
            with pytest.raises(NoPermissionError):
                await node.execute_command(*command)
    finally:
        await node.aclose()
    # Inside a script every key a command touches is checked too (sent through
    # the bus's client, which routes a script by its key on a cluster).
    async with ls.connect(acl_url, namespace=namespace) as bus:
        for script, key in (
            ("return redis.call('SET', KEYS[1], '1')", f"{other}:k"),
            ("return redis.call('SET', 'unrelated', '1')", f"{namespace}:k"),
        ):
            with pytest.raises(ResponseError, match=r"(?i)permission|access"):
                await bus.redis.execute_command("EVAL", script, 1, key)
    # Nothing was written outside the namespace.
    admin = any_backend.client()
    try:
        assert await admin.exists(f"{other}:k") == 0
        assert await admin.exists("unrelated") == 0
    finally:
        await admin.aclose()


def test_operator_commands_as_the_namespace_user(acl_url: str, namespace: str) -> None:
    """docs/operating.md: inspect, ls, tail, sweep and prune work with the
    namespace user's URL (doctor needs INFO and CONFIG GET: an admin user)."""
    import subprocess
    import sys

    cli = [sys.executable, "-m", "lash_streams.cli"]
    env_url = ["--url", acl_url, "--namespace", namespace]

    async def setup() -> None:
        async with ls.connect(acl_url, namespace=namespace) as bus:
            await bus.register_process(ls.ProcessRegistration.external("job-1"))
            await bus.complete_process("job-1", ls.AwaitSuccess(value=1))

    asyncio.run(setup())
    for args in (
        ["inspect", "job-1"],
        ["ls", "--status", "any"],
        ["tail", "job-1", "--limit", "1"],
        ["sweep"],
        ["prune", "--older-than", "0"],
    ):
        done = subprocess.run(
            [*cli, *args, *env_url], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    # doctor as the namespace user: a one-line refusal, not a traceback.
    done = subprocess.run(
        [*cli, "doctor", "--url", acl_url], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "refused" in done.stderr and "Traceback" not in done.stderr


async def test_waits_without_client_unblock_still_wake(
    any_backend: Backend, namespace: str
) -> None:
    """The ACL block without ``+client|id +client|unblock``: the shared waiting
    read cannot be woken for a new waiter, so it blocks in short slices; waits
    still see every append (docs/operating.md, "Client connections")."""
    if any_backend.is_cluster:
        pytest.skip("a cluster bus blocks per waiter; there is no shared read to wake")
    user, password = f"lash-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    tokens = [t for t in acl_for(namespace, user, password) if not t.startswith("+client|")]
    admin = Redis.from_url(any_backend.url)
    await admin.execute_command("ACL", "SETUSER", *tokens)
    scheme, rest = any_backend.connect_url.split("://", 1)
    try:
        async with ls.connect(f"{scheme}://{user}:{password}@{rest}", namespace=namespace) as bus:
            for pid in ("first", "second"):
                await bus.register_process(reg(pid, plain("x")))
            first = asyncio.create_task(bus.await_terminal("first", timeout=20))
            await asyncio.sleep(0.3)  # the shared read is blocked on "first" alone
            second = asyncio.create_task(bus.await_terminal("second", timeout=20))
            await asyncio.sleep(0.3)
            await bus.complete_process("second", S(2))
            assert await asyncio.wait_for(second, 5) == S(2)
            await bus.complete_process("first", S(1))
            assert await asyncio.wait_for(first, 5) == S(1)
    finally:
        await admin.execute_command("ACL", "DELUSER", user)
        await admin.aclose()
